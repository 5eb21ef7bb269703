"""All routers in one place: versioned API under /api/v1, probes at the root."""

from fastapi import APIRouter

from spy_backend.api.routes import audit, health, ingest, query, realtime

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(ingest.router)
api_router.include_router(query.router)
api_router.include_router(realtime.router)
api_router.include_router(audit.router)

probe_router = APIRouter()
probe_router.include_router(health.router)
