"""Newest-first query endpoints: /anomalies, /signals, /market, /gex, /flow.

Every one takes a symbol, a time range (default: the last 24 hours), a page size and
the cursor of the previous page. What the spec allows is accepted: a range outside the
stored years is clipped to them, an inverted range is empty, and the work of one page
is bounded by the store (a few trading days, a thousand rows read), so a long range is
paged through instead of refused. Public, so rate-limited per client (429).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from spy_backend.api.deps import ClockDep, QueryRateLimit, StoreDep
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
from spy_backend.models.common import MAX_TS, MIN_TS, QueryExpiry, QueryTimestamp
from spy_backend.storage import Cursor, TableStore
from spy_backend.storage.keys import CURSOR_PATTERN

router = APIRouter(tags=["query"], dependencies=[QueryRateLimit])
DEFAULT_SPAN = timedelta(hours=24)
# Filter values per parameter: each is one comparison in the storage $filter (the
# service allows 15, three go to the keys); beyond that the store filters the rows it
# reads, within its per-page bound.
MAX_EXPIRIES = 12
_ERRORS: dict[int | str, dict[str, object]] = {
    429: {"model": Problem, "description": "Too many queries from this client; see Retry-After."},
    503: {"model": Problem, "description": "Storage unavailable."},
}


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
        QueryTimestamp | None, Query(description="Oldest ts (RFC 3339); default end-24h.")
    ] = None,
    end: Annotated[QueryTimestamp | None, Query(description="Newest ts; default now.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page (day and row it stopped at).",
        ),
    ] = None,
) -> Window:
    end = min(end or clock(), MAX_TS - timedelta(microseconds=1))
    start = max(start or end - DEFAULT_SPAN, MIN_TS)
    parsed = Cursor.decode(cursor) if cursor is not None else None  # the pattern checked it
    return Window(symbol, start, end, limit, parsed)


WindowDep = Annotated[Window, Depends(window)]


async def _page(
    store: TableStore,
    resource: Resource,
    w: Window,
    equals: dict[str, list[str]] | None = None,
) -> tuple[list[PublicRecord], str | None]:
    if w.start > w.end:
        return [], None  # nothing lies in an inverted range
    items, nxt = await store.query(
        resource, w.symbol, w.start, w.end, limit=w.limit, cursor=w.cursor, equals=equals
    )
    return items, nxt.encode() if nxt else None


@router.get("/anomalies", response_model=Page[AnomalyPublic], responses=_ERRORS)
async def list_anomalies(
    store: StoreDep,
    w: WindowDep,
    expiry: Annotated[list[QueryExpiry] | None, Query(max_length=MAX_EXPIRIES)] = None,
    kind: Annotated[list[AnomalyKind] | None, Query(max_length=len(AnomalyKind))] = None,
    severity: Annotated[list[Severity] | None, Query(max_length=len(Severity))] = None,
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
