"""Token buckets for the public queries: per client, a burst then a steady rate.

Pure decision code (the clock is an argument); `api.deps.query_rate_limit` picks the
client's key (the ingest token when a request carries the valid one, else the client
IP) and answers 429 with `Retry-After`. The defaults (Settings.query_rate_per_second,
query_burst) are far above what a dashboard does: 4 queries at load, one per
reconnect, one bots poll every 15 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_CLIENTS = 10_000  # buckets kept; full (idle) ones are forgotten first


@dataclass
class TokenBuckets:
    """`rate` tokens per second up to `burst`, one bucket per key; rate 0 disables."""

    rate: float
    burst: int
    clock: Callable[[], float]
    max_clients: int = MAX_CLIENTS
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def take(self, key: str) -> float:
        """Spend one token of `key`: 0.0 when allowed, else seconds until one is there."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_clients:
            self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled (the same as never seen), else the oldest."""
        full_after = self.burst / self.rate
        idle = [k for k, (_, at) in self._buckets.items() if now - at >= full_after]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) > self.max_clients:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for key in oldest[: len(self._buckets) - self.max_clients]:
                del self._buckets[key]


def retry_after(wait: float) -> str:
    """`Retry-After` in whole seconds, at least 1 (RFC 9110 10.2.3)."""
    return str(max(1, math.ceil(wait)))
