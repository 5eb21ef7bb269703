"""Helpers shared by the backend tests: payload builders and a hub client."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets
from spy_backend.realtime import SUBPROTOCOL

T0 = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def iso(ts: datetime | str) -> str:
    return ts if isinstance(ts, str) else ts.isoformat().replace("+00:00", "Z")


def anomaly(
    ts: datetime | str = T0,
    *,
    strike: float = 600.0,
    kind: str = "iv_residual",
    severity: str = "HIGH",
    expiry: str = "2026-12-19",
    right: str = "C",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "ts": iso(ts),
        "symbol": "SPY",
        "kind": kind,
        "severity": severity,
        "score": 4.2,
        "reason": "IV 31.2% is 4.2 sigma above the fitted smile (27.9%)",
        "contract": {"expiry": expiry, "strike": strike, "right": right},
        "iv": 0.312,
        "fitted_iv": 0.279,
        "k": 0.0123,
    }
    body.update(extra)
    return body


def anomalies(n: int, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> list[dict]:
    return [anomaly(start + i * step, strike=500.0 + i % 200) for i in range(n)]


class HubClient:
    """A realtime client as the dashboard runs it: negotiate, connect, join, receive."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.connected: dict[str, Any] = {}

    @classmethod
    async def connect(cls, base_url: str, group: str | None = "SPY") -> HubClient:
        async with httpx.AsyncClient(base_url=base_url) as http:
            url = (await http.get("/api/v1/negotiate")).raise_for_status().json()["url"]
        ws = await websockets.connect(url, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)])
        client = cls(ws)
        client.connected = await client.recv()
        if group is not None:
            ack = await client.join(group, ack_id=1)
            assert ack["success"], ack
        return client

    async def recv(self, wait: float = 5.0) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), wait))
        return data

    async def join(self, group: str, ack_id: int) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "joinGroup", "group": group, "ackId": ack_id}))
        return await self.recv()

    async def messages(self, count: int, wait: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` group messages (their `data`)."""
        out = []
        while len(out) < count:
            msg = await self.recv(wait)
            if msg.get("type") == "message":
                out.append(msg["data"])
        return out

    async def close(self) -> None:
        await self.ws.close()
