"""The pre-order policies: one small function per limit, applied in a fixed order by
``check_order``; the first failure is the reason and names its limit and the numbers.
Pure; ``service.Bot`` calls ``check_order`` before every order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from spy_bot.risk.limits import RiskLimits
from spy_bot.risk.state import Mode, RiskState, loss_today


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
