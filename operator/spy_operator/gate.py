"""The safety gate: may a TradingBot run? One pure function (DESIGN §3).

    replicas = 1  only if  no global halt
                       and spec.armed
                       and an approval with approvedBy whose expiresAt is in the future
                       and the gateway exists, is Ready, has the bot's mode,
                           and is not read-only when the bot is live
                       and every pull secret is valid
                       and the VPN probe passes when it is required
    otherwise 0, with the first failing check as the reason; the decision also
    carries every check's result (a report, not only the first failure).

No I/O and no Kubernetes imports: the reconciler gathers the facts, tests and
benchmarks call `evaluate_gate` directly, and the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from spy_operator.api import Approval as Approval
from spy_operator.api import Mode as Mode
from spy_operator.api import TradingBot
from spy_operator.api import parse_approval as parse_approval
from spy_operator.conditions import Check


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
class GatewayView:
    """What the gate needs to know of the referenced IBGateway."""

    name: str
    exists: bool
    ready: bool = False
    trading_mode: Mode = Mode.PAPER
    read_only: bool = True
    not_ready: str = ""  # why it is not Ready, when known


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

    @classmethod
    def for_bot(
        cls,
        bot: TradingBot,
        gateway: GatewayView,
        pull_secrets: Check,
        vpn: Check,
        halt: Halt,
        now: dt.datetime,
    ) -> GateInput:
        """The gate's input from a bot's view and the facts gathered for it: the one
        place that reads gate-relevant TradingBot fields."""
        return cls(
            armed=bot.armed,
            approval=bot.approval,
            mode=bot.mode,
            gateway=gateway,
            pull_secrets=pull_secrets,
            vpn=vpn,
            halt=halt,
            now=now,
        )


# The gate's checks, in order; each names what it checks (Halt passes when no halt
# is set). The report keeps all of them, not only the first failure, so conditions,
# `kubectl spyoptions status` and the admission webhook read one object.
CHECKS = ("Halt", "Armed", "Approved", "GatewayReady", "PullSecretReady", "VPNReady")


@dataclass(frozen=True)
class GateDecision:
    replicas: int
    reason: str
    message: str
    checks: tuple[tuple[str, Check], ...] = ()

    @property
    def open(self) -> bool:
        return self.replicas == 1

    def check(self, name: str) -> Check:
        return dict(self.checks)[name]

    @property
    def failing(self) -> list[str]:
        """Names of every failing check, in gate order."""
        return [name for name, chk in self.checks if not chk.ok]


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


def check_gateway_ready(gateway: GatewayView) -> Check:
    """GatewayReady condition for any consumer (a detector): exists and is Ready."""
    if not gateway.exists:
        return Check(False, Reason.GATEWAY_NOT_FOUND, f"IBGateway {gateway.name!r} not found")
    if not gateway.ready:
        why = f": {gateway.not_ready}" if gateway.not_ready else ""
        return Check(
            False, Reason.GATEWAY_NOT_READY, f"IBGateway {gateway.name!r} is not Ready{why}"
        )
    return Check(True, "GatewayReady", f"IBGateway {gateway.name!r} is Ready")


def check_gateway(gateway: GatewayView, mode: Mode) -> Check:
    """GatewayReady condition for a bot: exists, Ready, same mode, writable when live."""
    ready = check_gateway_ready(gateway)
    if not ready.ok:
        return ready
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


def check_halt(halt: Halt) -> Check:
    if halt.active:
        return Check(False, Reason.HALTED, halt.message or "global halt is set")
    return Check(True, "NotHalted", "no global halt")


def check_armed(armed: bool) -> Check:
    if not armed:
        return Check(False, Reason.NOT_ARMED, "spec.armed is false")
    return Check(True, "ArmRequested", "spec.armed is true")


def evaluate_gate(inp: GateInput) -> GateDecision:
    """Desired replicas of the bot (0 or 1), the reason and a message, with the result
    of every check. Pure. The first failing check (in CHECKS order) is the reason."""
    checks = (
        ("Halt", check_halt(inp.halt)),
        ("Armed", check_armed(inp.armed)),
        ("Approved", check_approval(inp.approval, inp.now)),
        ("GatewayReady", check_gateway(inp.gateway, inp.mode)),
        ("PullSecretReady", inp.pull_secrets),
        ("VPNReady", inp.vpn),
    )
    failed = next((chk for _, chk in checks if not chk.ok), None)
    if failed is not None:
        return GateDecision(0, failed.reason, failed.message, checks)
    assert inp.approval is not None and inp.approval.expires_at is not None
    return GateDecision(
        1,
        Reason.OPEN,
        f"armed by approval of {inp.approval.approved_by} until "
        f"{inp.approval.expires_at.isoformat()}",
        checks,
    )


def next_deadline(approval: Approval | None, now: dt.datetime) -> dt.datetime | None:
    """When the decision changes with no event: the approval's expiry, if still ahead."""
    if approval is None or approval.expires_at is None or approval.expires_at <= now:
        return None
    return approval.expires_at
