"""One query page: newest-first records in a time range, one partition range scan per
trading day, with the work of a page bounded whatever its filters.

Called by `TableStore.query` (the query routes). A page reads at most
PAGE_MAX_PARTITIONS days and PAGE_MAX_ROWS_READ rows; one that stops at a bound carries
a cursor (maybe with fewer than `limit` items), so a long sparse range costs the client
pages, not us seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from azure.data.tables.aio import TableClient

from spy_backend.models import PublicRecord, Resource
from spy_backend.storage.entities import from_entity
from spy_backend.storage.errors import storage_call
from spy_backend.storage.filters import EqualsFilter, build_equals_filter
from spy_backend.storage.keys import (
    FIRST_ROW,
    Cursor,
    day_text,
    partition_key,
    row_range,
    trading_day,
)

PAGE_MAX_PARTITIONS = 8
PAGE_MAX_ROWS_READ = 1000


@dataclass(frozen=True)
class PageRequest:
    resource: Resource
    symbol: str
    start: datetime
    end: datetime
    limit: int
    cursor: Cursor | None
    equal: EqualsFilter


@dataclass
class PageScan:
    """What one page found (up to limit + 1 items, to know whether more follow) and how
    much it read; the cursor says where the next page starts."""

    limit: int
    items: list[PublicRecord] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (day, RowKey) of each item
    last_read: tuple[str, str] | None = None
    rows_read: int = 0
    scanned: int = 0

    @property
    def full(self) -> bool:
        return len(self.items) > self.limit

    @property
    def read_enough(self) -> bool:
        return self.rows_read >= PAGE_MAX_ROWS_READ

    def bound_cursor(self, day: date) -> Cursor | None:
        """The cursor to stop at before scanning `day`, or None while within bounds: the
        row after the last one read, or the start of `day`."""
        if self.read_enough and self.last_read:
            return Cursor(*self.last_read)
        if self.scanned == PAGE_MAX_PARTITIONS or self.read_enough:
            return Cursor(day_text(day), FIRST_ROW)
        return None

    def result(self) -> tuple[list[PublicRecord], Cursor | None]:
        if self.full:
            return self.items[: self.limit], Cursor(*self.keys[self.limit - 1])
        return self.items, None


def first_day(req: PageRequest) -> date:
    """The newest trading day the page scans: the range's end, or the cursor's day."""
    day = trading_day(req.end)
    if req.cursor is not None:
        # Days are compared as text: a cursor's day is never parsed.
        while day >= trading_day(req.start) and day_text(day) > req.cursor.day:
            day -= timedelta(days=1)
    return day


async def scan_day(
    table: TableClient, req: PageRequest, page: PageScan, day: date, seconds: float
) -> None:
    """Read one day's rows in the range (after the cursor on its day) into `page`."""
    low, high = row_range(req.start, req.end)
    text = day_text(day)
    lower, op = low, "ge"
    if req.cursor is not None and text == req.cursor.day and req.cursor.rk >= low:
        lower, op = req.cursor.rk, "gt"
    flt = f"PartitionKey eq @pk and RowKey {op} @low and RowKey lt @high{req.equal.text}"
    params = {"pk": partition_key(req.symbol, day), "low": lower, "high": high}
    # Rows filtered here are discarded: read full pages rather than what is missing.
    want = PAGE_MAX_ROWS_READ if req.equal.client_side else req.limit + 1 - len(page.items)
    async with storage_call("query", seconds * 4):
        rows = table.query_entities(
            flt, parameters={**params, **req.equal.params}, results_per_page=min(want, 1000)
        )
        async for entity in rows:
            page.rows_read += 1
            page.last_read = (text, entity["RowKey"])
            if req.equal.matches(entity):
                page.items.append(from_entity(req.resource, entity))
                page.keys.append(page.last_read)
            if page.full or page.read_enough:
                break
    page.scanned += 1


async def query_page(
    table: TableClient, req: PageRequest, seconds: float
) -> tuple[list[PublicRecord], Cursor | None]:
    """Scan days from the newest down until the page is full, the range is done or a
    bound is reached (then the cursor resumes there)."""
    page = PageScan(req.limit)
    day, first = first_day(req), trading_day(req.start)
    while day >= first and not page.full:
        if (stop := page.bound_cursor(day)) is not None:
            return page.items, stop
        await scan_day(table, req, page, day, seconds)
        if not page.full and page.read_enough:
            continue  # the bound check returns the cursor after the last row read
        day -= timedelta(days=1)
    return page.result()


def page_request(
    resource: Resource,
    symbol: str,
    start: datetime,
    end: datetime,
    limit: int,
    cursor: Cursor | None,
    equals: Mapping[str, list[str]] | None,
) -> PageRequest:
    return PageRequest(resource, symbol, start, end, limit, cursor, build_equals_filter(equals))
