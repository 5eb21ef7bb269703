"""Probes and metrics: /healthz (process up), /readyz (storage reachable), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from spy_backend.api.deps import MetricsDep, StoreDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    storage: bool | None = None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Storage unreachable."}},
)
async def readyz(store: StoreDep, response: Response) -> Health:
    if await store.ping():
        return Health(status="ready", storage=True)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="not ready", storage=False)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
