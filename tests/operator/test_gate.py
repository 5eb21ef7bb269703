"""The pure safety gate: a table of every reason, then properties over all inputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spy_operator.conditions import Check
from spy_operator.gate import (
    CHECKS,
    Approval,
    GateInput,
    GatewayView,
    Halt,
    Mode,
    Reason,
    evaluate_gate,
    next_deadline,
    parse_approval,
)

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
OK = Check(True, "Ok", "ok")
GOOD = GateInput(
    armed=True,
    approval=Approval("bob", "why", NOW + dt.timedelta(hours=1)),
    mode=Mode.PAPER,
    gateway=GatewayView("gw", exists=True, ready=True, trading_mode=Mode.PAPER, read_only=True),
    pull_secrets=OK,
    vpn=OK,
    halt=Halt(False),
    now=NOW,
)


def test_all_conditions_hold_opens_the_gate() -> None:
    decision = evaluate_gate(GOOD)
    assert (decision.replicas, decision.reason) == (1, "Armed")
    assert "bob" in decision.message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"halt": Halt(True, "drill")}, Reason.HALTED),
        ({"armed": False}, Reason.NOT_ARMED),
        ({"approval": None}, Reason.APPROVAL_MISSING),
        ({"approval": Approval(None, "why", NOW + dt.timedelta(hours=1))}, Reason.APPROVAL_MISSING),
        ({"approval": Approval("bob", None, None)}, Reason.APPROVAL_MISSING),
        ({"approval": Approval("bob", "why", None, invalid="bad time")}, Reason.APPROVAL_INVALID),
        ({"approval": Approval("bob", "why", NOW)}, Reason.APPROVAL_EXPIRED),  # expiry is exclusive
        (
            {"approval": Approval("bob", "why", NOW - dt.timedelta(seconds=1))},
            Reason.APPROVAL_EXPIRED,
        ),
        ({"gateway": GatewayView("gw", exists=False)}, Reason.GATEWAY_NOT_FOUND),
        ({"gateway": GatewayView("gw", exists=True, ready=False)}, Reason.GATEWAY_NOT_READY),
        ({"mode": Mode.LIVE}, Reason.GATEWAY_MODE_MISMATCH),
        ({"pull_secrets": Check(False, "PullSecretNotFound", "x")}, "PullSecretNotFound"),
        ({"vpn": Check(False, "VPNUnreachable", "x")}, "VPNUnreachable"),
    ],
)
def test_each_failing_condition_closes_the_gate_with_its_reason(
    change: dict[str, object], reason: str
) -> None:
    decision = evaluate_gate(replace(GOOD, **change))  # type: ignore[arg-type]
    assert decision.replicas == 0
    assert decision.reason == reason


def test_live_bot_needs_a_writable_live_gateway() -> None:
    live_gw = GatewayView("gw", exists=True, ready=True, trading_mode=Mode.LIVE, read_only=True)
    held = evaluate_gate(replace(GOOD, mode=Mode.LIVE, gateway=live_gw))
    assert (held.replicas, held.reason) == (0, Reason.GATEWAY_READ_ONLY)
    opened = evaluate_gate(replace(GOOD, mode=Mode.LIVE, gateway=replace(live_gw, read_only=False)))
    assert opened.replicas == 1


def test_paper_bot_may_use_a_read_only_paper_gateway() -> None:
    assert evaluate_gate(GOOD).replicas == 1  # GOOD's gateway is read-only


def test_halt_wins_over_everything() -> None:
    decision = evaluate_gate(replace(GOOD, halt=Halt(True, "kill switch"), armed=False))
    assert decision.reason == Reason.HALTED and "kill switch" in decision.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, None),
        (
            {"approval": {"approvedBy": "bob", "expiresAt": "2026-11-25T16:00:00Z"}},
            Approval("bob", None, dt.datetime(2026, 11, 25, 16, tzinfo=dt.UTC)),
        ),
        (
            {
                "approval": {
                    "approvedBy": "bob",
                    "reason": "  ",
                    "expiresAt": "2026-11-25T16:00:00+01:00",
                }
            },
            Approval("bob", None, dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC)),
        ),
        (
            {"approval": {"approvedBy": "", "expiresAt": "2026-11-25T16:00:00"}},
            Approval(
                None,
                None,
                None,
                invalid="approval.expiresAt '2026-11-25T16:00:00' is not an RFC 3339 time"
                " with a zone",
            ),
        ),
    ],
)
def test_parse_approval(raw: dict[str, object], expected: Approval | None) -> None:
    assert parse_approval(raw) == expected


def test_next_deadline_is_the_expiry_while_ahead() -> None:
    assert next_deadline(GOOD.approval, NOW) == NOW + dt.timedelta(hours=1)
    assert next_deadline(GOOD.approval, NOW + dt.timedelta(hours=2)) is None
    assert next_deadline(None, NOW) is None


# ----------------------------------------------------------------- properties

checks = st.builds(Check, st.booleans(), st.sampled_from(["A", "B"]), st.text(max_size=5))
times = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)
)
approvals = st.one_of(
    st.none(),
    st.builds(
        Approval,
        st.one_of(st.none(), st.just("bob")),
        st.one_of(st.none(), st.just("r")),
        st.one_of(st.none(), times),
        st.one_of(st.none(), st.just("bad")),
    ),
)
gateways = st.builds(
    GatewayView,
    st.just("gw"),
    st.booleans(),
    st.booleans(),
    st.sampled_from(list(Mode)),
    st.booleans(),
)
inputs = st.builds(
    GateInput,
    st.booleans(),
    approvals,
    st.sampled_from(list(Mode)),
    gateways,
    checks,
    checks,
    st.builds(Halt, st.booleans(), st.just("")),
    times,
)


@given(inputs)
def test_gate_opens_exactly_when_every_condition_holds(inp: GateInput) -> None:
    decision = evaluate_gate(inp)
    a, gw = inp.approval, inp.gateway
    should_open = (
        not inp.halt.active
        and inp.armed
        and a is not None
        and a.approved_by is not None
        and a.invalid is None
        and a.expires_at is not None
        and a.expires_at > inp.now
        and gw.exists
        and gw.ready
        and gw.trading_mode == inp.mode
        and not (inp.mode is Mode.LIVE and gw.read_only)
        and inp.pull_secrets.ok
        and inp.vpn.ok
    )
    assert decision.replicas == (1 if should_open else 0)
    assert decision.replicas in (0, 1)
    assert decision.reason and decision.message is not None
    assert (decision.reason == Reason.OPEN) == should_open


@given(inputs, st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=30)))
def test_time_only_closes_the_gate(inp: GateInput, later: dt.timedelta) -> None:
    """Nothing but an edit can open the gate: letting time pass never raises replicas."""
    before = evaluate_gate(inp).replicas
    after = evaluate_gate(replace(inp, now=inp.now + later)).replicas
    assert after <= before


@given(inputs)
def test_halt_always_closes(inp: GateInput) -> None:
    assert evaluate_gate(replace(inp, halt=Halt(True))).replicas == 0


def test_the_decision_reports_every_check_not_only_the_first_failure() -> None:
    bad = replace(
        GOOD,
        armed=False,
        approval=None,
        gateway=GatewayView("gw", exists=False),
        vpn=Check(False, "VPNUnreachable", "x"),
    )
    decision = evaluate_gate(bad)
    assert decision.reason == Reason.NOT_ARMED  # the first failure is still the reason
    assert decision.failing == ["Armed", "Approved", "GatewayReady", "VPNReady"]
    assert decision.check("Halt").ok and decision.check("PullSecretReady").ok
    assert decision.check("GatewayReady").reason == Reason.GATEWAY_NOT_FOUND
    assert [name for name, _ in evaluate_gate(GOOD).checks] == list(CHECKS)
    assert evaluate_gate(GOOD).failing == []


@given(
    halted=st.booleans(),
    armed=st.booleans(),
    approved=st.booleans(),
    gateway_ok=st.booleans(),
    pull_ok=st.booleans(),
    vpn_ok=st.booleans(),
)
def test_the_gate_opens_exactly_when_the_report_has_no_failure(
    halted: bool, armed: bool, approved: bool, gateway_ok: bool, pull_ok: bool, vpn_ok: bool
) -> None:
    inp = replace(
        GOOD,
        halt=Halt(halted),
        armed=armed,
        approval=GOOD.approval if approved else None,
        gateway=GOOD.gateway if gateway_ok else GatewayView("gw", exists=False),
        pull_secrets=OK if pull_ok else Check(False, "PullSecretNotFound", "x"),
        vpn=OK if vpn_ok else Check(False, "VPNUnreachable", "x"),
    )
    decision = evaluate_gate(inp)
    assert decision.open == (decision.failing == [])
    if decision.failing:
        assert decision.reason == decision.check(decision.failing[0]).reason
