"""Conditions per the Kubernetes API conventions, set through one helper.

`set_condition` moves lastTransitionTime only when the status flips and always
stamps observedGeneration (after cert-manager). Called by the status builders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Condition = dict[str, Any]

# Each condition type and exactly when it is True (docs/api.md repeats this).
TYPES = {
    "PullSecretReady": "every referenced pull secret exists, is a dockerconfigjson, parses "
    "and has an auths entry for the image's registry (or none is referenced)",
    "VPNReady": "the VPN probe connected within its timeout (or no probe is configured)",
    "GatewayReady": "the referenced IBGateway exists, is Ready, and suits the consumer",
    "Approved": "an approval with approvedBy and an expiresAt in the future is present",
    "Armed": "the safety gate allows the bot to run (1 replica) and it is Enforced",
    "Enforced": "the bot's Deployment carries the operator's manifest, no field of another "
    "manager in its pod template, and the replicas the gate allows",
    "Halted": "the global halt ConfigMap exists",
    "Ready": "the children exist and have converged to what the operator wants",
}


@dataclass(frozen=True)
class Check:
    """Outcome of one policy: ok, a CamelCase reason and a human-readable message."""

    ok: bool
    reason: str
    message: str


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> list[Condition]:
    """Return conditions with `type_` set; other conditions are kept as they were."""
    status_text = "Unknown" if status is None else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), None)
    since = (
        previous["lastTransitionTime"]
        if previous is not None
        and previous.get("status") == status_text
        and "lastTransitionTime" in previous
        else rfc3339(now)
    )
    new: Condition = {
        "type": type_,
        "status": status_text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }
    out = [c for c in conditions if c.get("type") != type_]
    out.append(new)
    return sorted(out, key=lambda c: str(c.get("type")))


def set_check(
    conditions: Sequence[Condition], type_: str, check: Check, generation: int, now: dt.datetime
) -> list[Condition]:
    return set_condition(conditions, type_, check.ok, check.reason, check.message, generation, now)
