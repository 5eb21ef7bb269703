"""The bots' audit trail in Azure Table Storage: append-only, idempotent, newest first.

Called by the audit routes (api/routes/audit.py) through `api.deps`. One table
(`<prefix>audit`); one partition per bot (`namespace:name`); the RowKey is the record's
time inverted (so a partition reads newest first), then its run and seq, the record's
id. A record is only ever created (`create_entity`): the service refuses a second
create of the same RowKey (`EntityAlreadyExists`), which is how a resent record is
counted as a duplicate and never overwrites anything. Outages become
`StorageUnavailableError` (503, retry) through tables.py's `_storage_call`.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableServiceClient

from spy_backend.models.audit import AuditRecord
from spy_backend.proxy import proxy_configured
from spy_backend.storage.tables import CONCURRENT_REQUESTS
from spy_backend.storage.tables import _storage_call as storage_call  # outage -> 503

AUDIT_TABLE = "audit"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INVERT = 10**16  # µs since 1970: 16 digits until the year 2286
CURSOR_PATTERN = r"^[0-9]{16}-[0-9A-Za-z._-]{1,64}-[0-9]{16}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def _micros(ts: datetime) -> int:
    delta = ts.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def time_key(ts: datetime) -> str:
    """Later times sort first."""
    return f"{_INVERT - _micros(ts):016d}"


def partition_key(bot: str) -> str:
    return bot.replace("/", ":")  # "/" is not allowed in keys


def row_key(record: AuditRecord) -> str:
    return f"{time_key(record.ts)}-{record.run}-{record.seq:016d}"


def valid_cursor(cursor: str) -> bool:
    return bool(_CURSOR.match(cursor))


class AuditStore:
    def __init__(self, connection_string: str, prefix: str, timeout: float = 3.0) -> None:
        self._timeout = timeout
        self._name = f"{prefix}{AUDIT_TABLE}"
        self._service = TableServiceClient.from_connection_string(
            connection_string,
            retry_total=1,
            retry_backoff_factor=0.1,
            connection_timeout=min(10.0, timeout),
            read_timeout=timeout,
            use_env_settings=proxy_configured(),
        )
        self._concurrency = asyncio.Semaphore(CONCURRENT_REQUESTS)
        self._opened = False

    async def open(self) -> None:
        async with storage_call("create audit table", self._timeout):
            await self._service.create_table_if_not_exists(self._name)
        self._opened = True

    async def close(self) -> None:
        await self._service.close()

    async def append(self, records: list[AuditRecord]) -> tuple[int, int]:
        """Create each record not stored yet: (stored, duplicate). An outage raises
        StorageUnavailableError; what was created by then is a duplicate on a resend."""
        if not self._opened:
            await self.open()
        unique: dict[tuple[str, str], AuditRecord] = {}
        for record in records:
            unique.setdefault((partition_key(record.bot), row_key(record)), record)
        results = await asyncio.gather(
            *(self._create(pk, rk, r) for (pk, rk), r in unique.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        stored = sum(1 for created in results if created is True)
        return stored, len(records) - stored

    async def _create(self, pk: str, rk: str, record: AuditRecord) -> bool:
        entity = {
            "PartitionKey": pk,
            "RowKey": rk,
            "ts": record.ts.isoformat(),
            "run": record.run,
            "seq": str(record.seq),  # beyond Int32: kept as text
            "event": record.event,
            "record": record.text(),
        }
        table = self._service.get_table_client(self._name)
        async with self._concurrency:
            try:
                async with storage_call("create audit record", self._timeout):
                    await table.create_entity(entity)
            except ResourceExistsError:
                return False  # the same record, sent before: append-only, never updated
        return True

    async def read(
        self,
        bot: str,
        start: datetime | None,
        end: datetime | None,
        event: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One bot's records between start and end (inclusive), newest first."""
        if not self._opened:
            await self.open()
        params: dict[str, Any] = {"pk": partition_key(bot)}
        text = "PartitionKey eq @pk"
        if end is not None:
            text += " and RowKey ge @lo"
            params["lo"] = time_key(end)
        if start is not None:
            text += " and RowKey lt @hi"
            params["hi"] = f"{int(time_key(start)) + 1:016d}"
        if cursor is not None:
            text += " and RowKey gt @after"
            params["after"] = cursor
        if event is not None:
            text += " and event eq @event"
            params["event"] = event
        table = self._service.get_table_client(self._name)
        rows: list[dict[str, Any]] = []
        async with self._concurrency, storage_call("read audit records", self._timeout):
            pages = table.query_entities(
                text, parameters=params, results_per_page=min(limit + 1, 1000)
            )
            async for entity in pages:
                rows.append(entity)
                if len(rows) > limit:
                    break
        more = len(rows) > limit
        rows = rows[:limit]
        items = [json.loads(row["record"]) for row in rows]
        return items, (rows[-1]["RowKey"] if more and rows else None)
