"""Orders through ib_async: contracts, quotes, what-if, BAG combos, cancel, the book.

``service.Bot`` owns one ``Broker``. Everything here talks to IB Gateway over the TWS
API and nothing decides: the strategy decides what, the risk engine whether, the
service when. Idempotency lives in the order reference: ``order_ref(bot, signal)`` is
a hash of the bot and the signal id, and ``has_ref`` looks in the gateway's open orders
and executions (both replayed by the gateway after a reconnect) and in this process's
ledger, so a replayed signal never doubles an order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from ib_async import IB, ComboLeg, Contract, LimitOrder, Option, Trade

from spy_bot.strategy import Leg, OrderIntent

log = logging.getLogger(__name__)
OPEN = ("PendingSubmit", "ApiPending", "PreSubmitted", "Submitted")


def order_ref(bot: str, signal_id: str) -> str:
    """Deterministic orderRef: the same signal at the same bot gives the same ref."""
    return "spy-" + hashlib.sha256(f"{bot}|{signal_id}".encode()).hexdigest()[:24]


class BrokerError(RuntimeError):
    """A request to the gateway failed; the message says which and why."""


class Broker:
    def __init__(self, host: str, port: int, client_id: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.client_id, self.timeout = host, port, client_id, timeout
        self.ib = IB()
        self.ib.RequestTimeout = timeout
        self.ledger: set[str] = set()  # refs this process has sent
        self._contracts: dict[tuple[str, date, float, str], Contract] = {}
        self.pnl: Any = None

    # -- connection ----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return bool(self.ib.isConnected())

    async def connect(self) -> None:
        await self.ib.connectAsync(
            self.host, self.port, clientId=self.client_id, timeout=self.timeout
        )
        account = self.account
        if account:
            self.pnl = self.ib.reqPnL(account)

    def disconnect(self) -> None:
        self.ib.disconnect()

    @property
    def account(self) -> str:
        accounts = self.ib.managedAccounts()
        return str(accounts[0]) if accounts else ""

    # -- contracts and prices --------------------------------------------------------
    async def contracts(self, symbol: str, legs: Iterable[Leg]) -> list[Contract]:
        out: list[Contract] = []
        for leg in legs:
            key = (symbol, leg.expiry, leg.strike, leg.right)
            if key not in self._contracts:
                opt = Option(symbol, leg.expiry.strftime("%Y%m%d"), leg.strike, leg.right, "SMART")
                qualified = await self.ib.qualifyContractsAsync(opt)
                found = qualified[0] if qualified else None
                if not isinstance(found, Contract) or not found.conId:
                    raise BrokerError(
                        f"no contract {symbol} {leg.expiry} {leg.strike:g} {leg.right}"
                    )
                self._contracts[key] = found
            out.append(self._contracts[key])
        return out

    async def mids(self, contracts: list[Contract]) -> list[float]:
        """Mid prices from one snapshot per contract (NaN when a side is missing)."""
        tickers = await asyncio.wait_for(self.ib.reqTickersAsync(*contracts), self.timeout)
        by_id = {t.contract.conId: t for t in tickers if t.contract is not None}
        mids = []
        for c in contracts:
            t = by_id.get(c.conId)
            bid, ask = (t.bid, t.ask) if t is not None else (math.nan, math.nan)
            ok = bid is not None and ask is not None and bid > 0 and ask > 0
            mids.append((bid + ask) / 2 if ok else math.nan)
        return mids

    def combo(self, intent: OrderIntent, contracts: list[Contract]) -> Contract:
        legs = [
            ComboLeg(conId=c.conId, ratio=leg.ratio, action=leg.action, exchange="SMART")
            for leg, c in zip(intent.legs, contracts, strict=True)
        ]
        return Contract(
            symbol=intent.symbol, secType="BAG", exchange="SMART", currency="USD", comboLegs=legs
        )

    def order(self, intent: OrderIntent, price: float, ref: str) -> LimitOrder:
        return LimitOrder(
            intent.action,
            intent.quantity,
            price,
            orderRef=ref,
            tif="DAY",
            account=self.account,
            transmit=True,
        )

    async def what_if(self, contract: Contract, order: LimitOrder) -> Any:
        try:
            return await asyncio.wait_for(self.ib.whatIfOrderAsync(contract, order), self.timeout)
        except TimeoutError as exc:
            raise BrokerError("what-if: no answer from the gateway") from exc

    def place(self, contract: Contract, order: LimitOrder) -> Trade:
        self.ledger.add(order.orderRef)
        return self.ib.placeOrder(contract, order)

    def cancel(self, trade: Trade) -> None:
        self.ib.cancelOrder(trade.order)

    # -- the book --------------------------------------------------------------------
    def open_trades(self) -> list[Trade]:
        return [t for t in self.ib.openTrades() if t.orderStatus.status in OPEN]

    def own_open_trades(self) -> list[Trade]:
        return [t for t in self.open_trades() if str(t.order.orderRef).startswith("spy-")]

    def has_ref(self, ref: str) -> bool:
        if ref in self.ledger:
            return True
        if any(t.order.orderRef == ref for t in self.ib.trades()):
            return True
        return any(f.execution.orderRef == ref for f in self.ib.fills())

    def spreads_by_expiry(self) -> dict[date, int]:
        """Long-leg contracts per expiry (a vertical holds one long leg per spread)."""
        out: dict[date, int] = {}
        for p in self.ib.positions():
            c = p.contract
            if c.secType != "OPT" or p.position <= 0:
                continue
            try:
                expiry = datetime.strptime(c.lastTradeDateOrContractMonth[:8], "%Y%m%d").date()
            except ValueError:
                continue
            out[expiry] = out.get(expiry, 0) + int(p.position)
        return out

    def daily_pnl(self) -> float | None:
        value = getattr(self.pnl, "dailyPnL", None)
        if value is None or not isinstance(value, float) or not math.isfinite(value):
            return None
        return value
