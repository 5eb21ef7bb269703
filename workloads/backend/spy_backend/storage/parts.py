"""Storage of sharded detectors' GEX/flow parts until every shard's part is in.

Called by `spy_backend.shards` (ingest) and the retention purge. One table,
``<prefix>parts``: PartitionKey ``<resource>_<SYMBOL>_<inverted ts>`` holds one
snapshot time's parts (read in one single-partition query), RowKey the shard index.
Parts are upserted (a retried batch writes the same row) and the round is deleted
once merged; a round a shard never completed is deleted by the purge. Outages raise
`StorageUnavailableError` like `TableStore`.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient

from spy_backend.models import Resource
from spy_backend.proxy import proxy_configured
from spy_backend.storage.keys import inverted
from spy_backend.storage.tables import _storage_call

PARTS_TABLE = "parts"


def round_key(resource: Resource, symbol: str, ts: datetime) -> str:
    return f"{resource.value}_{symbol}_{inverted(ts)}"


class PartStore:
    """Parts of sharded records, keyed by (resource, symbol, ts) and shard index."""

    def __init__(self, connection_string: str, prefix: str, timeout: float = 3.0) -> None:
        self._timeout = timeout
        self._service = TableServiceClient.from_connection_string(
            connection_string,
            retry_total=1,
            retry_backoff_factor=0.1,
            connection_timeout=min(10.0, timeout),
            read_timeout=timeout,
            use_env_settings=proxy_configured(),
        )
        self._table = self._service.get_table_client(f"{prefix}{PARTS_TABLE}")
        self._opened = False

    async def _ensure_open(self) -> None:
        if not self._opened:
            async with _storage_call("create table", self._timeout):
                await self._service.create_table_if_not_exists(self._table.table_name)
            self._opened = True

    async def close(self) -> None:
        await self._service.close()

    async def put(
        self, resource: Resource, symbol: str, ts: datetime, index: int, part: dict[str, Any]
    ) -> None:
        """Store (or overwrite with the same content) shard ``index``'s part."""
        await self._ensure_open()
        entity = {
            "PartitionKey": round_key(resource, symbol, ts),
            "RowKey": f"{index:03d}",
            "ts": ts,
            "bodyz": zlib.compress(json.dumps(part).encode(), 6),
        }
        async with _storage_call("put part", self._timeout):
            await self._table.upsert_entity(entity)

    async def round(self, resource: Resource, symbol: str, ts: datetime) -> list[dict[str, Any]]:
        """Every part stored for this snapshot time, by shard index."""
        await self._ensure_open()
        parts = []
        async with _storage_call("read parts", self._timeout * 2):
            async for entity in self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": round_key(resource, symbol, ts)}
            ):
                parts.append(json.loads(zlib.decompress(bytes(entity["bodyz"]))))
        return parts

    async def drop(self, resource: Resource, symbol: str, ts: datetime, count: int) -> None:
        """Delete a merged round (a concurrent drop by another replica is fine)."""
        pk = round_key(resource, symbol, ts)
        for index in range(count):
            async with _storage_call("drop part", self._timeout):
                # NotFound: already dropped by another replica that merged it too.
                with contextlib.suppress(ResourceNotFoundError):
                    await self._table.delete_entity(pk, f"{index:03d}")

    async def purge(self, before: datetime) -> int:
        """Delete parts older than ``before`` (rounds a shard never completed)."""
        await self._ensure_open()
        deleted = 0
        async with _storage_call("purge parts", self._timeout * 4):
            old = [
                (e["PartitionKey"], e["RowKey"])
                async for e in self._table.query_entities(
                    "ts lt @before",
                    parameters={"before": before},
                    select=["PartitionKey", "RowKey"],
                )
            ]
        for pk, rk in old:
            async with _storage_call("purge part", self._timeout):
                with contextlib.suppress(ResourceNotFoundError):
                    await self._table.delete_entity(pk, rk)
                    deleted += 1
        return deleted
