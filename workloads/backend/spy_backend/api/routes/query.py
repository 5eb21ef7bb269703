"""Newest-first query endpoints: /anomalies, /signals, /market, /gex, /flow.

Every one takes a symbol, a time range (default: the last 24 hours, at most 92 days),
a page size and the opaque cursor of the previous page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError

from spy_backend.api.deps import ClockDep, StoreDep
from spy_backend.models import (
    AnomalyKind,
    AnomalyPublic,
    FlowPublic,
    GexPublic,
    MarketPublic,
    Page,
    Problem,
    PublicRecord,
    Resource,
    Severity,
    SignalPublic,
)
from spy_backend.models.common import MAX_TS, MIN_TS, Expiry, UtcTimestamp
from spy_backend.storage import Cursor, TableStore

router = APIRouter(tags=["query"])
DEFAULT_SPAN = timedelta(hours=24)
MAX_SPAN = timedelta(days=92)
_ERRORS: dict[int | str, dict[str, object]] = {
    503: {"model": Problem, "description": "Storage unavailable."}
}


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": None}]
    )


@dataclass(frozen=True)
class Window:
    symbol: str
    start: datetime
    end: datetime
    limit: int
    cursor: Cursor | None


async def window(
    clock: ClockDep,
    symbol: Annotated[str, Query(pattern=r"^[A-Z][A-Z0-9.]{0,9}$")] = "SPY",
    start: Annotated[
        UtcTimestamp | None, Query(description="Oldest ts (RFC 3339); default end-24h.")
    ] = None,
    end: Annotated[UtcTimestamp | None, Query(description="Newest ts; default now.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor")] = None,
) -> Window:
    end = end or clock()
    start = start or end - DEFAULT_SPAN
    if start > end:
        raise _invalid("start", "start must not be after end")
    if end - start > MAX_SPAN:
        raise _invalid("start", f"the range may span at most {MAX_SPAN.days} days")
    if start < MIN_TS or end >= MAX_TS:
        raise _invalid("start", "the range must lie between 2000 and 2100")
    parsed = None
    if cursor is not None:
        try:
            parsed = Cursor.decode(cursor)
        except ValueError as exc:
            raise _invalid("cursor", str(exc)) from exc
    return Window(symbol, start, end, limit, parsed)


WindowDep = Annotated[Window, Depends(window)]


async def _page(
    store: TableStore,
    resource: Resource,
    w: Window,
    equals: dict[str, list[str]] | None = None,
) -> tuple[list[PublicRecord], str | None]:
    items, nxt = await store.query(
        resource, w.symbol, w.start, w.end, limit=w.limit, cursor=w.cursor, equals=equals
    )
    return items, nxt.encode() if nxt else None


@router.get("/anomalies", response_model=Page[AnomalyPublic], responses=_ERRORS)
async def list_anomalies(
    store: StoreDep,
    w: WindowDep,
    expiry: Annotated[list[Expiry] | None, Query(max_length=50)] = None,
    kind: Annotated[list[AnomalyKind] | None, Query(max_length=20)] = None,
    severity: Annotated[list[Severity] | None, Query(max_length=3)] = None,
) -> Page[AnomalyPublic]:
    """Anomalies newest first; repeat a filter to accept several values."""
    equals = {
        "expiry": [e.isoformat() for e in expiry or []],
        "kind": [k.value for k in kind or []],
        "severity": [s.value for s in severity or []],
    }
    items, nxt = await _page(store, Resource.ANOMALY, w, equals)
    return Page[AnomalyPublic](items=items, next_cursor=nxt)  # type: ignore[arg-type]


@router.get("/signals", response_model=Page[SignalPublic], responses=_ERRORS)
async def list_signals(store: StoreDep, w: WindowDep) -> Page[SignalPublic]:
    items, nxt = await _page(store, Resource.SIGNAL, w)
    return Page[SignalPublic](items=items, next_cursor=nxt)  # type: ignore[arg-type]


@router.get("/market", response_model=Page[MarketPublic], responses=_ERRORS)
async def list_market(store: StoreDep, w: WindowDep) -> Page[MarketPublic]:
    """Market snapshots (spot, smiles) newest first; `limit=1` gives the latest."""
    items, nxt = await _page(store, Resource.MARKET, w)
    return Page[MarketPublic](items=items, next_cursor=nxt)  # type: ignore[arg-type]


@router.get("/gex", response_model=Page[GexPublic], responses=_ERRORS)
async def list_gex(store: StoreDep, w: WindowDep) -> Page[GexPublic]:
    items, nxt = await _page(store, Resource.GEX, w)
    return Page[GexPublic](items=items, next_cursor=nxt)  # type: ignore[arg-type]


@router.get("/flow", response_model=Page[FlowPublic], responses=_ERRORS)
async def list_flow(store: StoreDep, w: WindowDep) -> Page[FlowPublic]:
    items, nxt = await _page(store, Resource.FLOW, w)
    return Page[FlowPublic](items=items, next_cursor=nxt)  # type: ignore[arg-type]
