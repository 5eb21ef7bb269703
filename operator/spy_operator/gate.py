"""The safety gate: may a TradingBot run? One pure function (DESIGN §3).

    replicas = 1  only if  no global halt
                       and spec.armed
                       and an approval with approvedBy whose expiresAt is in the future
                       and the gateway exists, is Ready, has the bot's mode,
                           and is not read-only when the bot is live
                       and every pull secret is valid
                       and the VPN probe passes when it is required
    otherwise 0, with the first failing check as the reason.

No I/O and no Kubernetes imports: the reconciler gathers the facts, tests and
benchmarks call `evaluate_gate` directly, and the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spy_operator.conditions import Check


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class Reason(StrEnum):
    """Gate reasons, in the order the gate checks them."""

    HALTED = "GlobalHalt"
    NOT_ARMED = "NotArmed"
    APPROVAL_MISSING = "ApprovalMissing"
    APPROVAL_INVALID = "ApprovalInvalid"
    APPROVAL_EXPIRED = "ApprovalExpired"
    GATEWAY_NOT_FOUND = "GatewayNotFound"
    GATEWAY_NOT_READY = "GatewayNotReady"
    GATEWAY_MODE_MISMATCH = "GatewayModeMismatch"
    GATEWAY_READ_ONLY = "GatewayReadOnly"
    # pull secret and VPN reasons come from their own policies
    OPEN = "Armed"


@dataclass(frozen=True)
class Approval:
    approved_by: str | None
    reason: str | None
    expires_at: dt.datetime | None
    invalid: str | None = None  # why expiresAt could not be read, if it could not


@dataclass(frozen=True)
class GatewayView:
    """What the gate needs to know of the referenced IBGateway."""

    name: str
    exists: bool
    ready: bool = False
    trading_mode: Mode = Mode.PAPER
    read_only: bool = True


@dataclass(frozen=True)
class Halt:
    active: bool
    message: str = ""


@dataclass(frozen=True)
class GateInput:
    armed: bool
    approval: Approval | None
    mode: Mode
    gateway: GatewayView
    pull_secrets: Check
    vpn: Check
    halt: Halt
    now: dt.datetime


@dataclass(frozen=True)
class GateDecision:
    replicas: int
    reason: str
    message: str

    @property
    def open(self) -> bool:
        return self.replicas == 1


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 -> aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def parse_approval(spec: dict[str, Any]) -> Approval | None:
    raw = spec.get("approval")
    if not isinstance(raw, dict):
        return None
    expires_raw = raw.get("expiresAt")
    expires = parse_time(expires_raw)
    invalid = None
    if expires_raw is not None and expires is None:
        invalid = f"approval.expiresAt {expires_raw!r} is not an RFC 3339 time with a zone"
    approved_by = raw.get("approvedBy")
    reason = raw.get("reason")
    return Approval(
        approved_by=approved_by if isinstance(approved_by, str) and approved_by else None,
        reason=reason if isinstance(reason, str) and reason.strip() else None,
        expires_at=expires,
        invalid=invalid,
    )


def check_approval(approval: Approval | None, now: dt.datetime) -> Check:
    """Approved condition: present, readable, with approvedBy, and unexpired."""
    if approval is None or approval.approved_by is None:
        return Check(False, Reason.APPROVAL_MISSING, "no approval with approvedBy is present")
    if approval.invalid is not None:
        return Check(False, Reason.APPROVAL_INVALID, approval.invalid)
    if approval.expires_at is None:
        return Check(False, Reason.APPROVAL_MISSING, "approval has no expiresAt")
    if approval.expires_at <= now:
        return Check(
            False,
            Reason.APPROVAL_EXPIRED,
            f"approval by {approval.approved_by} expired at {approval.expires_at.isoformat()}",
        )
    return Check(
        True,
        "ApprovalValid",
        f"approved by {approval.approved_by} until {approval.expires_at.isoformat()}",
    )


def check_gateway(gateway: GatewayView, mode: Mode) -> Check:
    """GatewayReady condition for a bot: exists, Ready, same mode, writable when live."""
    if not gateway.exists:
        return Check(False, Reason.GATEWAY_NOT_FOUND, f"IBGateway {gateway.name!r} not found")
    if not gateway.ready:
        return Check(False, Reason.GATEWAY_NOT_READY, f"IBGateway {gateway.name!r} is not Ready")
    if gateway.trading_mode != mode:
        return Check(
            False,
            Reason.GATEWAY_MODE_MISMATCH,
            f"bot mode {mode.value} does not match gateway tradingMode "
            f"{gateway.trading_mode.value}",
        )
    if mode is Mode.LIVE and gateway.read_only:
        return Check(
            False,
            Reason.GATEWAY_READ_ONLY,
            f"live bot needs IBGateway {gateway.name!r} with readOnlyApi: false",
        )
    return Check(True, "GatewayReady", f"IBGateway {gateway.name!r} is Ready ({mode.value})")


def evaluate_gate(inp: GateInput) -> GateDecision:
    """Desired replicas of the bot (0 or 1), the reason and a message. Pure."""
    if inp.halt.active:
        return GateDecision(0, Reason.HALTED, inp.halt.message or "global halt is set")
    if not inp.armed:
        return GateDecision(0, Reason.NOT_ARMED, "spec.armed is false")
    approval = check_approval(inp.approval, inp.now)
    if not approval.ok:
        return GateDecision(0, approval.reason, approval.message)
    gateway = check_gateway(inp.gateway, inp.mode)
    if not gateway.ok:
        return GateDecision(0, gateway.reason, gateway.message)
    if not inp.pull_secrets.ok:
        return GateDecision(0, inp.pull_secrets.reason, inp.pull_secrets.message)
    if not inp.vpn.ok:
        return GateDecision(0, inp.vpn.reason, inp.vpn.message)
    assert inp.approval is not None and inp.approval.expires_at is not None
    return GateDecision(
        1,
        Reason.OPEN,
        f"armed by approval of {inp.approval.approved_by} until "
        f"{inp.approval.expires_at.isoformat()}",
    )


def next_deadline(approval: Approval | None, now: dt.datetime) -> dt.datetime | None:
    """When the decision changes with no event: the approval's expiry, if still ahead."""
    if approval is None or approval.expires_at is None or approval.expires_at <= now:
        return None
    return approval.expires_at
