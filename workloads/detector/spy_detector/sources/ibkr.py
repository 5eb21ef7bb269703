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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from ib_async import IB, Contract, Option, Stock, Ticker
from ib_async.ib import StartupFetchNONE
from spy_analytics import ChainSnapshot

from spy_detector.metrics import DetectorMetrics
from spy_detector.sharding import ShardSpec, context_expiries, select_expiries
from spy_detector.sources.ibkr_settings import MARKET_DATA_TYPES as MARKET_DATA_TYPES
from spy_detector.sources.ibkr_settings import IBSettings as IBSettings
from spy_detector.spot_history import SpotHistory

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# TWS codes we act on (https://ibkrcampus.com/campus/ibkr-api-page/twsapi-doc/#api-error-codes)
CLIENT_ID_IN_USE = 326
LINK_LOST = 1100
LINK_RESTORED_DATA_LOST = 1101
LINK_RESTORED = 1102
INFO_CODES = frozenset({2103, 2104, 2105, 2106, 2107, 2108, 2119, 2158})


class ClientIdInUseError(ConnectionError):
    """The gateway refused our client id (326): another connection holds it."""


class _ReconnectError(Exception):
    """Internal: the data stream must be rebuilt (socket lost or 1101)."""


# -- pure helpers ------------------------------------------------------------------------
def ib_expiry_to_iso(expiry: str) -> str:
    """IB's ``YYYYMMDD`` -> ``YYYY-MM-DD``."""
    return f"{expiry[0:4]}-{expiry[4:6]}-{expiry[6:8]}"


def expiries_in_window(
    expiries: Sequence[str], today: date, dte_min: int, dte_max: int
) -> list[str]:
    """IB expiries (``YYYYMMDD``) whose days-to-expiry lie in [dte_min, dte_max]."""
    out = []
    for e in expiries:
        dte = (date(int(e[0:4]), int(e[4:6]), int(e[6:8])) - today).days
        if dte_min <= dte <= dte_max:
            out.append(e)
    return sorted(out)


def strikes_in_window(strikes: Sequence[float], spot: float, strike_range: float) -> list[float]:
    lo, hi = spot * (1.0 - strike_range), spot * (1.0 + strike_range)
    return sorted({k for k in strikes if lo <= k <= hi})


def rotation_batches(items: Sequence[Any], lines: int) -> list[list[Any]]:
    """Split the window into consecutive batches that each fit in ``lines``."""
    return [list(items[i : i + lines]) for i in range(0, len(items), lines)]


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x) or x < 0:
        return None
    return float(x)


def quote_record(contract: Contract, ticker: Ticker) -> dict[str, Any]:
    """One contract's latest quote in the snapshot-file quote schema (spy_analytics)."""
    oi = ticker.callOpenInterest if contract.right == "C" else ticker.putOpenInterest
    return {
        "expiry": ib_expiry_to_iso(contract.lastTradeDateOrContractMonth),
        "strike": float(contract.strike),
        "right": contract.right,
        "bid": _num(ticker.bid),
        "ask": _num(ticker.ask),
        "last": _num(ticker.last),
        "volume": _num(ticker.volume),
        "open_interest": _num(oi),
        "quote_ts": ticker.timestamp or None,
    }


def _quoted(ticker: Ticker) -> bool:
    # The ask is enough: far out-of-the-money options often have no bid at all (IB
    # sends an empty side), and waiting for one would stall every rotation batch.
    return _num(ticker.ask) is not None


# -- the source --------------------------------------------------------------------------
class IBKRSource:
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
        self._ib: IB | None = None
        self._lost = asyncio.Event()
        self._ticked = asyncio.Event()
        self._state = "disconnected"
        self._underlying: Contract | None = None
        self._und_ticker: Ticker | None = None
        # the underlying's recent ticks: each quote is checked against the spot of its time
        self._spot_history = SpotHistory()
        self._contracts: list[Contract] = []
        self._context: frozenset[str] = frozenset()  # YYYY-MM-DD, see sharding
        self._discovered_on: date | None = None
        self._quotes: dict[tuple[str, float, str], dict[str, Any]] = {}
        self._closed = False
        self.connects = 0
        self.errors: list[tuple[int, int, str]] = []
        metrics.ib_state.state("disconnected")

    # -- public ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def contracts(self) -> list[Contract]:
        return list(self._contracts)

    def not_ready(self) -> list[str]:
        if self._state != "connected":
            return [f"ib connection {self._state}"]
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
            except (_ReconnectError, ConnectionError, TimeoutError) as exc:
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
        s = self.settings
        self._set_state("connecting")
        ib = IB()
        ib.RequestTimeout = s.request_timeout
        # Smooth pacing: at most `pacing_burst` messages per burst_interval. A plain
        # 40-per-second bucket sends 40 at once and 40 more one second later, which
        # a gateway counting over a sliding second can see as 80.
        ib.client.MaxRequests = s.pacing_burst
        ib.client.RequestsInterval = s.pacing_burst / s.max_msgs_per_sec  # type: ignore[assignment]
        # ib_async waits for the whole connect timeout when the gateway refuses us
        # (326) or closes the socket mid-handshake; fail fast on either instead.
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def fail(exc: ConnectionError) -> None:
            if not failed.done():
                failed.set_exception(exc)

        def on_error(req_id: int, code: int, msg: str, _contract: Any) -> None:
            if code == CLIENT_ID_IN_USE:
                fail(ClientIdInUseError(f"client id {s.client_id} in use: {msg}"))
            self._on_error(req_id, code, msg)

        def on_socket_closed(msg: str) -> None:
            fail(ConnectionError(f"gateway closed the connection during start-up {msg}".strip()))

        ib.errorEvent += on_error
        ib.client.conn.disconnected += on_socket_closed
        connect = asyncio.ensure_future(
            ib.connectAsync(
                s.host,
                s.port,
                clientId=s.client_id,
                timeout=s.connect_timeout,
                readonly=True,
                fetchFields=StartupFetchNONE,
            )
        )
        try:
            done, _ = await asyncio.wait({connect, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ib.client.conn.disconnected -= on_socket_closed
        if connect not in done:
            connect.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await connect
            _close(ib)
            exc = failed.exception()
            if isinstance(exc, ClientIdInUseError):
                self._set_state("client_id_in_use")
            assert exc is not None
            raise exc
        if not failed.done():
            failed.cancel()
        else:
            failed.exception()  # mark retrieved: the connect won the race anyway
        connect.result()  # re-raises connection failures
        self._lost.clear()
        ib.disconnectedEvent += self._on_disconnected
        ib.pendingTickersEvent += self._on_ticks
        self._ib = ib
        self.connects += 1
        ib.reqMarketDataType(MARKET_DATA_TYPES[s.market_data_type])
        self._set_state("connected")
        log.info(
            "ib connected",
            extra={
                "host": s.host,
                "port": s.port,
                "client_id": s.client_id,
                "server_version": ib.client.serverVersion(),
            },
        )

    def _disconnect(self) -> None:
        ib, self._ib = self._ib, None
        if ib is not None:
            ib.disconnectedEvent -= self._on_disconnected
            ib.pendingTickersEvent -= self._on_ticks
            _close(ib)
        self._metrics.ib_lines.set(0)

    def _on_disconnected(self) -> None:
        self._set_state("disconnected")
        self._lost.set()
        self._ticked.set()

    def _on_ticks(self, tickers: object) -> None:
        und = self._und_ticker
        ours = isinstance(tickers, set | list | tuple) and any(t is und for t in tickers)
        if und is not None and ours:
            price = _num(und.marketPrice())
            if price:
                self._spot_history.add(self._clock().timestamp(), price)
        self._ticked.set()

    def _on_error(self, req_id: int, code: int, msg: str) -> None:
        self.errors.append((req_id, code, msg))
        self._metrics.ib_errors.labels(code=str(code)).inc()
        if code in INFO_CODES:
            log.debug("ib status", extra={"code": code, "text": msg})
        elif code == LINK_LOST:
            self._set_state("ib_link_lost")
        elif code == LINK_RESTORED:
            self._set_state("connected")
        elif code == LINK_RESTORED_DATA_LOST:
            self._set_state("connected")
            self._lost.set()  # subscriptions are gone: rebuild them
            self._ticked.set()
        else:
            log.warning("ib error", extra={"req_id": req_id, "code": code, "text": msg})

    def _set_state(self, state: str) -> None:
        self._state = state
        self._metrics.ib_state.state(state)

    def _require(self) -> IB:
        if self._ib is None or self._lost.is_set() or not self._ib.isConnected():
            raise _ReconnectError("connection lost")
        return self._ib

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

    def _spot(self, *, allow_close: bool = False) -> float | None:
        """The underlying's live price (last within the quote, else the midpoint).

        Never the previous close for a snapshot: option quotes priced off a live spot
        compared against yesterday's close raise false parity / early-exercise breaks.
        Without a live price this returns None and the snapshot is skipped as
        ``bad_spot``. ``allow_close`` is for strike-window discovery only.
        """
        t = self._und_ticker
        if t is None:
            return None
        values = (t.marketPrice(), t.close) if allow_close else (t.marketPrice(),)
        for value in values:
            v = _num(value)
            if v:
                return v
        return None

    async def _discover(self, ib: IB, spot: float) -> None:
        s = self.settings
        assert self._underlying is not None
        chains = await self._request(
            ib.reqSecDefOptParamsAsync(
                s.symbol, "", self._underlying.secType, self._underlying.conId
            )
        )
        if not chains:
            raise ConnectionError("no option parameters for the underlying")
        chain = next(
            (c for c in chains if c.exchange == s.exchange and c.tradingClass == s.symbol),
            chains[0],
        )
        window = expiries_in_window(chain.expirations, self._clock().date(), s.dte_min, s.dte_max)
        mine = select_expiries(window, self.shard)
        # the expiry after each of ours, read-only, so calendars across shards are checked
        context = context_expiries(window, self.shard)
        self._context = frozenset(f"{e[:4]}-{e[4:6]}-{e[6:8]}" for e in context)
        strikes = set(strikes_in_window(chain.strikes, spot, s.strike_range))
        # One contract-details request per expiry (strike and right left open) returns
        # every listed contract of it, fully qualified: a handful of messages instead
        # of one qualifyContracts request per strike and right, which at 40 msg/s
        # would take minutes for a 60-day SPY window. Strikes that secdef lists but the
        # expiry does not have simply do not come back.
        contracts: list[Contract] = []
        for expiry in sorted({*mine, *context}):
            pattern = Option(
                s.symbol,
                expiry,
                exchange=s.exchange,
                currency=s.currency,
                tradingClass=chain.tradingClass,
            )
            details = await self._request(ib.reqContractDetailsAsync(pattern))
            listed = [d.contract for d in details if d.contract is not None]
            for c in sorted(listed, key=lambda c: (c.strike, c.right)):
                if c.strike in strikes and c.right in ("C", "P") and c.conId:
                    c.exchange = s.exchange  # details may name a venue; route SMART
                    contracts.append(c)
        self._contracts = contracts
        self._quotes.clear()
        log.info(
            "chain window",
            extra={
                "expiries": len(mine),
                "context_expiries": len(context),
                "of_window": len(window),
                "strikes": len(strikes),
                "contracts": len(self._contracts),
                "shard": f"{self.shard.index}/{self.shard.count}",
            },
        )

    # -- streaming --------------------------------------------------------------------
    async def _stream(self) -> AsyncIterator[ChainSnapshot]:
        s = self.settings
        lines = s.option_lines
        if len(self._contracts) <= lines:
            tickers = self._subscribe(self._contracts)
            loop = asyncio.get_running_loop()
            # the requests leave at the throttled rate; the dwell starts after
            await self._wait_quoted(tickers, self._send_time(len(tickers)) + s.dwell)
            while True:
                next_at = loop.time() + self._until_next_slot()
                yield self._snapshot(tickers)
                while loop.time() < next_at:
                    await self._wait_ticks(next_at - loop.time())
                    self._require()
        else:
            while True:
                for batch in rotation_batches(self._contracts, lines):
                    tickers = self._subscribe(batch)
                    # the requests leave at the throttled rate; the dwell starts after
                    await self._wait_quoted(tickers, self._send_time(len(batch)) + s.dwell)
                    for c, t in tickers.items():
                        self._quotes[_key(c)] = quote_record(c, t)
                    self._unsubscribe(batch)
                yield self._snapshot({})

    def _until_next_slot(self) -> float:
        """Seconds to the next snapshot. With several shards, snapshots fall on the
        wall-clock grid of ``snapshot_interval`` and carry the slot's time
        (``_snapshot``), so every shard's parts of one slot share a timestamp and the
        backend can merge them; alone, one interval from now."""
        interval = self.settings.snapshot_interval
        if self.shard.count == 1 or interval <= 0:
            return interval
        now = self._clock().timestamp()
        return _slot(now, interval) + interval - now

    def _send_time(self, messages: int) -> float:
        return messages / self.settings.max_msgs_per_sec

    def _subscribe(self, contracts: Sequence[Contract]) -> dict[Contract, Ticker]:
        ib = self._require()
        tickers = {
            c: ib.reqMktData(c, self.settings.generic_ticks, False, False) for c in contracts
        }
        self._metrics.ib_lines.set(1 + len(contracts))
        return tickers

    def _unsubscribe(self, contracts: Sequence[Contract]) -> None:
        ib = self._require()
        for c in contracts:
            ib.cancelMktData(c)
        self._metrics.ib_lines.set(1)

    async def _wait_quoted(self, tickers: dict[Contract, Ticker], within: float) -> None:
        """Wait until every ticker is quoted (see ``_quoted``), at most ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not all(_quoted(t) for t in tickers.values()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._wait_ticks(remaining)
            self._require()

    async def _wait_ticks(self, within: float) -> None:
        self._ticked.clear()
        if self._lost.is_set():
            raise _ReconnectError("connection lost")
        try:
            await asyncio.wait_for(self._ticked.wait(), max(0.0, within))
        except TimeoutError:
            return
        if self._lost.is_set():
            raise _ReconnectError("connection lost")

    def _snapshot(self, tickers: dict[Contract, Ticker]) -> ChainSnapshot:
        for c, t in tickers.items():
            self._quotes[_key(c)] = quote_record(c, t)
        spot = self._spot()
        now = self._clock()
        interval = self.settings.snapshot_interval
        if self.shard.count > 1 and interval > 0:
            # the slot's time (see _until_next_slot); quotes newer than it count as fresh
            now = datetime.fromtimestamp(_slot(now.timestamp(), interval), UTC)
        snapshot = ChainSnapshot.from_records(
            [self._quotes[k] for k in sorted(self._quotes)],
            ts=now,
            symbol=self.settings.symbol,
            spot=spot if spot is not None else math.nan,
            rate=self.settings.rate,
            div_yield=self.settings.div_yield,
            spot_history=self._spot_history.arrays(now.timestamp()),
        )
        return dataclasses.replace(snapshot, context_expiries=self._context)


def _slot(epoch: float, interval: float) -> float:
    """The grid time (a multiple of ``interval``) a snapshot taken at ``epoch`` belongs
    to; a timer firing up to 5% of an interval early still lands on its slot."""
    return math.floor(epoch / interval + 0.05) * interval


def _close(ib: IB) -> None:
    # IB.disconnect() insists on a fully started API session; a half-open one
    # (refused client id, dropped socket) is closed at the client level.
    if ib.client.isReady():
        ib.disconnect()
    else:
        ib.client.disconnect()  # type: ignore[no-untyped-call]


def _key(c: Contract) -> tuple[str, float, str]:
    return (c.lastTradeDateOrContractMonth, float(c.strike), c.right)
