"""Azure Table Storage access (azure-data-tables, async): the store the app holds.

Called by the ingest and query routes (through `api.deps`) and by the retention purge.
`TableStore` owns the service client and the limit of requests in flight; writes go
through `writes` (coalesced transactions), reads through `reads` (bounded pages), the
purge through `index` (the partition index). Every transport failure or 5xx from the
service becomes `StorageUnavailableError`, which the API answers with 503 so the
producer retries; duplicates are detected by the service (`EntityAlreadyExists`), so a
retried batch is stored once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from azure.data.tables.aio import TableClient, TableServiceClient

from spy_backend.models import PublicRecord, Resource
from spy_backend.proxy import proxy_configured
from spy_backend.storage.entities import to_entity
from spy_backend.storage.errors import (
    InsertOutcome,
    Rejection,
    StorageUnavailableError,
    rejection_reason,
    storage_call,
)
from spy_backend.storage.filters import FILTER_MAX_COMPARISONS, KEY_COMPARISONS
from spy_backend.storage.index import INDEX_TABLE, PartitionIndex
from spy_backend.storage.keys import Cursor
from spy_backend.storage.reads import (
    PAGE_MAX_PARTITIONS,
    PAGE_MAX_ROWS_READ,
    page_request,
    query_page,
)
from spy_backend.storage.writes import TRANSACTION_MAX_OPS, PartitionWriter, Written

CONCURRENT_REQUESTS = 8  # storage requests in flight per app instance (Azurite: one thread)
_storage_call = storage_call  # the name modules written before the split import

__all__ = [
    "CONCURRENT_REQUESTS",
    "FILTER_MAX_COMPARISONS",
    "INDEX_TABLE",
    "KEY_COMPARISONS",
    "PAGE_MAX_PARTITIONS",
    "PAGE_MAX_ROWS_READ",
    "TRANSACTION_MAX_OPS",
    "InsertOutcome",
    "Rejection",
    "StorageUnavailableError",
    "TableStore",
    "rejection_reason",
]


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
        self._concurrency = asyncio.Semaphore(CONCURRENT_REQUESTS)
        self._index = PartitionIndex(self._table, self._concurrency, timeout)
        self._writer = PartitionWriter(self._table, self._concurrency, timeout)
        self._opened = False

    def table_name(self, resource: Resource | str) -> str:
        return f"{self._prefix}{resource}"

    def _table(self, resource: Resource | str) -> TableClient:
        return self._service.get_table_client(self.table_name(resource))

    async def open(self) -> None:
        """Create the tables if needed (idempotent)."""
        for name in [*Resource, INDEX_TABLE]:
            async with storage_call("create table", self._timeout):
                await self._service.create_table_if_not_exists(self.table_name(name))
        self._opened = True

    async def _ensure_open(self) -> None:
        # The app may start while storage is down; tables are created on first use.
        if not self._opened:
            await self.open()

    async def close(self) -> None:
        await self._writer.close()
        await self._service.close()

    async def ping(self) -> bool:
        """True when the service answers (readiness)."""
        try:
            async with storage_call("ping", self._timeout):
                async for _ in self._service.list_tables(results_per_page=1):
                    break
        except StorageUnavailableError:
            return False
        return True

    async def insert_new(self, resource: Resource, records: list[PublicRecord]) -> InsertOutcome:
        """Create records that are not stored yet; report which were new or refused.

        Raises StorageUnavailableError on an outage, carrying the records that were
        created (`stored`) and those that may not have been (`failed`): every other
        partition's transactions complete whatever one partition's does.
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
        await self._index.register(resource, list(by_partition))
        pairs = [pair for rows in by_partition.values() for pair in rows.values()]
        futures = self._writer.submit(resource, [entity for entity, _ in pairs])
        waits = [(record, future) for (_, record), future in zip(pairs, futures, strict=True)]
        if waits:
            await asyncio.wait([future for _, future in waits])
        return _collect(outcome, waits)

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
        `filters.build_equals_filter` for what happens beyond the service's limit.
        """
        await self._ensure_open()
        req = page_request(resource, symbol, start, end, limit, cursor, equals)
        return await query_page(self._table(resource), req, self._timeout)

    async def purge(self, before: date) -> int:
        """Delete every partition whose trading day is before `before`; entities deleted."""
        await self._ensure_open()
        deleted = 0
        for resource in Resource:
            for pk in await self._index.older_than(resource, before):
                deleted += await self._delete_partition(resource, pk)
                await self._index.forget(resource, pk)
        return deleted

    async def _delete_partition(self, resource: Resource, pk: str) -> int:
        table = self._table(resource)
        deleted = 0
        while True:
            async with storage_call("purge scan", self._timeout * 4):
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
            async with storage_call("purge delete", self._timeout * 4):
                await table.submit_transaction([("delete", k) for k in keys])
            deleted += len(keys)


def _collect(
    outcome: InsertOutcome, waits: list[tuple[PublicRecord, asyncio.Future[Written]]]
) -> InsertOutcome:
    """Each record's fate into `outcome`; raise the first failure, naming what failed."""
    failed: list[PublicRecord] = []
    failure: BaseException | None = None
    for record, future in waits:
        exc = future.exception()
        if exc is not None:
            failure = failure or exc
            failed.append(record)
            continue
        written = future.result()
        if written.status == "stored":
            outcome.stored.append(record)
        elif written.status == "duplicate":
            outcome.duplicate += 1
        else:
            outcome.rejected.append(Rejection(record, written.reason))
    if isinstance(failure, StorageUnavailableError):
        raise StorageUnavailableError(str(failure), outcome.stored, failed) from failure
    if failure is not None:
        raise failure
    return outcome
