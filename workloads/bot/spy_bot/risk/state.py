"""The trading state (ACTIVE / REDUCING / HALTED, rejects in a row, recent orders, the
book, the day's P&L) and its pure transitions. ``service.Bot`` calls the transitions on
every order sent, accept, reject, P&L update and human reset; the policies read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from spy_bot.risk.limits import RiskLimits


class Mode(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


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
