"""Retention purge: a scheduled task deleting partitions older than `retention_days`.

Started by the app's lifespan; one pass per `purge_interval_seconds`. Deletion works by
whole partitions (trading days) listed in the partition index table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from spy_backend.metrics import BackendMetrics
from spy_backend.storage import StorageUnavailableError, TableStore
from spy_backend.storage.keys import trading_day
from spy_backend.storage.parts import PartStore

log = logging.getLogger(__name__)
PARTS_MAX_AGE = timedelta(hours=1)


def purge_cutoff(now: datetime, retention_days: int) -> date:
    """First trading day that is kept: partitions before it are deleted."""
    return trading_day(now) - timedelta(days=retention_days)


async def purge_once(
    store: TableStore,
    now: datetime,
    retention_days: int,
    metrics: BackendMetrics | None = None,
    parts: PartStore | None = None,
) -> int:
    deleted = await store.purge(purge_cutoff(now, retention_days))
    if parts is not None:
        # parts of a round a shard never completed: an hour is far past any merge
        deleted += await parts.purge(now - PARTS_MAX_AGE)
    if metrics is not None:
        metrics.purged.inc(deleted)
    log.info("retention purge", extra={"deleted": deleted, "retention_days": retention_days})
    return deleted


async def run_purge_loop(
    store: TableStore,
    clock: Callable[[], datetime],
    retention_days: int,
    interval: float,
    metrics: BackendMetrics,
    parts: PartStore | None = None,
) -> None:
    while True:
        try:
            await purge_once(store, clock(), retention_days, metrics, parts)
        except StorageUnavailableError as exc:
            # Temporary: storage is down; the next pass retries.
            log.warning("retention purge skipped: storage unavailable", extra={"error": str(exc)})
        await asyncio.sleep(interval)
