"""Signals from the backend: the realtime hub live, the query API to fill gaps.

``process.run_bot`` runs ``SignalFeed.run()``; each signal reaches ``deliver`` exactly
once per process. The flow is the dashboard's (dashboard/js/realtime.js): GET
``/api/v1/negotiate`` -> ``{url}``; WebSocket with subprotocol
``json.webpubsub.azure.v1``; ``joinGroup`` the symbol with an ackId; group messages
``{"type": "anomaly"|"signal", "data": {...}}``. Works against Azure Web PubSub and
the backend's local hub alike.

After every reconnect (not the first connect: a bot trades what happens while it
runs) it joins first and then pages ``/api/v1/anomalies`` and ``/api/v1/signals`` from
the newest record it had seen (minus an overlap) to now, oldest first. A record in
both the backfill and the live stream, or sent twice, is delivered once: ids seen
are remembered (``Seen``). Reconnects back off exponentially with full jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from spy_bot.signals import Signal, SignalError, from_record

log = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("json.webpubsub.azure.v1")
RESOURCES = {"anomaly": "anomalies", "signal": "signals"}

Deliver = Callable[[Signal, str], Awaitable[None]]  # (signal, "live" | "backfill")
Invalid = Callable[[str, dict[str, Any]], None]


class Seen:
    """Ids already delivered, oldest evicted past ``capacity`` (a day of signals)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, rid: str) -> bool:
        """True the first time an id is added."""
        if rid in self._ids:
            return False
        self._ids[rid] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


class SignalFeed:
    def __init__(
        self,
        backend_url: str,
        symbol: str,
        deliver: Deliver,
        *,
        invalid: Invalid | None = None,
        on_state: Callable[[bool], None] | None = None,
        overlap: float = 5.0,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.backend_url = backend_url.rstrip("/")
        self.symbol = symbol
        self.deliver = deliver
        self.invalid = invalid or (lambda why, raw: None)
        self.on_state = on_state or (lambda live: None)
        self.overlap = timedelta(seconds=overlap)
        self.base_delay, self.max_delay = base_delay, max_delay
        self.clock = clock
        self.seen = Seen()
        self.newest: datetime | None = None  # newest ts delivered
        self.connected_at: datetime | None = None
        self.joins = 0
        self.live = False
        self._ws: ClientConnection | None = None
        self._http = httpx.AsyncClient(base_url=self.backend_url, timeout=10)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0  # a session that joined and then dropped starts afresh
            except (OSError, httpx.HTTPError, WebSocketException, FeedError) as exc:
                # The backend or hub is away: say so, back off, negotiate again (tokens
                # expire, the hub may have moved).
                log.warning("hub session ended", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._set_live(False)
            cap = min(self.max_delay, self.base_delay * 2**attempt)
            attempt += 1
            await asyncio.sleep(cap / 2 + random.random() * cap / 2)

    def drop(self) -> None:
        """Close the socket (tests: a network drop)."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        await self._http.aclose()

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.on_state(live)

    async def _session(self) -> None:
        resp = await self._http.get("/api/v1/negotiate")
        resp.raise_for_status()
        url = resp.json().get("url")
        if not url:
            raise FeedError("negotiate returned no url")
        async with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=10) as ws:
            self._ws = ws
            try:
                await ws.send(json.dumps({"type": "joinGroup", "group": self.symbol, "ackId": 1}))
                since = self.newest or self.connected_at
                await self._await_join(ws)
                first = self.joins == 0
                self.joins += 1
                if first:
                    self.connected_at = self.clock()
                self._set_live(True)
                if not first and since is not None:
                    await self._backfill(since - self.overlap)
                async for raw in ws:
                    await self._frame(raw)
            finally:
                self._ws = None

    async def _await_join(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = _json(raw)
            if msg.get("type") == "ack" and msg.get("ackId") == 1:
                error = msg.get("error") or {}
                if msg.get("success") or error.get("name") == "Duplicate":
                    return
                raise FeedError(f"joinGroup refused: {error.get('name')}: {error.get('message')}")
            if msg.get("type") == "message":
                await self._frame(raw)  # a message racing the ack is still a message
        raise FeedError("hub closed before acknowledging joinGroup")

    async def _frame(self, raw: str | bytes) -> None:
        msg = _json(raw)
        if msg.get("type") != "message" or msg.get("group") != self.symbol:
            return  # system connected/disconnected frames; other groups
        data = msg.get("data")
        if isinstance(data, str):
            data = _json(data)
        if not isinstance(data, dict) or data.get("type") not in RESOURCES:
            return  # market, gex, flow: not for the bot
        await self._offer(str(data["type"]), data.get("data"), "live")

    async def _offer(self, type_: str, record: Any, via: str) -> None:
        if not isinstance(record, dict):
            self.invalid(f"{type_}: data is not an object", {"data": record})
            return
        try:
            signal = from_record(type_, record)
        except SignalError as exc:
            self.invalid(f"{type_}: {exc}", record)
            return
        if not self.seen.add(signal.id):
            return
        if self.newest is None or signal.ts > self.newest:
            self.newest = signal.ts
        await self.deliver(signal, via)

    async def _backfill(self, since: datetime) -> None:
        end = self.clock() + timedelta(seconds=1)
        records: list[tuple[str, dict[str, Any]]] = []
        for type_, resource in RESOURCES.items():
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {
                    "symbol": self.symbol,
                    "start": since.isoformat(),
                    "end": end.isoformat(),
                    "limit": 1000,
                }
                if cursor:
                    params["cursor"] = cursor
                resp = await self._http.get(f"/api/v1/{resource}", params=params)
                resp.raise_for_status()
                page = resp.json()
                records += [(type_, item) for item in page.get("items", [])]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        records.sort(key=lambda r: str(r[1].get("ts", "")))  # oldest first
        for type_, item in records:
            await self._offer(type_, item, "backfill")


class FeedError(RuntimeError):
    """The hub refused or broke the protocol."""


def _json(raw: str | bytes) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        value = json.loads(raw)
        if isinstance(value, dict):
            return value
    return {}
