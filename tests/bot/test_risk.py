"""The risk engine (spy_bot.risk): every limit refuses with its own reason (table), and
properties that must hold for any input (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spy_bot import risk
from spy_bot.risk import LimitsError, Mode, Proposal, RiskLimits, RiskState, check_order

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
EXPIRY = date(2026, 12, 11)
LIMITS = RiskLimits(
    max_contracts_per_order=2,
    max_contracts=4,
    max_position_per_expiry=3,
    max_order_notional=1000,
    max_open_orders=2,
    max_orders_per_minute=3,
    max_daily_loss=500,
)
OK = Proposal("SPY", "C", EXPIRY, 1, 400.0)


def recent(n: int) -> tuple[datetime, ...]:
    return tuple(NOW - timedelta(seconds=5 * i) for i in range(n))


CASES = [
    ("accepted", OK, RiskState(), LIMITS, True, "Accepted"),
    ("halted", OK, RiskState(mode=Mode.HALTED, reason="x"), LIMITS, True, "RiskHalted"),
    ("reducing", OK, RiskState(mode=Mode.REDUCING), LIMITS, True, "RiskReducing"),
    ("market closed", OK, RiskState(), LIMITS, False, "OutsideTradingHours"),
    (
        "closed but any hours",
        OK,
        RiskState(),
        replace(LIMITS, trading_hours=False),
        False,
        "Accepted",
    ),
    ("symbol", replace(OK, symbol="QQQ"), RiskState(), LIMITS, True, "SymbolNotAllowed"),
    ("right", OK, RiskState(), replace(LIMITS, allowed_rights=("P",)), True, "RightNotAllowed"),
    ("dte too short", replace(OK, expiry=NOW.date()), RiskState(), LIMITS, True, "DTEOutOfRange"),
    (
        "dte too long",
        replace(OK, expiry=date(2027, 6, 1)),
        RiskState(),
        LIMITS,
        True,
        "DTEOutOfRange",
    ),
    ("contracts per order", replace(OK, quantity=3), RiskState(), LIMITS, True, "TooManyContracts"),
    ("notional", replace(OK, max_loss=1000.01), RiskState(), LIMITS, True, "NotionalTooLarge"),
    ("open orders", OK, RiskState(open_orders=2), LIMITS, True, "TooManyOpenOrders"),
    ("rate", OK, RiskState(order_times=recent(3)), LIMITS, True, "RateLimited"),
    (
        "rate window slides",
        OK,
        RiskState(order_times=(NOW - timedelta(seconds=61),) * 5),
        LIMITS,
        True,
        "Accepted",
    ),
    ("per expiry", OK, RiskState(positions={EXPIRY: 3}), LIMITS, True, "PositionLimitPerExpiry"),
    (
        "total position",
        OK,
        RiskState(positions={date(2026, 12, 18): 2, date(2026, 12, 24): 2}),
        LIMITS,
        True,
        "PositionLimit",
    ),
    ("daily loss", OK, RiskState(daily_pnl=-500.0), LIMITS, True, "DailyLossLimit"),
    (
        "loss after reset counts from baseline",
        OK,
        RiskState(daily_pnl=-600.0, loss_baseline=-550.0),
        LIMITS,
        True,
        "Accepted",
    ),
]


@pytest.mark.parametrize(
    ("name", "p", "state", "limits", "market_open", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_each_limit_refuses_with_its_reason(
    name: str, p: Proposal, state: RiskState, limits: RiskLimits, market_open: bool, reason: str
) -> None:
    verdict = check_order(p, state, limits, NOW, market_open)
    assert verdict.reason == reason, verdict
    assert verdict.ok is (reason == "Accepted")
    assert verdict.message


def test_daily_loss_goes_reducing_then_halted_and_stays_until_reset() -> None:
    lim = RiskLimits(max_daily_loss=1000, reduce_at_loss_fraction=0.8)
    s = risk.on_pnl(RiskState(), -100, lim)
    assert s.mode is Mode.ACTIVE
    s = risk.on_pnl(s, -850, lim)
    assert s.mode is Mode.REDUCING
    s = risk.on_pnl(s, -1000, lim)
    assert s.mode is Mode.HALTED and "maxDailyLoss" in s.reason
    s = risk.on_pnl(s, +5000, lim)  # a recovery never un-halts
    assert s.mode is Mode.HALTED
    s = risk.reset(s)
    assert s.mode is Mode.ACTIVE and s.loss_baseline == 5000
    assert check_order(OK, s, LIMITS, NOW, True).ok


def test_circuit_breaker_after_n_consecutive_rejects() -> None:
    lim = RiskLimits(max_consecutive_rejects=3)
    s = risk.on_reject(risk.on_reject(RiskState(), lim), lim)
    assert s.mode is Mode.ACTIVE
    s = risk.on_accept(s)  # an accepted order breaks the run
    s = risk.on_reject(risk.on_reject(s, lim), lim)
    assert s.mode is Mode.ACTIVE
    s = risk.on_reject(s, lim)
    assert s.mode is Mode.HALTED and "3 consecutive rejects" in s.reason
    assert check_order(OK, s, LIMITS, NOW, True).reason == "RiskHalted"


def test_defaults_are_the_safe_ones() -> None:
    lim = risk.parse_limits({})
    assert lim == RiskLimits()
    assert (lim.max_contracts_per_order, lim.max_open_orders, lim.trading_hours) == (1, 1, True)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"maxContractsPerOrder": 0}, "risk.maxContractsPerOrder"),
        ({"maxContractsPerOrder": 1.5}, "risk.maxContractsPerOrder"),
        ({"maxDailyLoss": True}, "risk.maxDailyLoss"),
        ({"maxOrderNotional": float("nan")}, "risk.maxOrderNotional"),
        ({"reduceAtLossFraction": 2}, "risk.reduceAtLossFraction"),
        ({"tradingHours": "always"}, "risk.tradingHours"),
        ({"allowedRights": ["X"]}, "risk.allowedRights"),
        ({"allowedSymbols": "SPY"}, "risk.allowedSymbols"),
        ({"minDTE": 10, "maxDTE": 5}, "risk.minDTE"),
    ],
)
def test_bad_limits_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(LimitsError, match=field.replace(".", r"\.")):
        risk.parse_limits(spec)


# ------------------------------------------------------------------ properties

proposals = st.builds(
    Proposal,
    symbol=st.sampled_from(["SPY", "QQQ"]),
    right=st.sampled_from(["C", "P"]),
    expiry=st.dates(min_value=date(2026, 12, 1), max_value=date(2027, 3, 1)),
    quantity=st.integers(1, 5),
    max_loss=st.floats(0, 5000, allow_nan=False),
)
states = st.builds(
    RiskState,
    mode=st.sampled_from(list(Mode)),
    consecutive_rejects=st.integers(0, 5),
    order_times=st.lists(
        st.integers(0, 120).map(lambda s: NOW - timedelta(seconds=s)), max_size=8
    ).map(tuple),
    open_orders=st.integers(0, 4),
    positions=st.dictionaries(
        st.dates(min_value=date(2026, 12, 1), max_value=date(2027, 3, 1)),
        st.integers(-3, 3),
        max_size=4,
    ),
    daily_pnl=st.floats(-2000, 2000, allow_nan=False),
)


@given(proposals, states, st.booleans())
def test_an_accepted_order_respects_every_limit(
    p: Proposal, s: RiskState, market_open: bool
) -> None:
    v = check_order(p, s, LIMITS, NOW, market_open)
    if v.ok:
        assert s.mode is Mode.ACTIVE and market_open
        assert p.quantity <= LIMITS.max_contracts_per_order
        assert p.max_loss <= LIMITS.max_order_notional
        assert s.open_orders < LIMITS.max_open_orders
        assert abs(s.positions.get(p.expiry, 0)) + p.quantity <= LIMITS.max_position_per_expiry
        assert risk.loss_today(s) < LIMITS.max_daily_loss
    else:
        assert v.reason != "Accepted" and v.message


@given(proposals, states)
def test_halted_refuses_everything(p: Proposal, s: RiskState) -> None:
    assert not check_order(p, replace(s, mode=Mode.HALTED), LIMITS, NOW, True).ok


@given(states, st.lists(st.floats(-3000, 3000, allow_nan=False), max_size=10))
def test_pnl_updates_never_leave_halted(s: RiskState, pnls: list[float]) -> None:
    s = replace(s, mode=Mode.HALTED)
    for pnl in pnls:
        s = risk.on_pnl(s, pnl, LIMITS)
        assert s.mode is Mode.HALTED


@given(st.lists(st.floats(-3000, 3000, allow_nan=False), min_size=1, max_size=10))
def test_loss_at_or_past_the_limit_always_halts(pnls: list[float]) -> None:
    s = RiskState()
    for pnl in pnls:
        s = risk.on_pnl(s, pnl, LIMITS)
    if min(pnls) <= -LIMITS.max_daily_loss:
        assert s.mode is Mode.HALTED
