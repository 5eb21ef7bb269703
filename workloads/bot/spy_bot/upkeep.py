"""The bot's loops besides signals: the own-TradingBot arming check and the P&L on a
timer (with the human risk reset by annotation), the gateway connection, and the
orderly shutdown.

A mixin of ``service.Bot`` (its only user); ``process.run_bot`` starts ``watch`` and
``keep_connected`` as tasks and calls ``shutdown`` on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ib_async import Trade

from spy_bot import arming, risk
from spy_bot.kube import TradingBotReader
from spy_bot.order_events import OrderEvents

log = logging.getLogger("spy_bot.service")
RESET_ANNOTATION = "spyoptions.io/risk-reset"


class Upkeep(OrderEvents):
    """Arming, connection and shutdown. The state it shares with ``Bot`` is set in
    ``Bot.__init__``."""

    reader: TradingBotReader
    clock: Callable[[], datetime]
    armed: risk.Verdict
    reset_token: str | None
    handled: int

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
