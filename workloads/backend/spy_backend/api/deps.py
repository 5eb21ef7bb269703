"""Annotated dependencies of the routes: settings, store, publisher, metrics, auth.

All `async def`: FastAPI runs plain `def` dependencies in a thread pool, which costs
more than these one-line lookups.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spy_backend.metrics import BackendMetrics
from spy_backend.ratelimit import TokenBuckets, retry_after
from spy_backend.realtime import Publisher
from spy_backend.settings import Settings
from spy_backend.storage import TableStore
from spy_backend.storage.audit import AuditStore
from spy_backend.storage.parts import PartStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> TableStore:
    store: TableStore = request.app.state.store
    return store


async def get_audit_store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.audit_store
    return store


async def get_parts(request: Request) -> PartStore:
    parts: PartStore = request.app.state.parts
    return parts


async def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


async def get_metrics(request: Request) -> BackendMetrics:
    metrics: BackendMetrics = request.app.state.metrics
    return metrics


async def get_clock(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TableStore, Depends(get_store)]
AuditStoreDep = Annotated[AuditStore, Depends(get_audit_store)]
PartsDep = Annotated[PartStore, Depends(get_parts)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
MetricsDep = Annotated[BackendMetrics, Depends(get_metrics)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]

_bearer = HTTPBearer(auto_error=False, description="The detector's ingest token.")


async def require_ingest_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer token, 403 with a wrong one (constant-time comparison)."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.ingest_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")


IngestAuth = Depends(require_ingest_token)

_audit_bearer = HTTPBearer(auto_error=False, description="The bots' audit token.")


async def require_audit_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_audit_bearer)],
) -> None:
    """401 without a bearer token, 403 with a wrong one or when none is configured."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.audit_secret()
    if expected is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the audit API has no token configured")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")


AuditAuth = Depends(require_audit_token)


def client_key(request: Request, settings: Settings) -> str:
    """Whose bucket a request spends: the ingest token's when it carries the valid one,
    else its client address (an unverified token must not buy a fresh bucket)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    expected = settings.ingest_token.get_secret_value().encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected):
        return "token:ingest"
    return "ip:" + (request.client.host if request.client else "unknown")


async def query_rate_limit(request: Request, settings: SettingsDep) -> None:
    """429 with Retry-After once a client spent its burst of public queries."""
    buckets: TokenBuckets = request.app.state.query_buckets
    wait = buckets.take(client_key(request, settings))
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"more than {settings.query_rate_per_second:g} queries per second; retry later",
            headers={"Retry-After": retry_after(wait)},
        )


QueryRateLimit = Depends(query_rate_limit)
