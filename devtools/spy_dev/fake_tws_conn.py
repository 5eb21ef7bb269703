"""One client connection to the fake IB Gateway (``spy_dev.fake_tws``): the wire
framing, the handshake, pacing, and the dispatch of each request by message id.

``FakeTWS`` makes one ``_Conn`` per accepted socket. Handlers live with what they
serve: ``fake_tws_market`` (contract details, market data) and ``fake_tws_orders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from spy_dev import fake_tws_market as market
from spy_dev import fake_tws_orders as orders

if TYPE_CHECKING:
    from spy_dev.fake_tws import FakeTWS


def _encode(*fields: object) -> bytes:
    payload = b"".join(_field(f) + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def _field(f: object) -> bytes:
    if isinstance(f, bool):
        return b"1" if f else b"0"
    if f is None:
        return b""
    return str(f).encode()


class _Conn:
    def __init__(
        self, server: FakeTWS, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.md_type = 1
        self.subs: dict[int, market.Sub] = {}
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
            1: lambda f: market.req_mkt_data(self, f),
            2: lambda f: market.cancel_mkt_data(self, f),
            3: lambda f: orders.place(self, f),
            4: lambda f: self.server.cancel(int(f[2])),
            5: lambda f: orders.replay_open_orders(self),  # ... openOrderEnd
            6: lambda f: self.send(54, 1, f[3]),  # accountDownloadEnd
            7: lambda f: orders.replay_executions(self, int(f[2])),  # ... execDetailsEnd
            8: lambda f: self.send(9, 1, self.server.book.next_order_id),  # nextValidId
            9: lambda f: market.req_contract_details(self, f),
            58: lambda f: self.server.cancel_all(),  # reqGlobalCancel
            59: self._req_market_data_type,
            61: lambda f: orders.send_positions(self),  # ... positionEnd
            62: lambda f: self.send(64, 1, f[2]),  # accountSummaryEnd
            76: lambda f: self.send(74, 1, f[2]),  # accountUpdateMultiEnd
            78: lambda f: market.req_sec_def_opt_params(self, f),
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
