"""TEMPORARY in-memory stand-in for spy_backend (removed once the real app lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.staticfiles import StaticFiles
from spy_backend.models import IngestBatch
from spy_backend.realtime import LocalHub

TOKEN = "standin-token"


def create_app(dashboard_dir: Path) -> FastAPI:
    app = FastAPI()
    hub = LocalHub(key="k" * 40, hub="spy")
    store: dict[str, dict[str, Any]] = {
        r: {} for r in ("anomaly", "market", "gex", "flow", "signal")
    }

    @app.post("/api/v1/ingest")
    async def ingest(batch: IngestBatch) -> dict[str, int]:
        stored = 0
        for res, records in batch.by_resource().items():
            for rec in records:
                if rec.id in store[res.value]:
                    continue
                body = rec.model_dump(mode="json")
                store[res.value][rec.id] = body
                stored += 1
                await hub.publish("SPY", {"type": res.value, "data": body})
        return {"stored": stored}

    def page(res: str, limit: int) -> dict[str, Any]:
        items = sorted(store[res].values(), key=lambda r: r["ts"], reverse=True)[:limit]
        return {"items": items, "next_cursor": None}

    for name, res in [
        ("anomalies", "anomaly"),
        ("market", "market"),
        ("gex", "gex"),
        ("flow", "flow"),
        ("signals", "signal"),
    ]:

        def handler(limit: int = 100, res: str = res) -> dict[str, Any]:
            return page(res, limit)

        app.add_api_route(f"/api/v1/{name}", handler)

    @app.get("/api/v1/negotiate")
    async def negotiate(request: Request) -> dict[str, str]:
        return {"url": await hub.client_url(http_endpoint=str(request.base_url), groups=("SPY",))}

    @app.websocket(hub.path)
    async def ws(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    app.mount("/", StaticFiles(directory=dashboard_dir, html=True))
    return app
