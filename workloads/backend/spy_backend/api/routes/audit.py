"""POST /api/v1/audit (a bot's audit lines, append-only) and GET /api/v1/audit (a bot's
trail, newest first). Both need the audit bearer token (Settings.audit_token); the
contract is docs/bot.md "Audit log"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.types import ASGIApp, Receive, Scope, Send

from spy_backend.api.deps import AuditAuth, AuditStoreDep, MetricsDep
from spy_backend.api.routes.ingest import UndecodableBodyIs422
from spy_backend.guards import BodyLimit
from spy_backend.models import Problem
from spy_backend.models.audit import BOT_PATTERN, AuditBatch, AuditEvent, AuditPage, AuditResult
from spy_backend.models.common import QueryTimestamp
from spy_backend.storage.audit import CURSOR_PATTERN

AUDIT_PATH = "/audit"
MAX_BODY_BYTES = 2 * 1024 * 1024  # 1000 records of ~2 KiB; a bot sends far less

router = APIRouter(tags=["audit"], route_class=UndecodableBodyIs422)


class AuditBodyLimit:
    """413 for an audit body over MAX_BODY_BYTES (the app-wide limit is the ingest's)."""

    def __init__(self, app: ASGIApp, path: str, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.path = path
        self.limited = BodyLimit(app, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            await self.limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)


AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No bearer token."},
    403: {"model": Problem, "description": "Wrong bearer token, or none configured."},
}


@router.post(
    AUDIT_PATH,
    response_model=AuditResult,
    dependencies=[AuditAuth],
    summary="Append a bot's audit records (idempotent on bot, run and seq)",
    responses={
        **AUTH_RESPONSES,
        413: {"model": Problem, "description": f"Body over {MAX_BODY_BYTES} bytes."},
        503: {"model": Problem, "description": "Storage unavailable; retry the same batch."},
    },
)
async def append_audit(batch: AuditBatch, store: AuditStoreDep, metrics: MetricsDep) -> AuditResult:
    """Each record is stored once; a record stored before counts as a duplicate and is
    never overwritten. A record that fails validation is a 422 naming its index and
    field, and nothing of that batch is stored."""
    stored, duplicate = await store.append(batch.records)
    metrics.records.labels("audit", "stored").inc(stored)
    metrics.records.labels("audit", "duplicate").inc(duplicate)
    return AuditResult(stored=stored, duplicate=duplicate)


@router.get(
    AUDIT_PATH,
    response_model=AuditPage,
    dependencies=[AuditAuth],
    summary="A bot's audit trail, newest first",
    responses=AUTH_RESPONSES,
)
async def read_audit(
    store: AuditStoreDep,
    bot: Annotated[str, Query(pattern=BOT_PATTERN, description="namespace/name")],
    start: Annotated[QueryTimestamp | None, Query(description="oldest ts, inclusive")] = None,
    end: Annotated[QueryTimestamp | None, Query(description="newest ts, inclusive")] = None,
    event: Annotated[AuditEvent | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> AuditPage:
    if start is not None and end is not None and start > end:
        return AuditPage(items=[])  # nothing lies in an inverted range (like the queries)
    items, next_cursor = await store.read(bot, start, end, event, limit, cursor)
    return AuditPage(items=items, next_cursor=next_cursor)
