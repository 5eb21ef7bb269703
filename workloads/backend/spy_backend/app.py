"""Application factory: wires settings, storage, realtime, routers and middleware.

`create_app()` is what uvicorn serves (`python -m spy_backend`), what the tests and
benchmarks run in-process, and what `devserver` starts for the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spy_backend import __version__
from spy_backend.api.main import API_PREFIX, api_router, probe_router
from spy_backend.api.routes.audit import AUDIT_PATH, AuditBodyLimit
from spy_backend.guards import BodyLimit, IngestAuthGate, MethodGuard, TransportAbort
from spy_backend.metrics import BackendMetrics
from spy_backend.ratelimit import TokenBuckets
from spy_backend.realtime import LocalHub, Publisher, WebPubSubPublisher
from spy_backend.retention import run_purge_loop
from spy_backend.settings import Settings
from spy_backend.storage import StorageUnavailableError, TableStore
from spy_backend.storage.audit import AuditStore
from spy_backend.storage.parts import PartStore

log = logging.getLogger(__name__)

DESCRIPTION = """Ingest, query and realtime delivery of SPY option anomalies and signals.
The wire format is docs/wire-format.md; realtime clients call `/api/v1/negotiate` and
speak `json.webpubsub.azure.v1` to the URL it returns."""


def _route_label(scope: Scope) -> str:
    """A bounded label: the API path of a matched route (none has path parameters),
    `static` for the dashboard files, `other` for everything unmatched."""
    route = scope.get("route")
    if isinstance(route, APIRoute) and not scope.get("path_params"):
        return str(scope["path"])
    if isinstance(route, Mount):
        return "static"
    return "other"


class RequestMetrics:
    """Count requests and observe latency per route template (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: BackendMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route_label(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def build_publisher(settings: Settings) -> Publisher:
    if settings.realtime == "azure":
        assert settings.webpubsub_connection_string is not None  # checked by Settings
        return WebPubSubPublisher(
            settings.webpubsub_connection_string.get_secret_value(),
            settings.webpubsub_hub,
            settings.client_token_minutes,
        )
    origins = [*settings.cors_origins, *settings.hub_origins]
    if settings.public_url:
        origins.append(settings.public_url)
    return LocalHub(
        settings.local_hub_key.get_secret_value(),
        settings.webpubsub_hub,
        settings.client_token_minutes,
        origins=origins,
        buffer_bytes=settings.hub_client_buffer_bytes,
        send_timeout=settings.hub_send_timeout_seconds,
    )


def _api_methods(app: FastAPI) -> dict[str, set[str]]:
    """Path -> methods of everything the app serves but the static files: the spec's
    operations and the plain routes (/openapi.json, /docs)."""
    methods: dict[str, set[str]] = {}
    for path, operations in app.openapi().get("paths", {}).items():
        methods.setdefault(path, set()).update(m.upper() for m in operations)
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            methods.setdefault(route.path, set()).update(route.methods)
    return methods


def create_app(
    settings: Settings | None = None,
    *,
    publisher: Publisher | None = None,
    clock: Callable[[], datetime] | None = None,
    run_purge: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    store = TableStore(
        settings.storage_connection_string.get_secret_value(),
        settings.table_prefix,
        settings.storage_timeout_seconds,
    )
    parts = PartStore(
        settings.storage_connection_string.get_secret_value(),
        settings.table_prefix,
        settings.storage_timeout_seconds,
    )
    audit_store = AuditStore(
        settings.storage_connection_string.get_secret_value(),
        settings.table_prefix,
        settings.storage_timeout_seconds,
    )
    publisher = publisher or build_publisher(settings)
    metrics = BackendMetrics()
    now = clock or (lambda: datetime.now(UTC))
    purge = PurgeSchedule(settings.retention_days, settings.purge_interval_seconds, run_purge)

    app = FastAPI(
        title="SPY options backend",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(store, parts, audit_store, publisher, metrics, now, purge),
    )
    app.state.settings = settings
    app.state.store = store
    app.state.audit_store = audit_store
    app.state.parts = parts
    app.state.publisher = publisher
    app.state.metrics = metrics
    app.state.clock = now
    app.state.query_buckets = TokenBuckets(
        settings.query_rate_per_second, settings.query_burst, time.monotonic
    )
    _add_exception_handlers(app, metrics)
    _add_middleware(app, settings, metrics)
    app.include_router(api_router)
    app.include_router(probe_router)
    if isinstance(publisher, LocalHub):
        hub = publisher
        app.add_api_websocket_route(hub.path, hub.serve)
        metrics.hub_connections.set_function(lambda: float(hub.connection_count()))
    if settings.dashboard_dir is not None and settings.dashboard_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.dashboard_dir, html=True), name="dashboard")
    return app


@dataclass(frozen=True)
class PurgeSchedule:
    retention_days: int
    interval_seconds: float
    enabled: bool


def _lifespan(
    store: TableStore,
    parts: PartStore,
    audit_store: AuditStore,
    publisher: Publisher,
    metrics: BackendMetrics,
    now: Callable[[], datetime],
    purge: PurgeSchedule,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Open storage (or carry on without it), run the purge, close everything at exit."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await store.open()
        except StorageUnavailableError as exc:
            # Temporary: readiness stays false and tables are created on first use.
            log.warning("storage unavailable at startup", extra={"error": str(exc)})
        task = None
        if purge.enabled:
            task = asyncio.create_task(
                run_purge_loop(
                    store, now, purge.retention_days, purge.interval_seconds, metrics, parts
                )
            )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await publisher.close()
            await parts.close()
            await store.close()
            await audit_store.close()

    return lifespan


def _add_exception_handlers(app: FastAPI, metrics: BackendMetrics) -> None:
    @app.exception_handler(StorageUnavailableError)
    async def storage_unavailable(request: Request, exc: StorageUnavailableError) -> JSONResponse:
        metrics.storage_unavailable.inc()
        return JSONResponse(
            {"detail": "storage unavailable; retry"}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes `input`, which may hold NaN (not encodable: a 500) or a
        # large payload; answer with where and why only.
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)


def _add_middleware(app: FastAPI, settings: Settings, metrics: BackendMetrics) -> None:
    # Added innermost first: a request meets TransportAbort, RequestMetrics, the ingest
    # token check (headers only), the body limit, CORS, then the 405 guard.
    app.add_middleware(MethodGuard, methods=lambda: _api_methods(app))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET"]
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        IngestAuthGate,
        paths=[f"{API_PREFIX}/ingest"],
        token=settings.ingest_token.get_secret_value,
    )
    # The audit API's token, checked from the headers before its (smaller) body limit;
    # with none configured a fresh random value that nobody holds refuses every write.
    unguessable = secrets.token_urlsafe(32)
    app.add_middleware(AuditBodyLimit, path=f"{API_PREFIX}{AUDIT_PATH}")
    app.add_middleware(
        IngestAuthGate,
        paths=[f"{API_PREFIX}{AUDIT_PATH}"],
        token=lambda: settings.audit_secret() or unguessable,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(TransportAbort)
