"""A local Web PubSub hub inside the backend, speaking `json.webpubsub.azure.v1`.

Used by the demo and the tests in place of Azure Web PubSub. Clients connect to
`/client/hubs/<hub>?access_token=<jwt>` (the same URL shape as Azure) with the
subprotocol `json.webpubsub.azure.v1`, receive the system `connected` message, send
`joinGroup`/`leaveGroup` (answered with `ack`, error `Forbidden` when the token's roles
do not allow the group) and receive group `message` events. The API publishes through
the `Publisher` interface, like with Azure.

One client's connection (its outbox and byte budget), the ack frame and the Origin
check are hub_connection.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import jwt
from starlette.websockets import WebSocket, WebSocketDisconnect

from spy_backend.realtime import tokens
from spy_backend.realtime.hub_connection import ABORT_EXTENSION as ABORT_EXTENSION
from spy_backend.realtime.hub_connection import HubConnection, ack_frame, origin_allowed

log = logging.getLogger(__name__)

SUBPROTOCOL = "json.webpubsub.azure.v1"
MAX_GROUP_NAME = 1024
MAX_CLIENT_FRAME = 4096  # clients only join and leave groups
DEFAULT_BUFFER_BYTES = 32 * 1024 * 1024
DEFAULT_SEND_TIMEOUT = 10.0


class LocalHub:
    """In-process hub: group membership, fan-out, and the WebSocket endpoint."""

    def __init__(
        self,
        key: str,
        hub: str,
        minutes: int = 60,
        *,
        origins: Iterable[str] = (),
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        self.key = key
        self.hub = hub
        self._minutes = minutes
        self._origins = tuple(origins)
        self._buffer_bytes = buffer_bytes
        self._send_timeout = send_timeout
        self._groups: dict[str, set[HubConnection]] = defaultdict(set)
        self._connections: set[HubConnection] = set()

    @property
    def path(self) -> str:
        return f"/client/hubs/{self.hub}"

    def connection_count(self) -> int:
        return len(self._connections)

    async def publish(self, group: str, message: dict[str, Any]) -> None:
        text = json.dumps(
            {
                "type": "message",
                "from": "group",
                "group": group,
                "dataType": "json",
                "data": message,
            }
        )
        self._fan_out(group, text)

    async def publish_many(self, group: str, messages: list[dict[str, Any]]) -> int:
        for message in messages:
            await self.publish(group, message)
        return 0  # in-process delivery can not fail; slow clients are dropped instead

    def _fan_out(self, group: str, text: str) -> None:
        for conn in list(self._groups.get(group, ())):
            if not conn.offer(text):
                log.warning(
                    "hub client too slow, disconnecting",
                    extra={"conn": conn.id, "queued_bytes": conn.queued_bytes},
                )
                self._drop(conn)

    async def client_url(self, *, http_endpoint: str, groups: tuple[str, ...]) -> str:
        token = tokens.issue(
            self.key,
            http_endpoint,
            self.hub,
            roles=tokens.join_roles(groups),
            minutes=self._minutes,
        )
        base = "ws" + http_endpoint.rstrip("/")[4:]  # http->ws, https->wss
        return f"{base}{self.path}?access_token={token}"

    async def close(self) -> None:
        for conn in list(self._connections):
            self._drop(conn)

    def _drop(self, conn: HubConnection) -> None:
        """Forget a connection and make its sender close it (pending messages dropped)."""
        self._forget(conn)
        conn.close_soon()

    def _forget(self, conn: HubConnection) -> None:
        self._connections.discard(conn)
        for group in conn.groups:
            members = self._groups.get(group)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._groups[group]
        conn.groups.clear()

    def _join(self, conn: HubConnection, group: str) -> None:
        conn.groups.add(group)
        self._groups[group].add(conn)

    async def serve(self, ws: WebSocket) -> None:
        """The WebSocket endpoint: authenticate, greet, then pump both directions."""
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), self._origins):
            log.info("hub connection refused", extra={"reason": "origin not allowed"})
            await ws.close(code=1008, reason="origin not allowed")  # before accept: 403
            return
        token = ws.query_params.get("access_token") or ""
        auth = ws.headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:]
        try:
            grant = tokens.verify(token, self.key, self.hub)
        except jwt.InvalidTokenError as exc:
            log.info("hub connection refused", extra={"reason": type(exc).__name__})
            await ws.close(code=1008, reason="invalid access token")
            return
        if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
            await ws.close(code=1002, reason=f"subprotocol {SUBPROTOCOL} required")
            return
        await ws.accept(subprotocol=SUBPROTOCOL)
        conn = HubConnection(ws, grant, self._buffer_bytes)
        self._connections.add(conn)
        for group in grant.groups:
            self._join(conn, group)
        conn.offer(
            json.dumps(
                {
                    "type": "system",
                    "event": "connected",
                    "userId": grant.user_id,
                    "connectionId": conn.id,
                }
            )
        )
        sender = asyncio.create_task(self._pump_out(conn))
        try:
            while (message := await ws.receive())["type"] != "websocket.disconnect":
                text = message.get("text")
                if text is None:  # a binary frame: JSON in UTF-8, or ignored
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                if len(text) > MAX_CLIENT_FRAME:  # the server's own cap may be larger
                    self._drop(conn)
                    break
                self._handle(conn, text)
        finally:
            self._forget(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _pump_out(self, conn: HubConnection) -> None:
        try:
            while (text := await conn.next()) is not None:
                async with asyncio.timeout(self._send_timeout):
                    await conn.ws.send_text(text)
            async with asyncio.timeout(self._send_timeout):
                await conn.ws.close(code=1013, reason="disconnected by the hub")
        except TimeoutError:
            # The client stopped reading: its TCP buffers are full and a close frame
            # would queue behind them forever. Forget it and cut the connection.
            log.warning("hub send stalled, aborting the connection", extra={"conn": conn.id})
            self._forget(conn)
            conn.close_soon()
            conn.abort()
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client went away mid-send; the receive loop sees the disconnect and
            # forgets the connection.
            log.debug("hub send to a closed connection", extra={"conn": conn.id})

    def _handle(self, conn: HubConnection, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return  # not JSON: Azure ignores frames it can not parse as well
        if not isinstance(msg, dict):
            return
        kind, group, ack_id = msg.get("type"), msg.get("group"), msg.get("ackId")
        if kind not in ("joinGroup", "leaveGroup", "sendToGroup"):
            return  # sequenceAck, event: nothing to do in the local hub
        if not isinstance(group, str) or not 0 < len(group) <= MAX_GROUP_NAME:
            group = ""
        allowed = bool(group) and (
            conn.grant.may_send(group) if kind == "sendToGroup" else conn.grant.may_join(group)
        )
        if not allowed:
            if ack_id is not None:
                conn.offer(ack_frame(ack_id, "Forbidden", f"not allowed to {kind} '{group}'"))
            return
        if kind == "joinGroup":
            self._join(conn, group)
        elif kind == "leaveGroup":
            conn.groups.discard(group)
            self._groups.get(group, set()).discard(conn)
        else:
            data = msg.get("data")
            self._fan_out(
                group,
                json.dumps(
                    {
                        "type": "message",
                        "from": "group",
                        "fromUserId": conn.grant.user_id,
                        "group": group,
                        "dataType": msg.get("dataType", "json"),
                        "data": data,
                    }
                ),
            )
        if ack_id is not None:
            conn.offer(ack_frame(ack_id))
