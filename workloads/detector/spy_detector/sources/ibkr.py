"""Live SPY option chain from IB Gateway/TWS through ib_async.

Used by ``service.Detector`` when ``SPY_SOURCE=ibkr``. One connection per shard with
its own client id (the operator allocates them; the gateway refuses a duplicate with
error 326). The flow on each (re)connect:

1. ``reqMarketDataType`` (live, frozen, delayed or delayed-frozen);
2. qualify the underlying and stream its quote (one line) for the spot;
3. ``reqSecDefOptParams`` -> expiries in the DTE window -> this shard's expiries
   (``sharding.select_expiries``) and, with several shards, the expiry after each as
   read-only context for the calendar rule (``sharding.context_expiries``);
4. one ``reqContractDetails`` per expiry (strike and right open) returns its listed,
   fully qualified contracts; keep strikes within ``strike_range`` of spot (the
   underlying itself goes through ``qualifyContracts``);
5. stream ``reqMktData``. When the window fits in the market-data lines the
   subscriptions stay up and a snapshot is taken every ``snapshot_interval``; when it
   does not, the window is walked in batches of ``lines`` contracts (subscribe, wait
   until every contract is quoted or ``dwell`` passes, capture, cancel) and a snapshot
   is yielded after each full pass, with each quote's own timestamp.

Pacing: every outgoing message goes through ib_async's client throttle, set to
bursts of ``pacing_burst`` messages spaced so the average is ``max_msgs_per_sec``
(default 4 every 0.1 s = 40/s, so any sliding second holds <= 48, under IB's 50/s);
the lines limit is never exceeded
because a batch is cancelled before the next is requested (ib_async keeps the send
order). Connection loss (socket drop, 1101 data lost) re-enters the loop with
exponential backoff; 1100/1102 only flip the connection state.

Steps 1-4 and the reconnect loop are here; step 5 (subscribing, the snapshot grid and
building each snapshot) is ibkr_streaming.py, a mixin of ``IBKRSource``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from ib_async import IB, Contract, Stock, Ticker
from spy_analytics import ChainSnapshot

from spy_detector.metrics import DetectorMetrics
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr_chain import expiries_in_window as expiries_in_window
from spy_detector.sources.ibkr_chain import ib_expiry_to_iso as ib_expiry_to_iso
from spy_detector.sources.ibkr_chain import num as _num
from spy_detector.sources.ibkr_chain import quote_record as quote_record
from spy_detector.sources.ibkr_chain import rotation_batches as rotation_batches
from spy_detector.sources.ibkr_chain import strikes_in_window as strikes_in_window
from spy_detector.sources.ibkr_connection import ClientIdInUseError as ClientIdInUseError
from spy_detector.sources.ibkr_connection import IBConnection, ReconnectError
from spy_detector.sources.ibkr_discovery import discover
from spy_detector.sources.ibkr_settings import MARKET_DATA_TYPES as MARKET_DATA_TYPES
from spy_detector.sources.ibkr_settings import IBSettings as IBSettings
from spy_detector.sources.ibkr_streaming import ChainStreaming
from spy_detector.spot_history import SpotHistory

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# -- the source --------------------------------------------------------------------------
class IBKRSource(ChainStreaming):
    name = "ibkr"

    def __init__(
        self,
        settings: IBSettings,
        shard: ShardSpec,
        metrics: DetectorMetrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.shard = shard
        self._metrics = metrics
        self._clock = clock
        self._conn = IBConnection(settings, metrics, self._on_ticks)
        self._underlying: Contract | None = None
        self._und_ticker: Ticker | None = None
        # the underlying's recent ticks: each quote is checked against the spot of its time
        self._spot_history = SpotHistory()
        self._contracts: list[Contract] = []
        self._context: frozenset[str] = frozenset()  # YYYY-MM-DD, see sharding
        self._discovered_on: date | None = None
        self._quotes: dict[tuple[str, float, str], dict[str, Any]] = {}
        self._closed = False

    # -- public ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._conn.state

    @property
    def connects(self) -> int:
        return self._conn.connects

    @property
    def errors(self) -> list[tuple[int, int, str]]:
        return self._conn.errors

    @property
    def contracts(self) -> list[Contract]:
        return list(self._contracts)

    def not_ready(self) -> list[str]:
        if self._conn.state != "connected":
            return [f"ib connection {self._conn.state}"]
        return []

    async def close(self) -> None:
        self._closed = True
        self._disconnect()

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        attempt = 0
        while not self._closed:
            try:
                await self.connect()
                await self._prepare()
                async for snap in self._stream():
                    attempt = 0  # the backoff resets only once data flows again
                    yield snap
            except (ReconnectError, ConnectionError, TimeoutError) as exc:
                # Transient by nature (gateway restart, network blip, id still held
                # by a pod that is going away): back off and rebuild the stream.
                if self._closed:
                    return
                if not isinstance(exc, ClientIdInUseError):
                    self._set_state("disconnected")
                self._disconnect()
                delay = self.settings.backoff.delay(attempt)
                attempt += 1
                self._metrics.ib_reconnects.inc()
                log.warning(
                    "ib stream interrupted, reconnecting",
                    extra={"error": repr(exc), "delay": round(delay, 3), "attempt": attempt},
                )
                await asyncio.sleep(delay)

    # -- connection -------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the API connection; raises ClientIdInUseError on 326, ConnectionError otherwise."""
        await self._conn.connect()

    def _disconnect(self) -> None:
        self._conn.disconnect()

    def _set_state(self, state: str) -> None:
        self._conn.set_state(state)

    def _on_ticks(self, tickers: object) -> None:
        und = self._und_ticker
        ours = isinstance(tickers, set | list | tuple) and any(t is und for t in tickers)
        if und is not None and ours:
            price = _num(und.marketPrice())
            if price:
                self._spot_history.add(self._clock().timestamp(), price)
        self._conn.ticked.set()

    # -- discovery --------------------------------------------------------------------
    async def _prepare(self) -> None:
        s = self.settings
        ib = self._require()
        if self._underlying is None:
            [und] = await self._request(
                ib.qualifyContractsAsync(Stock(s.symbol, s.exchange, s.currency))
            )
            if und is None:
                raise ConnectionError(f"underlying {s.symbol} not found")
            assert isinstance(und, Contract)
            self._underlying = und
        self._und_ticker = ib.reqMktData(self._underlying, "", False, False)
        spot = await self._wait_spot()
        today = self._clock().date()
        if self._discovered_on != today or not self._contracts:
            await self._discover(ib, spot)
            self._discovered_on = today

    async def _request(self, request: Awaitable[_T]) -> _T:
        """Await one gateway request; a silent gateway raises TimeoutError (reconnect).
        A socket drop fails the request at once (ib_async fails pending futures)."""
        return await asyncio.wait_for(request, self.settings.request_timeout)

    async def _wait_spot(self) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout
        while True:
            # Discovery only needs a rough centre for the strike window, so the
            # previous close will do here (pre-market); snapshots never use it.
            spot = self._spot(allow_close=True)
            if spot is not None:
                return spot
            await self._wait_ticks(deadline - loop.time())
            if loop.time() >= deadline:
                raise TimeoutError("no quote for the underlying")

    async def _discover(self, ib: IB, spot: float) -> None:
        assert self._underlying is not None
        self._contracts, self._context = await discover(
            ib, self.settings, self.shard, self._underlying, spot, self._clock, self._request
        )
        self._quotes.clear()
