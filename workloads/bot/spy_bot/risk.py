"""The risk engine: every order proposal against every limit, and the trading state.

Modelled on NautilusTrader's RiskEngine (trading states ACTIVE / REDUCING / HALTED,
notional and rate limits), freqtrade's protections and Hummingbot's kill switch. Pure:
no I/O, the clock and the market-hours answer are arguments, so it is table-tested
and property-tested (tests/bot/test_risk.py). ``service.Bot`` calls ``check_order``
before every order and the transition functions on every fill, reject and P&L update.

States:

* ACTIVE: new positions may be opened.
* REDUCING: the day's loss passed ``reduceAtLossFraction`` of ``maxDailyLoss``; only
  orders that reduce a position pass (this bot only opens, so none do).
* HALTED: the day's loss reached ``maxDailyLoss`` or ``maxConsecutiveRejects`` orders
  in a row were rejected (circuit breaker). Nothing passes, and the state stays until a
  human resets it (``reset``; docs/bot.md says how) -- a better P&L never un-halts.

``check_order`` applies the policies in a fixed order; the first failure is the
reason. Every refusal names its limit and the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class LimitsError(ValueError):
    """spec.risk is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """spec.risk with its safe defaults (docs/bot.md lists each)."""

    max_contracts_per_order: int = 1
    max_contracts: int = 1  # total open spreads, all expiries
    max_position_per_expiry: int = 1
    max_order_notional: float = 5000.0  # max loss of one order, USD
    max_open_orders: int = 1
    max_orders_per_minute: int = 5
    max_daily_loss: float = 1000.0
    reduce_at_loss_fraction: float = 0.8
    max_consecutive_rejects: int = 3
    trading_hours: bool = True  # only inside NYSE regular sessions
    allowed_symbols: tuple[str, ...] = ("SPY",)
    allowed_rights: tuple[str, ...] = ("C", "P")
    min_dte: int = 1
    max_dte: int = 45


# spec.risk field -> (attribute, parser kind, minimum, maximum)
_FIELDS: dict[str, tuple[str, str, float, float]] = {
    "maxContractsPerOrder": ("max_contracts_per_order", "int", 1, 10_000),
    "maxContracts": ("max_contracts", "int", 1, 10_000),
    "maxPositionPerExpiry": ("max_position_per_expiry", "int", 1, 10_000),
    "maxOrderNotional": ("max_order_notional", "num", 0, 1e9),
    "maxOpenOrders": ("max_open_orders", "int", 1, 1000),
    "maxOrdersPerMinute": ("max_orders_per_minute", "int", 1, 600),
    "maxDailyLoss": ("max_daily_loss", "num", 0, 1e9),
    "reduceAtLossFraction": ("reduce_at_loss_fraction", "num", 0, 1),
    "maxConsecutiveRejects": ("max_consecutive_rejects", "int", 1, 100),
    "minDTE": ("min_dte", "int", 0, 3650),
    "maxDTE": ("max_dte", "int", 0, 3650),
}


def parse_limits(spec: Mapping[str, Any] | None) -> RiskLimits:
    """spec.risk -> RiskLimits; absent fields keep the safe defaults."""
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise LimitsError("risk: expected an object")
    values: dict[str, Any] = {}
    for key, (attr, kind, lo, hi) in _FIELDS.items():
        if key not in spec:
            continue
        raw = spec[key]
        ok = not isinstance(raw, bool) and isinstance(raw, int | float) and math.isfinite(raw)
        if kind == "int":
            ok = ok and float(raw).is_integer()
        if not ok or not lo <= raw <= hi:
            raise LimitsError(f"risk.{key}: expected a {kind} in [{lo:g}, {hi:g}], got {raw!r}")
        values[attr] = int(raw) if kind == "int" else float(raw)
    if "tradingHours" in spec:
        hours = spec["tradingHours"]
        if hours not in ("regular", "any"):
            raise LimitsError(f"risk.tradingHours: 'regular' or 'any', got {hours!r}")
        values["trading_hours"] = hours == "regular"
    for key, attr, allowed in (
        ("allowedSymbols", "allowed_symbols", None),
        ("allowedRights", "allowed_rights", ("C", "P")),
    ):
        if key in spec:
            items = spec[key]
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise LimitsError(f"risk.{key}: expected a list of strings")
            if allowed is not None and any(x not in allowed for x in items):
                raise LimitsError(f"risk.{key}: each must be one of {allowed}, got {items}")
            values[attr] = tuple(items)
    limits = RiskLimits(**values)
    if limits.min_dte > limits.max_dte:
        raise LimitsError(f"risk.minDTE ({limits.min_dte}) exceeds risk.maxDTE ({limits.max_dte})")
    return limits


@dataclass(frozen=True, slots=True)
class RiskState:
    mode: Mode = Mode.ACTIVE
    reason: str = ""  # why the mode is not ACTIVE
    consecutive_rejects: int = 0
    order_times: tuple[datetime, ...] = ()  # orders sent in the last minute
    open_orders: int = 0
    positions: Mapping[date, int] = field(default_factory=dict)  # spreads per expiry
    daily_pnl: float = 0.0  # realised + unrealised today, from IB
    loss_baseline: float = 0.0  # daily P&L at the last human reset


@dataclass(frozen=True, slots=True)
class Proposal:
    """An order as the risk engine sees it (``service`` builds it from the intent)."""

    symbol: str
    right: str
    expiry: date
    quantity: int
    max_loss: float  # USD


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    message: str


PASS = Verdict(True, "Accepted", "every risk limit holds")

Policy = Callable[[Proposal, RiskState, RiskLimits, datetime, bool], Verdict | None]


def _state(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    if st.mode is Mode.HALTED:
        return Verdict(False, "RiskHalted", f"trading is halted: {st.reason}")
    if st.mode is Mode.REDUCING:
        return Verdict(False, "RiskReducing", f"only reducing orders pass: {st.reason}")
    return None


def _hours(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    if lim.trading_hours and not open_:
        return Verdict(False, "OutsideTradingHours", f"NYSE is closed at {now.isoformat()}")
    return None


def _symbol(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    if p.symbol not in lim.allowed_symbols:
        return Verdict(
            False, "SymbolNotAllowed", f"{p.symbol} is not in {list(lim.allowed_symbols)}"
        )
    if p.right not in lim.allowed_rights:
        return Verdict(False, "RightNotAllowed", f"{p.right} is not in {list(lim.allowed_rights)}")
    return None


def _dte(p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool) -> Verdict | None:
    dte = (p.expiry - now.date()).days
    if not lim.min_dte <= dte <= lim.max_dte:
        return Verdict(
            False,
            "DTEOutOfRange",
            f"{dte} days to expiry is outside [{lim.min_dte}, {lim.max_dte}]",
        )
    return None


def _size(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    if p.quantity > lim.max_contracts_per_order:
        return Verdict(
            False,
            "TooManyContracts",
            f"{p.quantity} contracts exceed maxContractsPerOrder {lim.max_contracts_per_order}",
        )
    if p.max_loss > lim.max_order_notional:
        return Verdict(
            False,
            "NotionalTooLarge",
            f"max loss {p.max_loss:.2f} USD exceeds maxOrderNotional {lim.max_order_notional:g}",
        )
    return None


def _orders(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    if st.open_orders >= lim.max_open_orders:
        return Verdict(
            False,
            "TooManyOpenOrders",
            f"{st.open_orders} open orders, maxOpenOrders {lim.max_open_orders}",
        )
    recent = sum(1 for t in st.order_times if now - t < timedelta(minutes=1))
    if recent >= lim.max_orders_per_minute:
        return Verdict(
            False,
            "RateLimited",
            f"{recent} orders in the last minute, maxOrdersPerMinute {lim.max_orders_per_minute}",
        )
    return None


def _position(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    at_expiry = abs(st.positions.get(p.expiry, 0)) + p.quantity
    if at_expiry > lim.max_position_per_expiry:
        return Verdict(
            False,
            "PositionLimitPerExpiry",
            f"{at_expiry} spreads at {p.expiry} would exceed maxPositionPerExpiry "
            f"{lim.max_position_per_expiry}",
        )
    total = sum(abs(q) for q in st.positions.values()) + p.quantity
    if total > lim.max_contracts:
        return Verdict(
            False, "PositionLimit", f"{total} spreads would exceed maxContracts {lim.max_contracts}"
        )
    return None


def _loss(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, open_: bool
) -> Verdict | None:
    loss = loss_today(st)
    if loss >= lim.max_daily_loss:
        return Verdict(
            False,
            "DailyLossLimit",
            f"today's loss {loss:.2f} reached maxDailyLoss {lim.max_daily_loss:g}",
        )
    return None


POLICIES: tuple[Policy, ...] = (_state, _hours, _symbol, _dte, _size, _orders, _position, _loss)


def check_order(
    p: Proposal, st: RiskState, lim: RiskLimits, now: datetime, market_open: bool
) -> Verdict:
    """The first failing policy's verdict, or PASS."""
    for policy in POLICIES:
        verdict = policy(p, st, lim, now, market_open)
        if verdict is not None:
            return verdict
    return PASS


# ------------------------------------------------------------------ transitions


def loss_today(st: RiskState) -> float:
    """Loss since the last reset, positive when losing."""
    return max(0.0, -(st.daily_pnl - st.loss_baseline))


def on_pnl(st: RiskState, daily_pnl: float, lim: RiskLimits) -> RiskState:
    """New daily P&L from IB: may move ACTIVE -> REDUCING -> HALTED, never back."""
    st = replace(st, daily_pnl=daily_pnl)
    loss = loss_today(st)
    if st.mode is Mode.HALTED:
        return st
    if loss >= lim.max_daily_loss:
        return replace(
            st,
            mode=Mode.HALTED,
            reason=f"daily loss {loss:.2f} reached maxDailyLoss {lim.max_daily_loss:g}",
        )
    if st.mode is Mode.ACTIVE and loss >= lim.reduce_at_loss_fraction * lim.max_daily_loss:
        return replace(
            st,
            mode=Mode.REDUCING,
            reason=f"daily loss {loss:.2f} passed {lim.reduce_at_loss_fraction:g} of maxDailyLoss",
        )
    return st


def on_reject(st: RiskState, lim: RiskLimits) -> RiskState:
    """IB rejected an order: N in a row trips the circuit breaker (HALTED)."""
    n = st.consecutive_rejects + 1
    st = replace(st, consecutive_rejects=n)
    if n >= lim.max_consecutive_rejects and st.mode is not Mode.HALTED:
        return replace(st, mode=Mode.HALTED, reason=f"circuit breaker: {n} consecutive rejects")
    return st


def on_accept(st: RiskState) -> RiskState:
    return replace(st, consecutive_rejects=0)


def on_order_sent(st: RiskState, now: datetime) -> RiskState:
    recent = tuple(t for t in st.order_times if now - t < timedelta(minutes=1))
    return replace(st, order_times=(*recent, now), open_orders=st.open_orders + 1)


def with_book(st: RiskState, open_orders: int, positions: Mapping[date, int]) -> RiskState:
    """The open orders and positions IB reports now."""
    return replace(st, open_orders=open_orders, positions=dict(positions))


def reset(st: RiskState) -> RiskState:
    """A human's reset: ACTIVE again, the day's loss counted from now."""
    return replace(
        st, mode=Mode.ACTIVE, reason="", consecutive_rejects=0, loss_baseline=st.daily_pnl
    )
