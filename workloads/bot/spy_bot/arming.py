"""Defence in depth: may this bot trade now, judging by its own TradingBot? Pure.

``service.Bot`` reads its TradingBot through the API (``kube``) right before every
order and calls ``check_armed(obj, now)``; anything but ``ok`` refuses the order. The
replica gate in the operator is the first line; this is the second, for a pod that
outlives a disarm, a halt or an expiry by a few seconds (docs/bot.md).

Fails closed: a missing or unreadable object, a status the operator has not written for
the current generation, or any field out of shape is a refusal with a reason:

``TradingBotUnreadable``, ``NotArmed`` (spec.armed false), ``StatusStale`` (status is
not for the current generation), ``GlobalHalt`` (Halted condition True), ``GateClosed``
(status.armed not true; message carries the operator's reason), ``NotApproved``
(Approved condition not True), ``ApprovalExpired`` / ``ApprovalInvalid`` (checked here
against ``now``, not trusted from status), ``Armed`` when every check passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from spy_bot.risk import Verdict


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return {}


def check_armed(obj: Mapping[str, Any] | None, now: datetime) -> Verdict:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("spec"), Mapping):
        return Verdict(False, "TradingBotUnreadable", "own TradingBot could not be read")
    spec, status = obj["spec"], obj.get("status") or {}
    if spec.get("armed") is not True:
        return Verdict(False, "NotArmed", "spec.armed is not true")
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is None or status.get("observedGeneration") != generation:
        return Verdict(
            False,
            "StatusStale",
            f"status is for generation {status.get('observedGeneration')}, object is {generation}",
        )
    if _condition(obj, "Halted").get("status") == "True":
        return Verdict(False, "GlobalHalt", str(_condition(obj, "Halted").get("message", "")))
    if status.get("armed") is not True:
        return Verdict(
            False, "GateClosed", f"status.armed is not true ({status.get('reason', 'no reason')})"
        )
    if _condition(obj, "Approved").get("status") != "True":
        return Verdict(False, "NotApproved", "the Approved condition is not True")
    approval = spec.get("approval") or {}
    raw = approval.get("expiresAt") if isinstance(approval, Mapping) else None
    try:
        expires = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return Verdict(False, "ApprovalInvalid", f"approval.expiresAt {raw!r} is not RFC 3339")
    if expires.tzinfo is None:
        return Verdict(False, "ApprovalInvalid", f"approval.expiresAt {raw!r} has no zone")
    if expires <= now.astimezone(UTC):
        return Verdict(False, "ApprovalExpired", f"approval expired at {raw}")
    return Verdict(True, "Armed", f"armed, approved by {approval.get('approvedBy')} until {raw}")
