"""The two-person rule for arming a TradingBot, as pure policies (DESIGN §3).

`review` is what the admission webhook (webhook.py) decides for one CREATE or UPDATE
of a TradingBot, from the API server's `userInfo`, never from the object:

* whoever writes `spec.approval` must be the `approvedBy` it names (the approver
  writes as themselves);
* whoever sets `armed: true` must not be the recorded approver (two people);
* an approval expires at most `max_approval` ahead (default 8 h), a live bot's at
  most `max_live_approval` (default 2 h);
* the webhook records both identities and times in annotations under
  `spyoptions.io/` with an HMAC signature over them and the approval; nobody can set
  or change those annotations by hand;
* a configured GitOps identity (Argo CD's service account) may carry an approval
  committed to Git for someone else and arm it: the pull-request review is the second
  person (docs/operations.md states the risk).

`verify` is what the gate reads: without a valid signature over the current approval
(the webhook was never registered, the annotations were forged or the approval was
changed around it) the bot stays at 0 with reason ApprovalUnverified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spy_operator import constants as c
from spy_operator.api import parse_time
from spy_operator.conditions import Check

APPROVAL_RECORDED_BY = f"{c.GROUP}/approval-recorded-by"
APPROVAL_RECORDED_AT = f"{c.GROUP}/approval-recorded-at"
APPROVAL_VIA = f"{c.GROUP}/approval-via"
ARMED_BY = f"{c.GROUP}/armed-by"
ARMED_AT = f"{c.GROUP}/armed-at"
SIGNATURE = f"{c.GROUP}/approval-signature"
RECORDED = (
    APPROVAL_RECORDED_BY,
    APPROVAL_RECORDED_AT,
    APPROVAL_VIA,
    ARMED_BY,
    ARMED_AT,
    SIGNATURE,
)
UNVERIFIED = "ApprovalUnverified"
VIA_USER = "user"
VIA_GITOPS = "gitops"


@dataclass(frozen=True)
class Policy:
    gitops_identities: frozenset[str] = frozenset()
    max_approval: dt.timedelta = dt.timedelta(hours=8)
    max_live_approval: dt.timedelta = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Review:
    allowed: bool
    message: str
    # Annotations to set (a string) or remove (None); empty when refused.
    annotations: dict[str, str | None] = field(default_factory=dict)


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def signature(
    key: bytes, namespace: str, name: str, spec: Mapping[str, Any], notes: Mapping[str, Any]
) -> str:
    """HMAC-SHA256 over what the gate trusts: the approval, who recorded it, how, and
    who armed (so none of them can change without the webhook)."""
    payload = json.dumps(
        {
            "object": f"{namespace}/{name}",
            "approval": spec.get("approval"),
            "armed": spec.get("armed") is True,
            "recordedBy": notes.get(APPROVAL_RECORDED_BY),
            "via": notes.get(APPROVAL_VIA),
            "armedBy": notes.get(ARMED_BY),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _refuse(message: str) -> Review:
    return Review(False, message)


def review(
    operation: str,
    username: str,
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    policy: Policy,
    now: dt.datetime,
    key: bytes,
) -> Review:
    """Allow or refuse one write of a TradingBot; on allow, the annotations to record."""
    if operation not in ("CREATE", "UPDATE"):
        return Review(True, "not a write of the spec")
    notes_new, notes_old = _annotations(obj), _annotations(old)
    forged = [k for k in RECORDED if notes_new.get(k) != notes_old.get(k)]
    if forged:
        return _refuse(
            f"annotations {', '.join(forged)} are recorded by the approval webhook and "
            "cannot be set or changed by hand"
        )
    spec, old_spec = _spec(obj), _spec(old)
    record: dict[str, str | None] = {}
    approved = _record_approval(spec, old_spec, notes_old, username, policy, now, record)
    if isinstance(approved, Review):
        return approved
    recorded_by, via = approved
    armed_by = _record_arming(spec, old_spec, notes_old, username, now, record)
    armed = spec.get("armed") is True
    if armed and via == VIA_USER and armed_by is not None and armed_by == recorded_by:
        return _refuse(
            f"two-person rule: {armed_by} approved this bot and cannot also arm it; "
            "another user must set spec.armed: true (or approve it)"
        )
    notes = {**notes_old, **record}
    meta = obj.get("metadata") or {}
    record[SIGNATURE] = signature(
        key, str(meta.get("namespace") or ""), str(meta.get("name") or ""), spec, notes
    )
    return Review(True, "recorded", record)


def _record_approval(
    spec: Mapping[str, Any],
    old_spec: Mapping[str, Any],
    notes_old: Mapping[str, str],
    username: str,
    policy: Policy,
    now: dt.datetime,
    record: dict[str, str | None],
) -> Review | tuple[str | None, str | None]:
    """A refusal, or (who the approval is recorded for, via whom) after this write; adds
    the approval annotations to `record` when the approval changed."""
    approval = spec.get("approval") if isinstance(spec.get("approval"), Mapping) else None
    gitops = username in policy.gitops_identities
    recorded_by = notes_old.get(APPROVAL_RECORDED_BY)
    via = notes_old.get(APPROVAL_VIA)
    if approval == old_spec.get("approval"):
        return recorded_by, via
    if approval is None:
        record.update({APPROVAL_RECORDED_BY: None, APPROVAL_RECORDED_AT: None})
        record[APPROVAL_VIA] = None
        return None, None
    refusal = _check_approval(approval, spec, username, gitops, policy, now)
    if refusal is not None:
        return refusal
    recorded_by = str(approval.get("approvedBy")) if gitops else username
    via = VIA_GITOPS if gitops else VIA_USER
    record[APPROVAL_RECORDED_BY] = recorded_by
    record[APPROVAL_RECORDED_AT] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    record[APPROVAL_VIA] = via
    return recorded_by, via


def _record_arming(
    spec: Mapping[str, Any],
    old_spec: Mapping[str, Any],
    notes_old: Mapping[str, str],
    username: str,
    now: dt.datetime,
    record: dict[str, str | None],
) -> str | None:
    """Who armed the bot after this write; adds the arming annotations to `record`."""
    armed, was_armed = spec.get("armed") is True, old_spec.get("armed") is True
    if armed and not was_armed:
        record[ARMED_BY] = username
        record[ARMED_AT] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return username
    if not armed:
        record.update({ARMED_BY: None, ARMED_AT: None})
        return None
    return notes_old.get(ARMED_BY)


def _check_approval(
    approval: Mapping[str, Any],
    spec: Mapping[str, Any],
    username: str,
    gitops: bool,
    policy: Policy,
    now: dt.datetime,
) -> Review | None:
    approved_by = approval.get("approvedBy")
    if not gitops and approved_by != username:
        return _refuse(
            f"spec.approval.approvedBy must be the user who writes the approval: "
            f"{username!r} wrote {approved_by!r} (approvers write their own approval)"
        )
    expires = parse_time(approval.get("expiresAt"))
    live = spec.get("mode") == "live"
    cap = policy.max_live_approval if live else policy.max_approval
    if expires is not None and expires - now > cap:
        hours = cap.total_seconds() / 3600
        return _refuse(
            f"spec.approval.expiresAt is {(expires - now).total_seconds() / 3600:.1f} h ahead; "
            f"{'live ' if live else ''}approvals are capped at {hours:g} h"
        )
    return None


def verify(
    key: bytes | None, namespace: str, name: str, spec: Mapping[str, Any], notes: Mapping[str, Any]
) -> Check:
    """ApprovalRecorded check for the gate: the webhook signed this approval and this
    arming, and the identities it recorded obey the two-person rule."""
    if key is None:
        return Check(False, UNVERIFIED, "the operator has no approval key (SPY_APPROVAL_KEY_FILE)")
    given = notes.get(SIGNATURE)
    if not given or not hmac.compare_digest(
        str(given), signature(key, namespace, name, spec, notes)
    ):
        return Check(
            False,
            UNVERIFIED,
            "approval and arming were not recorded by the approval webhook "
            "(is it registered?) or changed since",
        )
    approver, armer = notes.get(APPROVAL_RECORDED_BY), notes.get(ARMED_BY)
    raw = spec.get("approval")
    approval: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if not approver or notes.get(APPROVAL_VIA) not in (VIA_USER, VIA_GITOPS):
        return Check(False, UNVERIFIED, "no approval was recorded by the approval webhook")
    if spec.get("armed") is True and not armer:
        return Check(False, UNVERIFIED, "arming was not recorded by the approval webhook")
    if notes.get(APPROVAL_VIA) == VIA_USER and approver != approval.get("approvedBy"):
        return Check(False, UNVERIFIED, f"approval recorded for {approver}, not its approvedBy")
    if notes.get(APPROVAL_VIA) == VIA_USER and spec.get("armed") is True and armer == approver:
        return Check(False, UNVERIFIED, f"{armer} both approved and armed (two-person rule)")
    return Check(
        True,
        "ApprovalRecorded",
        f"approval recorded for {approver} ({notes.get(APPROVAL_VIA)}), armed by {armer}",
    )
