"""The bot: signals -> strategy -> risk -> own TradingBot -> what-if -> order -> audit.

``Bot`` is what ``process.run_bot`` (``python -m spy_bot run``) wires to the feed and
the gateway, and what tests drive directly. Signals are handled one at a time from
a queue, so the idempotency and risk checks never race each other. Every signal gets
exactly one ``decision`` audit line: ``order``, ``skip`` (no rule, stale, no contract),
``duplicate`` (its orderRef exists) or ``refuse`` (a reason from the risk engine, the
arming check or the gateway); the lines themselves are built in ``decisions``.

What follows an order (status, fills, P&L, risk state) is ``order_events.OrderEvents``;
the arming timer, the gateway connection and shutdown are ``upkeep.Upkeep``; both are
mixed into ``Bot``, which owns the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import Contract, LimitOrder, Trade

from spy_bot import decisions, risk, tradinghours
from spy_bot.audit import AuditLog
from spy_bot.broker import Broker, BrokerError, order_ref
from spy_bot.kube import TradingBotReader
from spy_bot.metrics import BotMetrics
from spy_bot.settings import Settings
from spy_bot.signals import Signal
from spy_bot.strategy import OrderIntent, Skip, decide, limit_price
from spy_bot.upkeep import Upkeep

log = logging.getLogger(__name__)
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")  # IB paper accounts


def utcnow() -> datetime:
    return datetime.now(UTC)


class Bot(Upkeep):
    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        reader: TradingBotReader,
        audit: AuditLog,
        metrics: BotMetrics | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        market_open: Callable[[datetime], bool] = tradinghours.is_open,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.reader = reader
        self.audit = audit
        self.metrics = metrics or BotMetrics()
        self.clock = clock
        self.market_open = market_open
        self.state = risk.RiskState()
        self.queue: asyncio.Queue[tuple[Signal, str, float]] = asyncio.Queue()
        self.armed = risk.Verdict(False, "NotChecked", "own TradingBot not read yet")
        self.reset_token: str | None = None
        self.trades: dict[str, Trade] = {}
        self.handled = 0
        self._last_status: dict[str, str] = {}
        self._fills_seen: set[str] = set()
        self.metrics.risk_mode.state(self.state.mode.value)
        broker.ib.orderStatusEvent += self._on_status
        broker.ib.execDetailsEvent += self._on_fill
        broker.ib.pnlEvent += self._on_pnl_event

    # -- signals -------------------------------------------------------------------
    async def offer(self, s: Signal, via: str) -> None:
        """The feed's callback: queue the signal (never blocks the socket reader)."""
        self.metrics.signals.labels(s.type, via).inc()
        self.queue.put_nowait((s, via, time.perf_counter()))

    async def consume(self) -> None:
        while True:
            s, via, received = await self.queue.get()
            try:
                await self.handle(s, via, received)
            finally:
                self.queue.task_done()

    async def handle(self, s: Signal, via: str = "live", received: float | None = None) -> None:
        received = time.perf_counter() if received is None else received
        self.audit.write("signal", via=via, signal=s.brief())
        try:
            decision = await self._decide(s, received)
        except Exception as exc:
            # A bug must not stop the bot from answering the next signal, and this one
            # still gets its decision line; no order was sent (placing is the last step).
            log.exception("signal handling failed", extra={"signal_id": s.id})
            decision = decisions.refuse("InternalError", f"{type(exc).__name__}: {exc}")
        self.metrics.decisions.labels(decision["decision"], decision["reason"]).inc()
        self.audit.write("decision", signal_id=s.id, **decision)
        self.handled += 1

    async def _decide(self, s: Signal, received: float) -> dict[str, Any]:
        """The signal's decision line. Each step may end it early with a skip or a
        refusal (``Decided``); placing the order is the last step."""
        now = self.clock()
        marks: dict[str, float] = {}  # step -> perf_counter, for the order's latency_ms
        try:
            intent, ref = self._admit(s, now)
            contracts, near, far = await self._quote(intent, marks)
            self._refresh_book()
            price, proposal, verdict = self._approve(intent, near, far, now)
            combo = self.broker.combo(intent, contracts)
            order = self.broker.order(intent, price, ref)
            preview = await self._preview_and_rearm(combo, order, marks)
        except decisions.Decided as decided:
            return decided.line
        trade = self.broker.place(combo, order)
        marks["placed"] = time.perf_counter()
        self.state = risk.on_order_sent(self.state, self.clock())
        self.trades[ref] = trade
        self.metrics.signal_to_order.observe(time.perf_counter() - received)
        self.metrics.orders.labels("placed").inc()
        details = decisions.order_details(
            intent, ref, trade.order.orderId, price, proposal, preview, self.armed, received, marks
        )
        self.audit.write("order", signal_id=s.id, **details)
        return decisions.accepted(verdict.message, ref)

    def _admit(self, s: Signal, now: datetime) -> tuple[OrderIntent, str]:
        """Fresh, matched by a rule, not sent before, gateway up: the intent and orderRef."""
        age = (now - s.ts).total_seconds()
        if age > self.settings.signal_max_age:
            raise decisions.Decided(
                decisions.skip(
                    "Stale", f"signal is {age:.0f} s old (max {self.settings.signal_max_age:g})"
                )
            )
        intent = decide(self.settings.strategy, s)
        if isinstance(intent, Skip):
            raise decisions.Decided(decisions.skip(intent.reason, intent.message))
        ref = order_ref(self.settings.bot, s.id)
        if self.broker.has_ref(ref):
            raise decisions.Decided(decisions.duplicate(ref))
        if not self.broker.connected:
            raise decisions.Decided(
                decisions.refuse("GatewayDisconnected", "not connected to IB Gateway")
            )
        return intent, ref

    async def _quote(
        self, intent: OrderIntent, marks: dict[str, float]
    ) -> tuple[list[Contract], float, float]:
        """The legs' contracts and their mid prices (near, far) from the gateway."""
        try:
            contracts = await self.broker.contracts(intent.symbol, intent.legs)
            marks["contracts"] = time.perf_counter()
            near, far = await self.broker.mids(contracts)
            marks["quotes"] = time.perf_counter()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            raise decisions.Decided(
                decisions.refuse("ContractUnavailable", str(exc) or type(exc).__name__)
            ) from exc
        return contracts, near, far

    def _approve(
        self, intent: OrderIntent, near: float, far: float, now: datetime
    ) -> tuple[float, risk.Proposal, risk.Verdict]:
        """A positive limit price, the risk engine's yes, and a paper account in paper mode."""
        price = limit_price(intent, near, far)
        if price is None:
            raise decisions.Decided(
                decisions.refuse(
                    "NoPrice", f"legs' mids {near} / {far} give no positive combo price"
                )
            )
        proposal = risk.Proposal(
            intent.symbol, intent.right, intent.expiry, intent.quantity, intent.max_loss(price)
        )
        verdict = risk.check_order(
            proposal, self.state, self.settings.limits, now, self.market_open(now)
        )
        if not verdict.ok:
            raise decisions.Decided(decisions.refuse(verdict.reason, verdict.message))
        account = self.broker.account
        if self.settings.mode == "paper" and not account.startswith(PAPER_ACCOUNT_PREFIXES):
            raise decisions.Decided(
                decisions.refuse(
                    "AccountNotPaper", f"mode is paper but the gateway's account {account!r} is not"
                )
            )
        return price, proposal, verdict

    async def _preview_and_rearm(
        self, combo: Contract, order: LimitOrder, marks: dict[str, float]
    ) -> Any:
        """The gateway's what-if, and the arming check read fresh: the preview, if both pass."""
        # The what-if and the read of the own TradingBot run side by side; both finish
        # before the order is sent, so the arming check is still the last word.
        preview_or_error, tradingbot = await asyncio.gather(
            self.broker.what_if(combo, order), self.reader.get(), return_exceptions=True
        )
        marks["what_if_and_armed_check"] = time.perf_counter()
        if isinstance(preview_or_error, BaseException):
            if not isinstance(preview_or_error, BrokerError | ConnectionError):
                raise preview_or_error
            raise decisions.Decided(decisions.refuse("WhatIfFailed", str(preview_or_error)))
        preview = preview_or_error
        warning = str(getattr(preview, "warningText", "") or "") if preview is not None else ""
        if preview is None or warning:
            raise decisions.Decided(
                decisions.refuse("WhatIfFailed", f"what-if refused: {warning or 'no answer'}")
            )
        # Defence in depth, last thing before the order leaves: is the bot armed *now*?
        self.armed = self._verdict(tradingbot if isinstance(tradingbot, dict) else None)
        if not self.armed.ok:
            raise decisions.Decided(decisions.refuse(self.armed.reason, self.armed.message))
        return preview

    def _refresh_book(self) -> None:
        # Positions as the gateway last pushed them (ib_async subscribes with
        # reqPositions at connect; fills push updates), open orders from its trades.
        self.state = risk.with_book(
            self.state, len(self.broker.own_open_trades()), self.broker.spreads_by_expiry()
        )
