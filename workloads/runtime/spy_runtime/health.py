"""HTTP endpoints for the kubelet and Prometheus: /healthz, /readyz, /metrics.

Started by the detector's and the bot's services (through spy_detector.health and
spy_bot.health, which say what "ready" means for each). /healthz answers 200 while the
event loop runs (a wedged loop fails the liveness probe). /readyz answers 200 while the
readiness check returns no reasons, 503 with the reasons otherwise. /metrics renders
the process's own Prometheus registry. Port 0 picks a free one (tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], list[str]]  # returns reasons it is NOT ready; [] = ready


class Metrics(Protocol):
    """A process's metrics: what /metrics renders is their registry."""

    @property
    def registry(self) -> CollectorRegistry: ...


class HealthServer:
    def __init__(self, metrics: Metrics, readiness: ReadinessCheck, host: str, port: int) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the real port when 0 was asked
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        reasons = self._readiness()
        status = 200 if not reasons else 503
        body = {"status": "ready" if not reasons else "not ready", "reasons": reasons}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    async def _metrics_handler(self, _: web.Request) -> web.Response:
        payload = generate_latest(self._metrics.registry)
        resp = web.Response(body=payload)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp
