"""A protocol-level stand-in for IB Gateway/TWS, for the detector's IBKR source tests.

It speaks the real TWS API socket protocol (4-byte big-endian length prefix, fields
terminated by NUL) to the real ib_async client, for the server version it advertises
(176 by default, inside ib_async's v157..v178 range; the field layouts below follow
ib_async's decoder for that version):

* handshake: client sends ``API\\0`` + prefixed ``v<min>..v<max>``; server answers
  ``<version>\\0<connection time>\\0``; client sends startApi (71) with its client id;
  server sends nextValidId (9), managedAccounts (15) and the farm-OK notices 2104/2106
  -- or error 326 and a close when the client id is already connected;
* requests answered: reqPositions (61 -> 62 end), reqOpenOrders, reqCompletedOrders,
  reqAccountUpdates, reqExecutions, reqAccountSummary (answered empty),
  reqContractDetails (9 -> 10 + 52, or error 200), reqSecDefOptParams (78 -> 75 + 76),
  reqMarketDataType (59), reqMktData (1 -> 58 market data type, tickPrice 1,
  tickSize 2, tickOptionComputation 21, delayed tick types when delayed data is on)
  and cancelMktData (2);
* limits like the real gateway: more than ``max_lines`` concurrent subscriptions get
  error 101; more than ``max_msgs_per_sec`` messages in any 1 s window get error 100
  and a disconnect. Every client message's arrival time is kept so tests can check
  the peak rate;
* orders (the bot's tests and bench; ``spy_dev.fake_tws_orders`` holds the order book
  and its messages): what-if, placeOrder (single legs and BAG combos), openOrder,
  orderStatus, execDetails + commissionReport, cancelOrder, reqGlobalCancel, replay of
  working orders and fills after a reconnect, positions and P&L (reqPnL -> pnl);
  ``book`` holds what was placed, ``on_order`` hooks see each order as it arrives;
* ``python -m spy_dev.fake_tws --port 4002`` serves a paper account with a chain wide
  enough for the synthetic detector's anomalies, so the demo (and a developer) can run
  ``python -m spy_bot run`` against it; orders fill at once unless ``--fill manual``;
* controls for tests: ``drop_connections()`` (socket drop), ``refuse_connections``,
  ``ignore_once`` (leave a request unanswered), ``broadcast_error()`` (1100/1101/1102
  connectivity notices), ``push_ticks()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from spy_dev import fake_tws_orders as orders

SERVER_VERSION = 176
UNDERLYING_CONID = 756733


def _encode(*fields: object) -> bytes:
    payload = b"".join(_field(f) + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def _field(f: object) -> bytes:
    if isinstance(f, bool):
        return b"1" if f else b"0"
    if f is None:
        return b""
    return str(f).encode()


@dataclass
class FakeChain:
    """The option chain the fake gateway lists and quotes."""

    symbol: str = "SPY"
    spot: float = 600.0
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    expiry_days: tuple[int, ...] = (2, 9, 16, 23, 30, 44)
    strikes: tuple[float, ...] = tuple(float(k) for k in range(580, 621, 5))
    # (expiry index, strike) pairs that are listed by secdef but do not exist
    missing: frozenset[tuple[int, float]] = frozenset({(0, 620.0)})
    # out-of-the-money contracts whose ask is below this have an empty bid side
    # (IB sends price -1 / size 0), like far wings of the real chain
    empty_bid_below: float = 0.0
    # > 0: time value falls off as exp(-|K - S| / decay), so verticals have a price
    # (the bot's tests); 0 keeps the flat time value the detector's tests expect
    time_value_decay: float = 0.0

    @property
    def expiries(self) -> list[str]:
        return [(self.today + timedelta(days=d)).strftime("%Y%m%d") for d in self.expiry_days]

    def con_id(self, expiry: str, strike: float, right: str) -> int | None:
        exps = self.expiries
        if expiry not in exps or strike not in self.strikes:
            return None
        ei = exps.index(expiry)
        if (ei, strike) in self.missing:
            return None
        return 10_000_000 + ei * 100_000 + int(strike * 10) * 10 + (1 if right == "C" else 2)

    def describe(self, con_id: int) -> tuple[str, float, str] | None:
        """(expiry, strike, right) of an option con id, the inverse of ``con_id``."""
        ei, rest = divmod(con_id - 10_000_000, 100_000)
        right = {1: "C", 2: "P"}.get(rest % 10, "")
        exps = self.expiries
        if not right or not 0 <= ei < len(exps):
            return None
        strike = rest // 10 / 10
        return (exps[ei], strike, right) if self.con_id(exps[ei], strike, right) == con_id else None

    def quote(self, expiry: str, strike: float, right: str, bump: int = 0) -> tuple[float, float]:
        intrinsic = max(0.0, (self.spot - strike) if right == "C" else (strike - self.spot))
        days = (datetime.strptime(expiry, "%Y%m%d").date() - self.today).days
        time_value = 0.4 * (days**0.5)
        if self.time_value_decay > 0:
            time_value *= math.exp(-abs(strike - self.spot) / self.time_value_decay)
        mid = intrinsic + time_value + 0.01 * bump
        return round(max(0.05, mid - 0.05), 2), round(mid + 0.05, 2)


@dataclass
class _Sub:
    req_id: int
    con_id: int
    sec_type: str
    expiry: str
    strike: float
    right: str
    generic: str


class _Conn:
    def __init__(
        self, server: FakeTWS, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.md_type = 1
        self.subs: dict[int, _Sub] = {}
        self.pnl_subs: set[int] = set()
        self.positions_subscribed = False
        self.arrivals: deque[float] = deque()
        self.all_arrivals: list[float] = []

    def send(self, *fields: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(_encode(*fields))

    def error(self, req_id: int, code: int, msg: str) -> None:
        self.server.errors_sent.append((self.client_id, req_id, code))
        self.send(4, 2, req_id, code, msg, "")  # advancedOrderRejectJson since v166

    async def run(self) -> None:
        try:
            await self._handshake()
            while True:
                fields = await self._read_msg()
                if not self._pace():
                    return
                self._handle(fields)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.server._forget(self)
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _read_msg(self) -> list[str]:
        size = struct.unpack(">I", await self.reader.readexactly(4))[0]
        body = (await self.reader.readexactly(size)).decode()
        fields = body.split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        return fields

    async def _handshake(self) -> None:
        magic = await self.reader.readexactly(4)
        if magic != b"API\0":
            raise ConnectionError("bad handshake")
        size = struct.unpack(">I", await self.reader.readexactly(4))[0]
        versions = (await self.reader.readexactly(size)).decode()  # "v157..178 options"
        lo, hi = versions.split()[0].lstrip("v").split("..")
        if not int(lo) <= self.server.server_version <= int(hi):
            raise ConnectionError(f"unsupported client version range {versions}")
        self.server.handshakes.append(versions)
        conn_time = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.writer.write(_encode(self.server.server_version, conn_time))
        await self.writer.drain()
        fields = await self._read_msg()
        self._pace()
        if fields[0] != "71":
            raise ConnectionError(f"expected startApi, got {fields}")
        client_id = int(fields[2])
        if client_id in self.server.client_ids():
            self.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            await self.writer.drain()
            raise ConnectionError("duplicate client id")
        self.client_id = client_id
        self.server.started.append(client_id)
        self.send(15, 1, ",".join(self.server.accounts))
        self.send(9, 1, self.server.book.next_order_id)
        for code, msg in (
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ):
            self.error(-1, code, msg)
        await self.writer.drain()

    def _pace(self) -> bool:
        now = time.monotonic()
        self.arrivals.append(now)
        self.all_arrivals.append(now)
        self.server.arrivals.append(now)
        while self.arrivals and now - self.arrivals[0] > 1.0:
            self.arrivals.popleft()
        if len(self.arrivals) > self.server.max_msgs_per_sec:
            self.server.pacing_violations += 1
            self.error(-1, 100, "Max rate of messages per second has been exceeded:max=50")
            return False
        return True

    # -- request handlers ------------------------------------------------------------
    def _handle(self, f: list[str]) -> None:
        self.server.requests.append((self.client_id, f))
        msg_id = int(f[0])
        if msg_id in self.server.ignore_once:  # a gateway that never answers
            self.server.ignore_once.discard(msg_id)
            return
        handlers: dict[int, Callable[[list[str]], None]] = {
            1: self._req_mkt_data,
            2: self._cancel_mkt_data,
            3: lambda f: orders.place(self, f),
            4: lambda f: self.server.cancel(int(f[2])),
            5: lambda f: orders.replay_open_orders(self),  # ... openOrderEnd
            6: lambda f: self.send(54, 1, f[3]),  # accountDownloadEnd
            7: lambda f: orders.replay_executions(self, int(f[2])),  # ... execDetailsEnd
            8: lambda f: self.send(9, 1, self.server.book.next_order_id),  # nextValidId
            9: self._req_contract_details,
            58: lambda f: self.server.cancel_all(),  # reqGlobalCancel
            59: self._req_market_data_type,
            61: lambda f: orders.send_positions(self),  # ... positionEnd
            62: lambda f: self.send(64, 1, f[2]),  # accountSummaryEnd
            76: lambda f: self.send(74, 1, f[2]),  # accountUpdateMultiEnd
            78: self._req_sec_def_opt_params,
            92: self._req_pnl,
            93: lambda f: self.pnl_subs.discard(int(f[1])),  # cancelPnL
            99: lambda f: self.send(102),  # completedOrdersEnd
        }
        handler = handlers.get(msg_id)
        if handler is not None:
            handler(f)

    def _req_pnl(self, f: list[str]) -> None:
        # 92, reqId, account, modelCode
        req_id = int(f[1])
        self.pnl_subs.add(req_id)
        orders.send_pnl(self, req_id)

    def _req_market_data_type(self, f: list[str]) -> None:
        self.md_type = int(f[2])

    def _contract_fields(self, f: list[str], start: int) -> tuple[int, str, str, str, float, str]:
        con_id = int(f[start] or 0)
        symbol, sec_type, expiry = f[start + 1], f[start + 2], f[start + 3]
        strike = float(f[start + 4] or 0)
        right = f[start + 5]
        return con_id, symbol, sec_type, expiry, strike, right

    def _req_contract_details(self, f: list[str]) -> None:
        # 9, version 8, reqId, contract(12), includeExpired, secIdType, secId, issuerId
        req_id = int(f[2])
        _con_id, symbol, sec_type, expiry, strike, right = self._contract_fields(f, 3)
        chain = self.server.chain
        if symbol != chain.symbol:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        if sec_type == "STK":
            self._send_details(
                req_id,
                chain.symbol,
                "STK",
                "",
                0.0,
                "",
                UNDERLYING_CONID,
                "SPDR S&P 500 ETF TRUST",
                "ARCA",
            )
        else:
            # Unset fields are wildcards, as at the real gateway: an option with only
            # symbol + expiry returns every strike and right of that expiry.
            full = expiry and strike and right  # one contract: no scan of a big chain
            exact = chain.con_id(expiry, strike, right) if full else None
            matches = (
                [(expiry, strike, right, exact)]
                if exact is not None
                else []
                if full
                else [
                    (e, k, r, cid)
                    for e in chain.expiries
                    for k in chain.strikes
                    for r in ("C", "P")
                    if (not expiry or e == expiry)
                    and (not strike or k == strike)
                    and (not right or r == right)
                    and (cid := chain.con_id(e, k, r)) is not None
                ]
            )
            if not matches:
                self.error(req_id, 200, "No security definition has been found for the request")
                return
            for e, k, r, cid in matches:
                self._send_details(
                    req_id,
                    chain.symbol,
                    "OPT",
                    e,
                    k,
                    r,
                    cid,
                    "SPDR S&P 500 ETF TRUST",
                    "",
                    multiplier="100",
                )
        self.send(52, 1, req_id)

    def _send_details(
        self,
        req_id: int,
        symbol: str,
        sec_type: str,
        expiry: str,
        strike: float,
        right: str,
        con_id: int,
        long_name: str,
        primary: str,
        multiplier: str = "",
    ) -> None:
        local = (
            symbol
            if sec_type == "STK"
            else f"{symbol}  {expiry[2:]}{right}{int(strike * 1000):08d}"
        )
        last_times = f"{expiry} 16:00 US/Eastern" if expiry else ""
        self.send(
            10,
            req_id,
            symbol,
            sec_type,
            last_times,
            strike if strike else "",
            right,
            "SMART",
            "USD",
            local,
            symbol,
            symbol,
            con_id,
            0.01,
            multiplier,
            "ACTIVETIM,LMT,MKT",
            "SMART,AMEX,CBOE",
            1,
            UNDERLYING_CONID if sec_type == "OPT" else 0,
            long_name,
            primary,
            expiry[:6],
            "",
            "",
            "",
            "US/Eastern",
            "",
            "",
            "",
            "",  # tradingHours, liquidHours, evRule, evMultiplier
            0,  # numSecIds
            1,
            symbol if sec_type == "OPT" else "",
            "STK" if sec_type == "OPT" else "",
            "26",
            expiry,
            "",  # aggGroup, underSymbol, underSecType, marketRuleIds, realExp, stockType
            1,
            1,
            1,  # minSize, sizeIncrement, suggestedSizeIncrement
        )

    def _req_sec_def_opt_params(self, f: list[str]) -> None:
        # 78, reqId, underlyingSymbol, futFopExchange, underlyingSecType, underlyingConId
        req_id = int(f[1])
        chain = self.server.chain
        exps = chain.expiries
        for exchange in ("SMART", "CBOE"):
            self.send(
                75,
                req_id,
                exchange,
                UNDERLYING_CONID,
                chain.symbol,
                100,
                len(exps),
                *exps,
                len(chain.strikes),
                *chain.strikes,
            )
        self.send(76, req_id)

    def _req_mkt_data(self, f: list[str]) -> None:
        # 1, version 11, reqId, contract(12), deltaNeutral flag, genericTicks, snapshot, ...
        req_id = int(f[2])
        con_id, _symbol, sec_type, expiry, strike, right = self._contract_fields(f, 3)
        generic = f[16] if len(f) > 16 else ""
        snapshot = len(f) > 17 and f[17] == "1"
        if snapshot:  # one round of ticks, then tickSnapshotEnd; holds no line
            self._send_ticks(_Sub(req_id, con_id, sec_type, expiry, strike, right, generic), 0)
            self.send(57, 1, req_id)
            return
        if len(self.subs) >= self.server.max_lines:
            self.server.line_violations += 1
            self.error(req_id, 101, "Max number of tickers has been reached")
            return
        sub = _Sub(req_id, con_id, sec_type, expiry, strike, right, generic)
        self.subs[req_id] = sub
        self.server.peak_lines = max(self.server.peak_lines, len(self.subs))
        self.server.subscribed.append((self.client_id, con_id))
        if self.md_type != 1:
            self.send(58, 1, req_id, self.md_type)
        self._send_ticks(sub, bump=0)

    def _cancel_mkt_data(self, f: list[str]) -> None:
        self.subs.pop(int(f[2]), None)

    def _send_ticks(self, sub: _Sub, bump: int) -> None:
        delayed = self.md_type in (3, 4)
        bid_t, ask_t, last_t = (66, 67, 68) if delayed else (1, 2, 4)
        vol_t, model_t = (74, 83) if delayed else (8, 13)
        chain = self.server.chain
        if sub.sec_type == "STK":
            s = chain.spot + 0.01 * bump
            self.send(1, 6, sub.req_id, bid_t, round(s - 0.01, 2), 300, 0)
            self.send(1, 6, sub.req_id, ask_t, round(s + 0.01, 2), 200, 0)
            self.send(1, 6, sub.req_id, last_t, round(s, 2), 100, 0)
            self.send(1, 6, sub.req_id, 9, chain.spot, 0, 0)  # close
            return
        bid, ask = chain.quote(sub.expiry, sub.strike, sub.right, bump)
        if ask < chain.empty_bid_below:
            self.send(1, 6, sub.req_id, bid_t, -1, 0, 0)
        else:
            self.send(1, 6, sub.req_id, bid_t, bid, 10, 0)
        self.send(1, 6, sub.req_id, ask_t, ask, 12, 0)
        self.send(1, 6, sub.req_id, last_t, round((bid + ask) / 2, 2), 1, 0)
        self.send(2, 6, sub.req_id, vol_t, 150 + bump)
        if "101" in sub.generic.split(","):
            self.send(2, 6, sub.req_id, 27 if sub.right == "C" else 28, 1200)
        # tickOptionComputation without version field (server >= 156):
        # reqId, tickType, tickAttrib, iv, delta, optPrice, pvDividend, gamma, vega, theta, undPrice
        delta = 0.5 if sub.right == "C" else -0.5
        self.send(
            21,
            sub.req_id,
            model_t,
            1,
            0.18,
            delta,
            (bid + ask) / 2,
            0.0,
            0.01,
            0.2,
            -0.05,
            chain.spot,
        )


class FakeTWS:
    """A listening fake gateway on 127.0.0.1 (port 0 = any free port)."""

    def __init__(
        self,
        chain: FakeChain | None = None,
        *,
        server_version: int = SERVER_VERSION,
        accounts: tuple[str, ...] = ("DU1234567",),
        max_lines: int = 100,
        max_msgs_per_sec: int = 50,
    ) -> None:
        self.chain = chain or FakeChain()
        self.server_version = server_version
        self.accounts = accounts
        self.max_lines = max_lines
        self.max_msgs_per_sec = max_msgs_per_sec
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # observations
        self.handshakes: list[str] = []
        self.started: list[int] = []
        self.requests: list[tuple[int | None, list[str]]] = []
        self.errors_sent: list[tuple[int | None, int, int]] = []
        self.subscribed: list[tuple[int | None, int]] = []
        self.arrivals: list[float] = []
        self.peak_lines = 0
        self.line_violations = 0
        self.pacing_violations = 0
        self.refuse_connections = False
        self.ignore_once: set[int] = set()  # message ids to leave unanswered once
        self.book = orders.OrderBook()
        # called with each placed order (not what-ifs) as it arrives (tests, bench)
        self.on_order: list[Callable[[orders.FakeOrder], None]] = []

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 only (never another interface); 0 picks a free port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_connections:
            writer.close()
            return
        conn = _Conn(self, reader, writer)
        self._conns.add(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await conn.run()
        finally:
            self._tasks.discard(task)

    def _forget(self, conn: _Conn) -> None:
        self._conns.discard(conn)

    # -- observations -------------------------------------------------------------------
    def client_ids(self) -> set[int]:
        return {c.client_id for c in self._conns if c.client_id is not None}

    def lines_in_use(self) -> int:
        return sum(len(c.subs) for c in self._conns)

    def peak_rate(self) -> int:
        """Most client messages seen in any 1-second window (all connections)."""
        times = sorted(self.arrivals)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def position_subscribers(self) -> list[_Conn]:
        return [c for c in self._conns if c.positions_subscribed]

    def conn_of(self, client_id: int) -> _Conn | None:
        return next((c for c in self._conns if c.client_id == client_id), None)

    def requests_of(self, msg_id: int) -> list[list[str]]:
        return [f for _, f in self.requests if f and f[0] == str(msg_id)]

    # -- controls ---------------------------------------------------------------------
    def drop_connections(self) -> None:
        """Abruptly close every client socket (gateway restart / network drop)."""
        for conn in list(self._conns):
            transport = conn.writer.transport
            transport.abort()

    def broadcast_error(self, code: int, msg: str) -> None:
        for conn in list(self._conns):
            conn.error(-1, code, msg)

    def fill(self, order_id: int, price: float | None = None) -> None:
        """Fill a working order (``book.fill_mode = "manual"`` keeps orders working)."""
        orders.fill(self, order_id, price)

    def cancel(self, order_id: int) -> None:
        """Cancel a working order (orderStatus Cancelled + error 202), as cancelOrder does."""
        orders.cancel(self, order_id)

    def cancel_all(self) -> None:
        for order in self.book.open_orders():
            orders.cancel(self, order.order_id)

    def set_pnl(self, daily: float, unrealized: float = 0.0, realized: float = 0.0) -> None:
        """New account P&L, pushed to every reqPnL subscriber (pnl, 94)."""
        book = self.book
        book.daily_pnl, book.unrealized_pnl, book.realized_pnl = daily, unrealized, realized
        for conn in list(self._conns):
            for req_id in list(conn.pnl_subs):
                orders.send_pnl(conn, req_id)

    def push_ticks(self, bump: int = 1) -> None:
        for conn in list(self._conns):
            for sub in list(conn.subs.values()):
                conn._send_ticks(sub, bump)


def demo_chain() -> FakeChain:
    """Every expiry for 70 days, $1 strikes 450..750, verticals with a price."""
    return FakeChain(
        expiry_days=tuple(range(70)),
        strikes=tuple(float(k) for k in range(450, 751)),
        missing=frozenset(),
        time_value_decay=10.0,
    )


async def _serve(port: int, fill: str, account: str) -> None:
    import signal

    tws = FakeTWS(demo_chain(), accounts=(account,))
    tws.book.fill_mode = fill
    bound = await tws.start(port)
    print(
        f"[fake-tws] IB Gateway stand-in on 127.0.0.1:{bound} (paper account {account})", flush=True
    )
    tws.on_order.append(
        lambda o: print(
            f"[fake-tws] order {o.order_id} {o.action} {o.quantity:g} {o.sec_type} "
            f"@ {o.lmt_price} ref {o.order_ref}",
            flush=True,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await tws.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.fake_tws",
        description="A protocol-level IB Gateway stand-in on 127.0.0.1 (paper only).",
    )
    parser.add_argument("--port", type=int, default=4002, help="0 picks a free port")
    parser.add_argument("--fill", choices=("auto", "manual"), default="auto")
    parser.add_argument("--account", default="DU1234567", help="a paper account id (DU...)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.fill, args.account))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
