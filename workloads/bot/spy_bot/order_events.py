"""What happens to the bot's orders after they leave: status changes, fills, the
day's P&L, and the risk state moves they cause (a HALT cancels what is open).

A mixin of ``service.Bot`` (its only user): ``Bot.__init__`` subscribes these handlers
to ib_async's global order, execution and P&L events.
"""

from __future__ import annotations

import math
from typing import Any

from ib_async import Trade

from spy_bot import risk
from spy_bot.audit import AuditLog
from spy_bot.broker import Broker
from spy_bot.metrics import BotMetrics
from spy_bot.settings import Settings


class OrderEvents:
    """Order, fill and P&L events -> audit lines, metrics and risk state. The state it
    shares with ``Bot`` is set in ``Bot.__init__``."""

    settings: Settings
    broker: Broker
    audit: AuditLog
    metrics: BotMetrics
    state: risk.RiskState
    _last_status: dict[str, str]
    _fills_seen: set[str]

    # -- orders after they leave ------------------------------------------------------
    # Global events, not per-trade ones: after a reconnect ib_async rebuilds its trades
    # from the gateway's replay, and those new objects must be followed too.
    def _on_status(self, t: Trade) -> None:
        ref = str(t.order.orderRef)
        if not ref.startswith("spy-"):
            return
        status = t.orderStatus.status
        if self._last_status.get(ref) == status:
            return
        self._last_status[ref] = status
        codes = [e.errorCode for e in t.log if e.errorCode]
        self.audit.write(
            "order_status", order_ref=ref, order_id=t.order.orderId, status=status,
            filled=t.orderStatus.filled, remaining=t.orderStatus.remaining, error_codes=codes,
        )  # fmt: skip
        self.metrics.orders.labels(status.lower()).inc()
        if status == "Submitted":
            self.state = risk.on_accept(self.state)
        elif status in ("Cancelled", "Inactive") and any(c != 202 for c in codes):
            # an error other than "Order Canceled" ended it: the gateway rejected it
            self._set_state(risk.on_reject(self.state, self.settings.limits), f"reject of {ref}")

    def _on_fill(self, t: Trade, fill: Any) -> None:
        ref = str(t.order.orderRef)
        ex = fill.execution
        if not ref.startswith("spy-") or ex.execId in self._fills_seen:
            return
        self._fills_seen.add(ex.execId)
        self.audit.write(
            "fill", order_ref=ref, order_id=t.order.orderId, exec_id=ex.execId,
            side=ex.side, shares=ex.shares, price=ex.price,
        )  # fmt: skip
        self.metrics.orders.labels("fill").inc()

    def _on_pnl_event(self, pnl: Any) -> None:
        daily = getattr(pnl, "dailyPnL", None)
        if isinstance(daily, float) and math.isfinite(daily):  # NaN until IB reports
            self.on_pnl(daily)

    def _set_state(self, new: risk.RiskState, why: str) -> None:
        old = self.state
        self.state = new
        if new.mode is not old.mode:
            self.metrics.risk_mode.state(new.mode.value)
            self.audit.write(
                "risk_state",
                mode=new.mode.value,
                previous=old.mode.value,
                reason=new.reason,
                trigger=why,
            )
            if new.mode is risk.Mode.HALTED:
                self.cancel_open_orders(f"risk engine halted: {new.reason}")

    def on_pnl(self, daily_pnl: float) -> None:
        self.metrics.daily_pnl.set(daily_pnl)
        self._set_state(
            risk.on_pnl(self.state, daily_pnl, self.settings.limits), "daily P&L from IB"
        )

    def cancel_open_orders(self, reason: str) -> list[Trade]:
        trades = self.broker.own_open_trades() if self.broker.connected else []
        for t in trades:
            self.broker.cancel(t)
            self.audit.write(
                "cancel", order_ref=t.order.orderRef, order_id=t.order.orderId, reason=reason
            )
            self.metrics.orders.labels("cancel_sent").inc()
        return trades
