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

log = logging.getLogger(__name__)


def purge_cutoff(now: datetime, retention_days: int) -> date:
    """First trading day that is kept: partitions before it are deleted."""
    return trading_day(now) - timedelta(days=retention_days)


async def purge_once(
    store: TableStore, now: datetime, retention_days: int, metrics: BackendMetrics | None = None
) -> int:
    deleted = await store.purge(purge_cutoff(now, retention_days))
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
) -> None:
    while True:
        try:
            await purge_once(store, clock(), retention_days, metrics)
        except StorageUnavailableError as exc:
            # Temporary: storage is down; the next pass retries.
            log.warning("retention purge skipped: storage unavailable", extra={"error": str(exc)})
        await asyncio.sleep(interval)
