"""Azure Table Storage access (azure-data-tables, async): the only module doing storage I/O.

Called by the ingest and query routes (through `api.deps`) and by the retention purge.
Every transport failure or 5xx from the service becomes `StorageUnavailableError`, which the
API answers with 503 so the producer retries; duplicates are detected by the service
(`EntityAlreadyExists`), so a retried batch is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient, TableServiceClient

from spy_backend.models import PublicRecord, Resource
from spy_backend.proxy import proxy_configured
from spy_backend.storage.entities import from_entity, to_entity
from spy_backend.storage.keys import (
    FIRST_ROW,
    Cursor,
    day_text,
    partition_day,
    partition_key,
    row_range,
    trading_day,
)

log = logging.getLogger(__name__)

TRANSACTION_MAX_OPS = 100  # service limit per transaction (one partition)
TRANSACTION_MAX_BYTES = 3_000_000  # service limit is 4 MiB per transaction payload
FILTER_MAX_COMPARISONS = 15  # service limit per $filter
KEY_COMPARISONS = 3  # PartitionKey eq, RowKey lower bound, RowKey upper bound
INDEX_TABLE = "partitions"
CONCURRENT_REQUESTS = 8  # storage requests in flight per app instance (Azurite: one thread)
# Work one query page may do, whatever its filters: partitions (trading days) scanned
# and rows read. A page that stops at a bound carries next_cursor (maybe with fewer
# than `limit` items), so a long sparse range costs the client pages, not us seconds.
PAGE_MAX_PARTITIONS = 8
PAGE_MAX_ROWS_READ = 1000


class StorageUnavailableError(Exception):
    """Storage could not be reached or failed server-side; the caller should retry.

    `stored` holds records that were durably created before the failure (so the caller
    can still broadcast them exactly once).
    """

    def __init__(self, message: str, stored: list[PublicRecord] | None = None) -> None:
        super().__init__(message)
        self.stored = stored or []


@dataclass(frozen=True)
class Rejection:
    """A record the service refused (a 400 or 413 about its entity): retrying cannot help."""

    record: PublicRecord
    reason: str


@dataclass
class InsertOutcome:
    stored: list[PublicRecord] = field(default_factory=list)
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def rejection_reason(exc: BaseException) -> str | None:
    """Why the service refused an entity it was sent, or None when `exc` is not that.

    Only 400 (EntityTooLarge, PropertyValueTooLarge, InvalidInput, ...) and 413
    (RequestBodyTooLarge) are about the data; other 4xx (403 bad key, 404 missing table)
    are deployment faults and must not be reported as the record's.
    """
    if not (isinstance(exc, HttpResponseError) and exc.status_code in (400, 413)):
        return None
    code = getattr(exc, "error_code", None)  # set by the SDK on some paths only
    if not code:
        code = (getattr(exc.response, "headers", None) or {}).get("x-ms-error-code")
    return f"storage refused the record ({getattr(code, 'value', code) or exc.status_code})"


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError | OSError):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return False


@asynccontextmanager
async def _storage_call(what: str, seconds: float) -> AsyncIterator[None]:
    """Bound a storage call in time and translate outages into StorageUnavailableError."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except BaseException as exc:
        # Only outages are retryable; anything else (a 4xx we did not expect) is a bug
        # and propagates with its traceback.
        if _is_unavailable(exc):
            raise StorageUnavailableError(f"{what}: {type(exc).__name__}") from exc
        raise


def _chunks(entities: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """Split one partition's entities into transactions within count and size limits."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for entity in entities:
        weight = sum(len(v) if isinstance(v, str | bytes) else 16 for v in entity.values())
        if chunk and (len(chunk) >= TRANSACTION_MAX_OPS or size + weight > TRANSACTION_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entity)
        size += weight
    if chunk:
        yield chunk


@dataclass(frozen=True)
class EqualsFilter:
    """Property filters of a query: in the $filter where they fit, else applied here.

    `text` is appended to the key comparisons with `params` as its parameters;
    `client_side` holds the properties left out of the $filter (tested on each row read).
    """

    text: str = ""
    params: dict[str, str] = field(default_factory=dict)
    client_side: dict[str, frozenset[str]] = field(default_factory=dict)
    comparisons: int = KEY_COMPARISONS

    def matches(self, entity: Mapping[str, Any]) -> bool:
        return all(entity.get(prop) in values for prop, values in self.client_side.items())


def build_equals_filter(equals: Mapping[str, Iterable[str]] | None) -> EqualsFilter:
    """OR within a property, AND across; at most FILTER_MAX_COMPARISONS in the $filter.

    Values are de-duplicated. While the key comparisons plus one per value exceed the
    service limit, the property with the most values (ties: by name) is filtered here
    instead: the answer is the same, the service just returns more rows to discard.
    """
    wanted = {prop: list(dict.fromkeys(values)) for prop, values in (equals or {}).items()}
    wanted = {prop: values for prop, values in wanted.items() if values}
    client_side: dict[str, frozenset[str]] = {}
    by_size = sorted(wanted, key=lambda prop: (-len(wanted[prop]), prop))
    while KEY_COMPARISONS + sum(len(v) for v in wanted.values()) > FILTER_MAX_COMPARISONS:
        prop = by_size.pop(0)
        client_side[prop] = frozenset(wanted.pop(prop))
    text, params = "", dict[str, str]()
    for i, (prop, values) in enumerate(sorted(wanted.items())):
        names = [f"p{i}_{j}" for j in range(len(values))]
        params.update(zip(names, values, strict=True))
        # The SDK substitutes `@name` only between spaces, hence "( ... )".
        text += " and ( " + " or ".join(f"{prop} eq @{n}" for n in names) + " )"
    comparisons = KEY_COMPARISONS + sum(len(v) for v in wanted.values())
    return EqualsFilter(text, params, client_side, comparisons)


class TableStore:
    """Records in one table per resource plus a partition index used by the purge."""

    def __init__(self, connection_string: str, prefix: str, timeout: float = 3.0) -> None:
        self._prefix = prefix
        self._timeout = timeout
        self._service = TableServiceClient.from_connection_string(
            connection_string,
            retry_total=1,
            retry_backoff_factor=0.1,
            connection_timeout=min(10.0, timeout),  # connects slowly on a loaded host too
            read_timeout=timeout,
            use_env_settings=proxy_configured(),
        )
        self._known_partitions: set[tuple[Resource, str]] = set()
        self._concurrency = asyncio.Semaphore(CONCURRENT_REQUESTS)
        self._opened = False

    def table_name(self, resource: Resource | str) -> str:
        return f"{self._prefix}{resource}"

    def _table(self, resource: Resource | str) -> TableClient:
        return self._service.get_table_client(self.table_name(resource))

    async def open(self) -> None:
        """Create the tables if needed (idempotent)."""
        for name in [*Resource, INDEX_TABLE]:
            async with _storage_call("create table", self._timeout):
                await self._service.create_table_if_not_exists(self.table_name(name))
        self._opened = True

    async def _ensure_open(self) -> None:
        # The app may start while storage is down; tables are created on first use.
        if not self._opened:
            await self.open()

    async def close(self) -> None:
        await self._service.close()

    async def ping(self) -> bool:
        """True when the service answers (readiness)."""
        try:
            async with _storage_call("ping", self._timeout):
                async for _ in self._service.list_tables(results_per_page=1):
                    break
        except StorageUnavailableError:
            return False
        return True

    async def insert_new(self, resource: Resource, records: list[PublicRecord]) -> InsertOutcome:
        """Create records that are not stored yet; report which were new or refused.

        Raises StorageUnavailableError (carrying the records already created) on an outage.
        """
        await self._ensure_open()
        outcome = InsertOutcome()
        by_partition: dict[str, dict[str, tuple[dict[str, Any], PublicRecord]]] = defaultdict(dict)
        for record in records:
            entity = to_entity(record)
            rows = by_partition[entity["PartitionKey"]]
            if entity["RowKey"] in rows:
                outcome.duplicate += 1  # the same record twice in one batch
            else:
                rows[entity["RowKey"]] = (entity, record)
        await self._register_partitions(resource, list(by_partition))
        jobs = []
        for rows in by_partition.values():
            entities = [entity for entity, _ in rows.values()]
            for chunk in _chunks(entities):
                jobs.append(self._create_chunk(resource, chunk, rows))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                failure = failure or result
                if isinstance(result, StorageUnavailableError):
                    outcome.stored.extend(result.stored)
            else:
                outcome.stored.extend(result.stored)
                outcome.duplicate += result.duplicate
                outcome.rejected.extend(result.rejected)
        if failure is not None:
            if isinstance(failure, StorageUnavailableError):
                raise StorageUnavailableError(str(failure), outcome.stored) from failure
            raise failure
        return outcome

    async def _create_chunk(
        self,
        resource: Resource,
        chunk: list[dict[str, Any]],
        rows: Mapping[str, tuple[dict[str, Any], PublicRecord]],
    ) -> InsertOutcome:
        table = self._table(resource)
        async with self._concurrency:
            if len(chunk) > 1:  # one entity: a plain insert is cheaper than a transaction
                try:
                    async with _storage_call("transaction", self._timeout):
                        await table.submit_transaction([("create", e) for e in chunk])
                    return InsertOutcome(stored=[rows[e["RowKey"]][1] for e in chunk])
                except TableTransactionError as exc:
                    code = getattr(exc, "error_code", None)
                    exists = code == "EntityAlreadyExists" or exc.status_code == 409
                    if not exists and rejection_reason(exc) is None:
                        raise
            # One entity, or the transaction failed on some rows (existing ones from a
            # retried batch, or one the service refuses): create one by one, so each
            # record is stored once and reported new exactly once, and a refused record
            # is reported alone while the others of its chunk are stored.
            outcome = InsertOutcome()
            for entity in chunk:
                record = rows[entity["RowKey"]][1]
                try:
                    async with _storage_call("create", self._timeout):
                        await table.create_entity(entity)
                    outcome.stored.append(record)
                except ResourceExistsError:
                    outcome.duplicate += 1
                except StorageUnavailableError as exc:
                    raise StorageUnavailableError(str(exc), outcome.stored) from exc
                except HttpResponseError as exc:
                    reason = rejection_reason(exc)
                    if reason is None:
                        raise
                    log.warning("storage refused a record", extra={"reason": reason})
                    outcome.rejected.append(Rejection(record, reason))
            return outcome

    async def _register_partitions(self, resource: Resource, pks: list[str]) -> None:
        """Record new partitions in the index before writing to them (the purge reads it).

        The index rows of one resource share a partition, so up to 100 of them go in one
        transaction, and the transactions run concurrently (a 1000-day batch is 10 calls).
        """
        new = [pk for pk in pks if (resource, pk) not in self._known_partitions]
        if not new:
            return
        index = self._table(INDEX_TABLE)

        async def upsert(chunk: list[str]) -> None:
            rows = [{"PartitionKey": resource.value, "RowKey": pk} for pk in chunk]
            async with self._concurrency, _storage_call("index", self._timeout):
                if len(rows) == 1:
                    await index.upsert_entity(rows[0])
                else:
                    await index.submit_transaction([("upsert", row) for row in rows])

        chunks = [new[i : i + TRANSACTION_MAX_OPS] for i in range(0, len(new), TRANSACTION_MAX_OPS)]
        await asyncio.gather(*(upsert(chunk) for chunk in chunks))
        self._known_partitions.update((resource, pk) for pk in new)

    async def query(
        self,
        resource: Resource,
        symbol: str,
        start: datetime,
        end: datetime,
        *,
        limit: int,
        cursor: Cursor | None = None,
        equals: Mapping[str, list[str]] | None = None,
    ) -> tuple[list[PublicRecord], Cursor | None]:
        """Newest-first records with start <= ts <= end, one partition range scan per day,
        at most PAGE_MAX_PARTITIONS days and PAGE_MAX_ROWS_READ rows read per call.

        `equals` maps a property to accepted values (OR within, AND across); see
        `build_equals_filter` for what happens beyond the service's comparison limit.
        """
        await self._ensure_open()
        low, high = row_range(start, end)
        equal = build_equals_filter(equals)
        items: list[PublicRecord] = []
        keys: list[tuple[str, str]] = []  # (day, RowKey) of each item
        last_read: tuple[str, str] | None = None
        rows_read = 0
        table = self._table(resource)
        day, first = trading_day(end), trading_day(start)
        if cursor is not None:
            # Days are compared as text: a cursor's day is never parsed.
            while day >= first and day_text(day) > cursor.day:
                day -= timedelta(days=1)
        scanned = 0
        while day >= first and len(items) <= limit:
            if scanned == PAGE_MAX_PARTITIONS or rows_read >= PAGE_MAX_ROWS_READ:
                # Bounded work per page: the next one starts at this day (or just after
                # the last row read in the previous one).
                resume = last_read if rows_read >= PAGE_MAX_ROWS_READ and last_read else None
                return items, Cursor(*(resume or (day_text(day), FIRST_ROW)))
            text = day_text(day)
            lower, op = low, "ge"
            if cursor is not None and text == cursor.day and cursor.rk >= low:
                lower, op = cursor.rk, "gt"
            flt = f"PartitionKey eq @pk and RowKey {op} @low and RowKey lt @high{equal.text}"
            # Rows filtered here are discarded: read full pages rather than `want`.
            want = PAGE_MAX_ROWS_READ if equal.client_side else limit + 1 - len(items)
            async with _storage_call("query", self._timeout * 4):
                pages = table.query_entities(
                    flt,
                    parameters={
                        "pk": partition_key(symbol, day),
                        "low": lower,
                        "high": high,
                        **equal.params,
                    },
                    results_per_page=min(want, 1000),
                )
                async for entity in pages:
                    rows_read += 1
                    last_read = (text, entity["RowKey"])
                    if equal.matches(entity):
                        items.append(from_entity(resource, entity))
                        keys.append(last_read)
                    if len(items) > limit or rows_read >= PAGE_MAX_ROWS_READ:
                        break
            scanned += 1
            if len(items) <= limit and rows_read >= PAGE_MAX_ROWS_READ:
                continue  # the bound check above returns the cursor
            day -= timedelta(days=1)
        if len(items) > limit:
            return items[:limit], Cursor(*keys[limit - 1])
        return items, None

    async def purge(self, before: date) -> int:
        """Delete every partition whose trading day is before `before`; entities deleted."""
        await self._ensure_open()
        deleted = 0
        index = self._table(INDEX_TABLE)
        for resource in Resource:
            async with _storage_call("purge list", self._timeout * 4):
                old = [
                    e["RowKey"]
                    async for e in index.query_entities(
                        "PartitionKey eq @r", parameters={"r": resource.value}
                    )
                    if partition_day(e["RowKey"]) < before
                ]
            for pk in old:
                deleted += await self._delete_partition(resource, pk)
                async with _storage_call("purge index", self._timeout):
                    # NotFound: purged concurrently by another replica.
                    with contextlib.suppress(ResourceNotFoundError):
                        await index.delete_entity(resource.value, pk)
                self._known_partitions.discard((resource, pk))
        return deleted

    async def _delete_partition(self, resource: Resource, pk: str) -> int:
        table = self._table(resource)
        deleted = 0
        while True:
            async with _storage_call("purge scan", self._timeout * 4):
                keys = []
                async for e in table.query_entities(
                    "PartitionKey eq @pk",
                    parameters={"pk": pk},
                    select=["PartitionKey", "RowKey"],
                    results_per_page=TRANSACTION_MAX_OPS,
                ):
                    keys.append({"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]})
                    if len(keys) == TRANSACTION_MAX_OPS:
                        break
            if not keys:
                return deleted
            async with _storage_call("purge delete", self._timeout * 4):
                await table.submit_transaction([("delete", k) for k in keys])
            deleted += len(keys)
