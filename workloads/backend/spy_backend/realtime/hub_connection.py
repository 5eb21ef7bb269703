"""One client of the local hub (local_hub.py, its only user): the connection's outbox
with its byte budget, the abort that drops a lagging client's TCP connection, the
`ack` frame, and the browser Origin check made before a connection is accepted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from spy_backend.realtime import tokens

# Set by `guards.TransportAbort` on WebSocket scopes: drops the TCP connection at once.
ABORT_EXTENSION = "spy.transport.abort"


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str]) -> bool:
    """A browser may open the hub from this backend's own origin or an allowed one.

    No `Origin` header: not a browser (browsers always send it on WebSocket handshakes),
    and a non-browser client can send any Origin it likes, so there is nothing to check.
    """
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin in {o.rstrip("/").lower() for o in allowed}:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == (host or "").lower()


class HubConnection:
    def __init__(self, ws: WebSocket, grant: tokens.ClientGrant, buffer_bytes: int) -> None:
        self.id = uuid.uuid4().hex
        self.ws = ws
        self.grant = grant
        self.groups: set[str] = set()
        self.buffer_bytes = buffer_bytes
        self.queued_bytes = 0
        self.closing = False
        self._outbox: deque[str] = deque()
        self._ready = asyncio.Event()

    def offer(self, text: str) -> bool:
        """Queue a message; False when the client lags more than its byte budget (one
        message larger than the budget still goes through an empty queue)."""
        if self.closing:
            return True
        if self._outbox and self.queued_bytes + len(text) > self.buffer_bytes:
            return False
        self._outbox.append(text)
        self.queued_bytes += len(text)
        self._ready.set()
        return True

    def close_soon(self) -> None:
        """Drop what is queued and make the sender close the connection."""
        self.closing = True
        self._outbox.clear()
        self.queued_bytes = 0
        self._ready.set()

    async def next(self) -> str | None:
        """The next message to send, or None once the connection is to be closed."""
        while not self._outbox and not self.closing:
            self._ready.clear()
            await self._ready.wait()
        if self.closing:
            return None
        text = self._outbox.popleft()
        self.queued_bytes -= len(text)
        return text

    def abort(self) -> None:
        abort: Callable[[], None] | None = (self.ws.scope.get("extensions") or {}).get(
            ABORT_EXTENSION
        )
        if abort is not None:
            abort()


def ack_frame(ack_id: Any, error: str | None = None, message: str = "") -> str:
    body: dict[str, Any] = {"type": "ack", "ackId": ack_id, "success": error is None}
    if error is not None:
        body["error"] = {"name": error, "message": message}
    return json.dumps(body)
