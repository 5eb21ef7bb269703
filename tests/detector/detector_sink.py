"""A real HTTP ingest endpoint on 127.0.0.1 for the publisher tests.

It implements the detector-facing half of the backend's contract
(docs/wire-format.md): ``POST /api/v1/ingest`` with a bearer token, 401 without one,
403 with a wrong one, 200 with stored/duplicate counts, and 503 while ``down``.
Items are stored by id (anomalies) or by position, so a test can prove nothing was
lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web


class IngestSink:
    def __init__(self, token: str = "s3cret") -> None:
        self.token = token
        self.down = False
        self.delay = 0.0  # seconds before answering (a slow backend)
        self.name_invalid = True  # False: a 422 without item locations (forces bisection)
        self.in_flight = 0
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.anomaly_ids: dict[str, int] = {}
        self.requests = 0
        self.statuses: list[int] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, kind: str) -> int:
        return len(self.received.get(kind, []))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/ingest", self._ingest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ingest(self, request: web.Request) -> web.Response:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._status(401, {"detail": "missing token"})
        if auth.removeprefix("Bearer ") != self.token:
            return self._status(403, {"detail": "wrong token"})
        if self.down:
            return self._status(503, {"detail": "storage unavailable"})
        body = await request.json()
        if self.delay:
            self.in_flight += 1
            await asyncio.sleep(self.delay)
            self.in_flight -= 1
        total = sum(len(v) for v in body.values())
        if total > 1000:
            return self._status(422, {"detail": "at most 1000 items"})
        # "invalid" stands in for any Pydantic validation error; like FastAPI, every
        # invalid item is named by its location (unless the sink is told not to)
        errors = [
            {"loc": ["body", kind, i, "invalid"], "msg": "invalid", "type": "value_error"}
            for kind, items in body.items()
            for i, item in enumerate(items)
            if item.get("invalid")
        ]
        if errors:
            if not self.name_invalid:
                return self._status(422, {"detail": "invalid batch"})
            return self._status(422, {"detail": errors})
        stored = duplicate = 0
        for kind, items in body.items():
            for item in items:
                if kind == "anomalies":
                    n = self.anomaly_ids.get(item["id"], 0)
                    self.anomaly_ids[item["id"]] = n + 1
                    if n:
                        duplicate += 1
                        continue
                self.received.setdefault(kind, []).append(item)
                stored += 1
        return self._status(200, {"stored": stored, "duplicate": duplicate})

    def _status(self, status: int, body: dict[str, Any]) -> web.Response:
        self.statuses.append(status)
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")
