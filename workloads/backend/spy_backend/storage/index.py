"""The partition index: one row per (resource, partition) ever written, which the
retention purge lists instead of scanning every table.

Called by `TableStore.insert_new` (register before writing) and `TableStore.purge`
(list old partitions, forget purged ones). A partition is registered once per process:
later batches into it cost a set lookup, not a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from spy_backend.models import Resource
from spy_backend.storage.errors import storage_call
from spy_backend.storage.keys import partition_day
from spy_backend.storage.writes import TRANSACTION_MAX_OPS

INDEX_TABLE = "partitions"


class PartitionIndex:
    def __init__(
        self, table: Callable[[str], TableClient], gate: asyncio.Semaphore, timeout: float
    ) -> None:
        self._table = table
        self._gate = gate
        self._timeout = timeout
        self._known: set[tuple[Resource, str]] = set()

    async def register(self, resource: Resource, pks: list[str]) -> None:
        """Record new partitions in the index before writing to them (the purge reads it).

        The index rows of one resource share a partition, so up to 100 of them go in one
        transaction, and the transactions run concurrently (a 1000-day batch is 10 calls).
        """
        new = [pk for pk in pks if (resource, pk) not in self._known]
        if not new:
            return
        index = self._table(INDEX_TABLE)

        async def upsert(chunk: list[str]) -> None:
            rows = [{"PartitionKey": resource.value, "RowKey": pk} for pk in chunk]
            async with self._gate, storage_call("index", self._timeout):
                if len(rows) == 1:
                    await index.upsert_entity(rows[0])
                else:
                    await index.submit_transaction([("upsert", row) for row in rows])

        step = TRANSACTION_MAX_OPS
        await asyncio.gather(*(upsert(new[i : i + step]) for i in range(0, len(new), step)))
        self._known.update((resource, pk) for pk in new)

    async def older_than(self, resource: Resource, before: date) -> list[str]:
        """Partitions of `resource` whose trading day is before `before`."""
        index = self._table(INDEX_TABLE)
        async with storage_call("purge list", self._timeout * 4):
            return [
                e["RowKey"]
                async for e in index.query_entities(
                    "PartitionKey eq @r", parameters={"r": resource.value}
                )
                if partition_day(e["RowKey"]) < before
            ]

    async def forget(self, resource: Resource, pk: str) -> None:
        """Drop a purged partition from the index (and from what this process knows)."""
        async with storage_call("purge index", self._timeout):
            # NotFound: purged concurrently by another replica.
            with contextlib.suppress(ResourceNotFoundError):
                await self._table(INDEX_TABLE).delete_entity(resource.value, pk)
        self._known.discard((resource, pk))
