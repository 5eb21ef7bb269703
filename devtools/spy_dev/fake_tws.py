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

This module is the server (``FakeTWS``) and its command line; one connection's
framing, handshake, pacing and dispatch are in ``fake_tws_conn``, the handlers in
``fake_tws_market`` (contract details, market data) and ``fake_tws_orders``, the
chain in ``fake_tws_chain``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from spy_dev import fake_tws_market as market
from spy_dev import fake_tws_orders as orders
from spy_dev.fake_tws_chain import FakeChain, demo_chain
from spy_dev.fake_tws_conn import _Conn

__all__ = ["SERVER_VERSION", "FakeChain", "FakeTWS", "demo_chain"]

SERVER_VERSION = 176


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
                market.send_ticks(conn, sub, bump)


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
