"""Synthetic SPY feed for the demo and tests: ``spy_analytics.synthetic`` on a timer.

Used by ``service.Detector`` when ``SPY_SOURCE=synthetic``. Each snapshot advances the
seeded market one step (``interval`` seconds of simulated time, which is also the wall
time between snapshots unless ``interval`` is 0) and injects the configured labelled
anomalies, so the whole platform shows realistic output without a gateway. The
market starts at the wall-clock time of the first snapshot so timestamps look live.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

from spy_analytics import AnomalyKind, ChainSnapshot
from spy_analytics.synthetic import InjectedAnomaly, SyntheticConfig, SyntheticMarket

from spy_detector.sharding import ShardSpec, shard_snapshot

#: One injected anomaly of every kind per snapshot (the demo default).
EVERY_KIND: dict[AnomalyKind, int] = {kind: 1 for kind in AnomalyKind}


class SyntheticSource:
    name = "synthetic"

    def __init__(
        self,
        shard: ShardSpec | None = None,
        *,
        seed: int = 7,
        interval: float = 5.0,
        count: int = 0,
        inject: Mapping[AnomalyKind, int] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._shard = shard or ShardSpec()
        self._seed = seed
        self._interval = interval
        self._count = count
        self._inject = dict(EVERY_KIND if inject is None else inject)
        self._clock = clock
        self._closed = False
        self.labels: tuple[InjectedAnomaly, ...] = ()
        self.produced = 0

    def not_ready(self) -> list[str]:
        return []

    async def close(self) -> None:
        self._closed = True

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        config = dataclasses.replace(
            SyntheticConfig(),
            start=self._clock().replace(microsecond=0),
            interval_s=self._interval if self._interval > 0 else 60.0,
        )
        market = SyntheticMarket(self._seed, config)
        while not self._closed and (self._count == 0 or self.produced < self._count):
            if self.produced and self._interval > 0:
                await asyncio.sleep(self._interval)
            # ~10 ms for 20k contracts: cheap enough to run on the loop
            synthetic = market.next_snapshot(self._inject)
            self.labels = synthetic.labels
            self.produced += 1
            yield shard_snapshot(synthetic.snapshot, self._shard)
