"""One TWS API session of the IBKR source: the fail-fast connect, the status codes it
acts on, the connection state (and its metric), and the events that tell the stream a
tick arrived or the connection (or its data) was lost.

Who calls this: `spy_detector.sources.ibkr.IBKRSource`, which holds one and rebuilds
its stream whenever `require` or `wait_ticks` raises `ReconnectError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ib_async import IB
from ib_async.ib import StartupFetchNONE

from spy_detector.metrics import DetectorMetrics
from spy_detector.sources.ibkr_settings import MARKET_DATA_TYPES, IBSettings

log = logging.getLogger("spy_detector.sources.ibkr")

# TWS codes we act on (https://ibkrcampus.com/campus/ibkr-api-page/twsapi-doc/#api-error-codes)
CLIENT_ID_IN_USE = 326
LINK_LOST = 1100
LINK_RESTORED_DATA_LOST = 1101
LINK_RESTORED = 1102
INFO_CODES = frozenset({2103, 2104, 2105, 2106, 2107, 2108, 2119, 2158})


class ClientIdInUseError(ConnectionError):
    """The gateway refused our client id (326): another connection holds it."""


class ReconnectError(Exception):
    """The data stream must be rebuilt (socket lost or 1101)."""


class IBConnection:
    """The gateway session; `ib` is None while disconnected."""

    def __init__(
        self, settings: IBSettings, metrics: DetectorMetrics, on_ticks: Callable[[object], None]
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._on_ticks = on_ticks
        self.ib: IB | None = None
        self.lost = asyncio.Event()
        self.ticked = asyncio.Event()
        self.state = "disconnected"
        self.connects = 0
        self.errors: list[tuple[int, int, str]] = []
        metrics.ib_state.state("disconnected")

    async def connect(self) -> None:
        """Open the API connection; raises ClientIdInUseError on 326, ConnectionError otherwise."""
        s = self.settings
        self.set_state("connecting")
        ib = IB()
        ib.RequestTimeout = s.request_timeout
        # Smooth pacing: at most `pacing_burst` messages per burst_interval. A plain
        # 40-per-second bucket sends 40 at once and 40 more one second later, which
        # a gateway counting over a sliding second can see as 80.
        ib.client.MaxRequests = s.pacing_burst
        ib.client.RequestsInterval = s.pacing_burst / s.max_msgs_per_sec  # type: ignore[assignment]
        await self._handshake(ib)
        self.lost.clear()
        ib.disconnectedEvent += self._on_disconnected
        ib.pendingTickersEvent += self._on_ticks
        self.ib = ib
        self.connects += 1
        ib.reqMarketDataType(MARKET_DATA_TYPES[s.market_data_type])
        self.set_state("connected")
        log.info(
            "ib connected",
            extra={
                "host": s.host,
                "port": s.port,
                "client_id": s.client_id,
                "server_version": ib.client.serverVersion(),
            },
        )

    async def _handshake(self, ib: IB) -> None:
        """connectAsync, failing fast: ib_async waits for the whole connect timeout when
        the gateway refuses us (326) or closes the socket mid-handshake."""
        s = self.settings
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def fail(exc: ConnectionError) -> None:
            if not failed.done():
                failed.set_exception(exc)

        def on_error(req_id: int, code: int, msg: str, _contract: Any) -> None:
            if code == CLIENT_ID_IN_USE:
                fail(ClientIdInUseError(f"client id {s.client_id} in use: {msg}"))
            self.on_error(req_id, code, msg)

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
                self.set_state("client_id_in_use")
            assert exc is not None
            raise exc
        if not failed.done():
            failed.cancel()
        else:
            failed.exception()  # mark retrieved: the connect won the race anyway
        connect.result()  # re-raises connection failures

    def disconnect(self) -> None:
        ib, self.ib = self.ib, None
        if ib is not None:
            ib.disconnectedEvent -= self._on_disconnected
            ib.pendingTickersEvent -= self._on_ticks
            _close(ib)
        self._metrics.ib_lines.set(0)

    def _on_disconnected(self) -> None:
        self.set_state("disconnected")
        self.lost.set()
        self.ticked.set()

    def on_error(self, req_id: int, code: int, msg: str) -> None:
        self.errors.append((req_id, code, msg))
        self._metrics.ib_errors.labels(code=str(code)).inc()
        if code in INFO_CODES:
            log.debug("ib status", extra={"code": code, "text": msg})
        elif code == LINK_LOST:
            self.set_state("ib_link_lost")
        elif code == LINK_RESTORED:
            self.set_state("connected")
        elif code == LINK_RESTORED_DATA_LOST:
            self.set_state("connected")
            self.lost.set()  # subscriptions are gone: rebuild them
            self.ticked.set()
        else:
            log.warning("ib error", extra={"req_id": req_id, "code": code, "text": msg})

    def set_state(self, state: str) -> None:
        self.state = state
        self._metrics.ib_state.state(state)

    def require(self) -> IB:
        if self.ib is None or self.lost.is_set() or not self.ib.isConnected():
            raise ReconnectError("connection lost")
        return self.ib

    async def wait_ticks(self, within: float) -> None:
        self.ticked.clear()
        if self.lost.is_set():
            raise ReconnectError("connection lost")
        try:
            await asyncio.wait_for(self.ticked.wait(), max(0.0, within))
        except TimeoutError:
            return
        if self.lost.is_set():
            raise ReconnectError("connection lost")


def _close(ib: IB) -> None:
    # IB.disconnect() insists on a fully started API session; a half-open one
    # (refused client id, dropped socket) is closed at the client level.
    if ib.client.isReady():
        ib.disconnect()
    else:
        ib.client.disconnect()  # type: ignore[no-untyped-call]
