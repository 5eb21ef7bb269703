"""What an outside attack on the local hub found (issue 12), with real WebSocket clients
against the backend's hub: big client frames (1), clients that never read (2), and
connections from any Origin (7)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from spy_backend.realtime import SUBPROTOCOL, LocalHub
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ._support import T0, HubClient
from .conftest import Backend

PROTOCOLS = [websockets.Subprotocol(SUBPROTOCOL)]


def hub_of(backend: Backend) -> LocalHub:
    hub = backend.server.app.state.publisher
    assert isinstance(hub, LocalHub)
    return hub


async def negotiated_url(backend: Backend) -> str:
    async with httpx.AsyncClient(base_url=backend.url) as http:
        url: str = (await http.get("/api/v1/negotiate")).json()["url"]
    return url


async def wait_until(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def big_market(i: int) -> dict[str, Any]:
    """A valid market snapshot of about 300 KB (32 expiries x 256 smile points with
    full-precision floats, like a real fit's)."""
    points = {
        "k": [-1 + j / 128 + j * 1.234567e-9 for j in range(256)],
        "iv": [0.2 + j * 1.234567e-9 for j in range(256)],
    }
    expiries = [
        {"expiry": f"2027-{1 + e // 28:02d}-{1 + e % 28:02d}", "t": 0.1, "points": points}
        for e in range(32)
    ]
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return {"ts": ts, "symbol": "SPY", "spot": 600.0, "expiries": expiries}


class StalledClient:
    """A hub client that joins SPY and then never reads a byte: the WebSocket handshake
    and one masked frame written by hand on a socket with a 4 KiB receive buffer (a
    library client keeps reading into its own buffers, and negotiates compression)."""

    def __init__(self, port: int, url: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        target = url.split(f":{port}", 1)[1]
        self.sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)  # byte by byte: read nothing past the handshake
        assert head.startswith(b"HTTP/1.1 101"), head
        self.send_text(json.dumps({"type": "joinGroup", "group": "SPY"}))

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def cut_by_server(self, timeout: float) -> bool:
        """Read everything now: True once the server reset or closed the connection."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(1 << 20):
                    return True  # EOF
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


async def stalled_client(backend: Backend, hub: LocalHub) -> StalledClient:
    before = hub.connection_count()
    client = StalledClient(backend.server.port, await negotiated_url(backend))
    assert await wait_until(lambda: hub.connection_count() == before + 1, within=5)
    return client


async def flood(backend: Backend, records: int, per_batch: int = 2) -> None:
    """Publish `records` 300 KB market snapshots through the real ingest path."""
    async with httpx.AsyncClient(base_url=backend.url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {backend.settings.ingest_token.get_secret_value()}"}
        for first in range(0, records, per_batch):
            last = min(records, first + per_batch)
            batch = {"market": [big_market(i) for i in range(first, last)]}
            response = await http.post("/api/v1/ingest", json=batch, headers=headers)
            assert response.status_code == 200, response.text


# ------------------------------------------------------------------ 1: frame cap


async def test_a_client_frame_over_4_kib_closes_the_connection(backend: Backend) -> None:
    """Finding 1: the hub read 16 MiB frames from anyone holding a negotiated token."""
    hub = await HubClient.connect(backend.url)
    try:
        await hub.ws.send(json.dumps({"type": "event", "data": "x" * 64 * 1024}))
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(10):
                await hub.recv(wait=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        await hub.close()
    joined = await HubClient.connect(backend.url)  # small frames are still fine
    await joined.close()


# ------------------------------------------------------------------ 2: slow clients


async def test_a_client_lagging_past_its_byte_budget_is_dropped(start_backend: Any) -> None:
    """Finding 2: a client that never reads was dropped only after 4096 queued messages
    whatever their size (0.9 GB of market records). Now after `hub_client_buffer_bytes`
    (2 MiB here, batches of 600 KB); a reading client of the same group keeps receiving."""
    backend: Backend = start_backend(hub_client_buffer_bytes=2 * 1024 * 1024)
    hub = hub_of(backend)
    stalled = await stalled_client(backend, hub)
    reader = await HubClient.connect(backend.url)
    got: list[str] = []

    async def read_all() -> None:
        while len(got) < 40:
            msg = await reader.recv(wait=30)
            if msg.get("type") == "message":
                got.append(msg["data"]["data"]["ts"])

    reading = asyncio.create_task(read_all())
    try:
        assert hub.connection_count() == 2
        await flood(backend, 40)  # 12 MB: far past the budget and the socket buffers
        assert await wait_until(lambda: hub.connection_count() == 1, within=20)
        await asyncio.wait_for(reading, 30)
        assert len(got) == 40
    finally:
        reading.cancel()
        await reader.close()
        stalled.close()


async def test_a_stalled_send_aborts_the_connection(start_backend: Any) -> None:
    """Finding 2: keepalive never closed a client that does not read, because the close
    waited on a send buffer that never drains. A send stalled past
    `hub_send_timeout_seconds` now drops the TCP connection itself."""
    backend: Backend = start_backend(
        hub_client_buffer_bytes=256 * 1024 * 1024, hub_send_timeout_seconds=1
    )
    hub = hub_of(backend)
    stalled = await stalled_client(backend, hub)
    try:
        await flood(backend, 24)  # 7 MB: more than the socket buffers hold
        assert await wait_until(lambda: hub.connection_count() == 0, within=20)
        assert stalled.cut_by_server(timeout=10)  # reading again, it finds the end
    finally:
        stalled.close()


# ------------------------------------------------------------------ 7: Origin


async def test_browsers_may_open_the_hub_only_from_allowed_origins(start_backend: Any) -> None:
    """Finding 7: the hub accepted connections from any Origin."""
    backend: Backend = start_backend(hub_origins=("https://desk.example",))
    url = await negotiated_url(backend)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url, subprotocols=PROTOCOLS, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    for origin in (f"http://127.0.0.1:{backend.server.port}", "https://desk.example", None):
        ws = await websockets.connect(url, subprotocols=PROTOCOLS, origin=origin)  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["event"] == "connected"
        await ws.close()
