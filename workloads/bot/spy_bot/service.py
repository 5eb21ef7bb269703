"""The bot: signals -> strategy -> risk -> own TradingBot -> what-if -> order -> audit.

``run_bot(settings)`` (``python -m spy_bot run``) wires the parts and runs until
SIGTERM; ``Bot`` is what tests drive directly. Signals are handled one at a time from
a queue, so the idempotency and risk checks never race each other. Every signal gets
exactly one ``decision`` audit line: ``order``, ``skip`` (no rule, stale, no contract),
``duplicate`` (its orderRef exists) or ``refuse`` (a reason from the risk engine, the
arming check or the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal as signals_
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import Trade

from spy_bot import arming, risk, tradinghours
from spy_bot.audit import AuditLog
from spy_bot.audit_shipper import AuditShipper
from spy_bot.broker import Broker, BrokerError, order_ref
from spy_bot.kube import TradingBotReader
from spy_bot.metrics import BotMetrics
from spy_bot.settings import Settings
from spy_bot.signals import Signal
from spy_bot.strategy import Skip, decide, limit_price

log = logging.getLogger(__name__)
RESET_ANNOTATION = "spyoptions.io/risk-reset"
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")  # IB paper accounts


def utcnow() -> datetime:
    return datetime.now(UTC)


class Bot:
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
            decision = _refuse("InternalError", f"{type(exc).__name__}: {exc}")
        self.metrics.decisions.labels(decision["decision"], decision["reason"]).inc()
        self.audit.write("decision", signal_id=s.id, **decision)
        self.handled += 1

    async def _decide(self, s: Signal, received: float) -> dict[str, Any]:
        now = self.clock()
        age = (now - s.ts).total_seconds()
        if age > self.settings.signal_max_age:
            return _skip(
                "Stale", f"signal is {age:.0f} s old (max {self.settings.signal_max_age:g})"
            )
        intent = decide(self.settings.strategy, s)
        if isinstance(intent, Skip):
            return _skip(intent.reason, intent.message)
        ref = order_ref(self.settings.bot, s.id)
        if self.broker.has_ref(ref):
            return {
                "decision": "duplicate",
                "reason": "OrderRefExists",
                "message": f"{ref} was already sent",
                "order_ref": ref,
            }
        if not self.broker.connected:
            return _refuse("GatewayDisconnected", "not connected to IB Gateway")
        try:
            contracts = await self.broker.contracts(intent.symbol, intent.legs)
            marks = {"contracts": time.perf_counter()}
            near, far = await self.broker.mids(contracts)
            marks["quotes"] = time.perf_counter()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            return _refuse("ContractUnavailable", str(exc) or type(exc).__name__)
        self._refresh_book()
        price = limit_price(intent, near, far)
        if price is None:
            return _refuse("NoPrice", f"legs' mids {near} / {far} give no positive combo price")
        proposal = risk.Proposal(
            intent.symbol, intent.right, intent.expiry, intent.quantity, intent.max_loss(price)
        )
        verdict = risk.check_order(
            proposal, self.state, self.settings.limits, now, self.market_open(now)
        )
        if not verdict.ok:
            return _refuse(verdict.reason, verdict.message)
        account = self.broker.account
        if self.settings.mode == "paper" and not account.startswith(PAPER_ACCOUNT_PREFIXES):
            return _refuse(
                "AccountNotPaper", f"mode is paper but the gateway's account {account!r} is not"
            )
        combo = self.broker.combo(intent, contracts)
        order = self.broker.order(intent, price, ref)
        # The what-if and the read of the own TradingBot run side by side; both finish
        # before the order is sent, so the arming check is still the last word.
        preview_or_error, tradingbot = await asyncio.gather(
            self.broker.what_if(combo, order), self.reader.get(), return_exceptions=True
        )
        marks["what_if_and_armed_check"] = time.perf_counter()
        if isinstance(preview_or_error, BaseException):
            if not isinstance(preview_or_error, BrokerError | ConnectionError):
                raise preview_or_error
            return _refuse("WhatIfFailed", str(preview_or_error))
        preview = preview_or_error
        warning = str(getattr(preview, "warningText", "") or "") if preview is not None else ""
        if preview is None or warning:
            return _refuse("WhatIfFailed", f"what-if refused: {warning or 'no answer'}")
        # Defence in depth, last thing before the order leaves: is the bot armed *now*?
        self.armed = self._verdict(tradingbot if isinstance(tradingbot, dict) else None)
        if not self.armed.ok:
            return _refuse(self.armed.reason, self.armed.message)
        trade = self.broker.place(combo, order)
        marks["placed"] = time.perf_counter()
        self.state = risk.on_order_sent(self.state, self.clock())
        self.trades[ref] = trade
        self.metrics.signal_to_order.observe(time.perf_counter() - received)
        self.metrics.orders.labels("placed").inc()
        details = {
            "order_ref": ref,
            "order_id": trade.order.orderId,
            "rule": intent.rule,
            "action": intent.action,
            "quantity": intent.quantity,
            "limit": price,
            "legs": [
                {
                    "expiry": leg.expiry.isoformat(),
                    "strike": leg.strike,
                    "right": leg.right,
                    "action": leg.action,
                }
                for leg in intent.legs
            ],
            "max_loss": proposal.max_loss,
            "what_if": {
                "init_margin_change": getattr(preview, "initMarginChange", ""),
                "commission": getattr(preview, "commission", None),
            },
            "armed": self.armed.message,
            # where the time went, ms since the signal was received (bench, tuning)
            "latency_ms": {k: round((v - received) * 1000, 2) for k, v in marks.items()},
        }
        self.audit.write("order", signal_id=s.id, **details)
        return {
            "decision": "order",
            "reason": "Accepted",
            "message": verdict.message,
            "order_ref": ref,
        }

    def _refresh_book(self) -> None:
        # Positions as the gateway last pushed them (ib_async subscribes with
        # reqPositions at connect; fills push updates), open orders from its trades.
        self.state = risk.with_book(
            self.state, len(self.broker.own_open_trades()), self.broker.spreads_by_expiry()
        )

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

    def _verdict(self, obj: dict[str, Any] | None) -> risk.Verdict:
        verdict = arming.check_armed(obj, self.clock())
        if obj is None and self.reader.last_error:
            verdict = risk.Verdict(False, verdict.reason, self.reader.last_error)
        self.metrics.armed.set(1 if verdict.ok else 0)
        return verdict

    # -- own TradingBot, on a timer -----------------------------------------------------
    async def check_armed(self) -> risk.Verdict:
        obj = await self.reader.get()
        self.armed = self._verdict(obj)
        if not self.armed.ok:
            self.cancel_open_orders(f"{self.armed.reason}: {self.armed.message}")
        if obj is not None:
            token = ((obj.get("metadata") or {}).get("annotations") or {}).get(RESET_ANNOTATION)
            if self.reset_token is None:
                self.reset_token = token or ""
            elif token and token != self.reset_token:
                self.reset_token = token
                if self.state.mode is not risk.Mode.ACTIVE:
                    old = self.state
                    self.state = risk.reset(old)
                    self.metrics.risk_mode.state(self.state.mode.value)
                    self.audit.write(
                        "reset",
                        by_annotation=token,
                        previous=old.mode.value,
                        previous_reason=old.reason,
                    )
        return self.armed

    async def watch(self) -> None:
        while True:
            await self.check_armed()
            pnl = self.broker.daily_pnl() if self.broker.connected else None
            if pnl is not None:
                self.on_pnl(pnl)
            await asyncio.sleep(self.settings.armed_check_seconds)

    async def keep_connected(self) -> None:
        delay = 0.2
        while True:
            if not self.broker.connected:
                try:
                    await self.broker.connect()
                    delay = 0.2
                    log.info("gateway connected", extra={"account": self.broker.account})
                except (OSError, TimeoutError, ConnectionError) as exc:
                    log.warning(
                        "gateway connect failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                    )
                    self.broker.disconnect()
                    delay = min(10.0, delay * 2)
            self.metrics.ib_connected.set(1 if self.broker.connected else 0)
            await asyncio.sleep(delay if not self.broker.connected else 0.2)

    async def shutdown(self, reason: str, wait: float = 5.0) -> None:
        """Cancel open orders, wait (bounded) for the gateway to confirm, audit, close."""
        cancelled = self.cancel_open_orders(f"shutdown: {reason}")
        deadline = time.monotonic() + wait

        def live() -> list[Trade]:
            # ib_async marks a cancel PendingCancel at once; done means the gateway said so
            return [t for t in cancelled if not t.isDone()] if self.broker.connected else []

        while live() and time.monotonic() < deadline:  # noqa: ASYNC110 -- trade events
            await asyncio.sleep(0.02)
        still_open = [t.order.orderRef for t in live()]
        self.audit.write(
            "shutdown", reason=reason, cancelled=len(cancelled), still_open=still_open,
            mode=self.state.mode.value, signals_handled=self.handled,
        )  # fmt: skip
        self.broker.disconnect()
        self.audit.close()


def _skip(reason: str, message: str) -> dict[str, Any]:
    return {"decision": "skip", "reason": reason, "message": message}


def _refuse(reason: str, message: str) -> dict[str, Any]:
    return {"decision": "refuse", "reason": reason, "message": message}


def _audit_shipper(settings: Settings, audit: AuditLog, metrics: BotMetrics) -> AuditShipper | None:
    """The backend's copy of the audit (audit_shipper.py), when a token is configured."""
    if not (settings.backend_url and settings.backend_token):
        return None
    shipper = AuditShipper(settings.backend_url, settings.backend_token, metrics)
    audit.sinks.append(shipper.offer)
    return shipper


async def _stop_shipping(shipper: AuditShipper | None, task: asyncio.Task[None] | None) -> None:
    if shipper is None or task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await shipper.close()


async def run_bot(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """The process: health server, gateway, feed, consumer, watcher; SIGTERM stops it."""
    from spy_bot.feed import SignalFeed
    from spy_bot.health import HealthServer
    from spy_bot.kube import credentials

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signals_.SIGTERM, signals_.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics = BotMetrics()
    audit = AuditLog(settings.bot, settings.audit_file)
    audit.keep = False  # a long-running process keeps its audit in files, not memory
    shipper = _audit_shipper(settings, audit, metrics)
    reader = TradingBotReader(
        credentials(settings.kubeconfig), settings.bot_namespace, settings.bot_name
    )
    broker = Broker(settings.ib_host, settings.ib_port, settings.ib_client_id, settings.ib_timeout)
    bot = Bot(settings, broker, reader, audit, metrics)

    def invalid(why: str, raw: dict[str, Any]) -> None:
        audit.write("signal_invalid", why=why, id=raw.get("id"))

    feed = SignalFeed(
        settings.backend_url, settings.symbol, bot.offer, invalid=invalid,
        on_state=lambda live: metrics.hub_connected.set(1 if live else 0),
        overlap=settings.backfill_overlap,
    )  # fmt: skip

    def readiness() -> list[str]:
        reasons = []
        if not feed.live:
            reasons.append("not joined to the realtime hub")
        if not broker.connected:
            reasons.append("not connected to IB Gateway")
        return reasons

    health = HealthServer(metrics, readiness, settings.http_host, settings.http_port)
    port = await health.start()
    audit.write("startup", settings=settings.redacted(), http_port=port)
    tasks = [
        asyncio.create_task(bot.keep_connected(), name="gateway"),
        asyncio.create_task(bot.watch(), name="watch"),
        asyncio.create_task(bot.consume(), name="consume"),
        asyncio.create_task(feed.run(), name="feed"),
    ]
    stopping = asyncio.create_task(stop.wait(), name="stop")
    # Not among `tasks`: the backend's copy of the audit never stops the bot.
    shipping = asyncio.create_task(shipper.run(), name="audit") if shipper else None
    done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    # A part that ended on its own is a bug (each loops forever): stop cleanly and exit
    # non-zero so the kubelet restarts the pod, rather than run half a bot.
    crashed = [t for t in done if t is not stopping]
    for task in crashed:
        log.error(
            "bot task ended", extra={"task": task.get_name(), "error": repr(task.exception())}
        )
    for task in [stopping, *tasks]:
        task.cancel()
    await asyncio.gather(stopping, *tasks, return_exceptions=True)
    await bot.shutdown(f"task {crashed[0].get_name()} ended" if crashed else "SIGTERM")
    await _stop_shipping(shipper, shipping)  # the shutdown line included, within a deadline
    await feed.close()
    await reader.close()
    await health.stop()
    return 1 if crashed else 0
