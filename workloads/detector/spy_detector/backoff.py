"""Exponential backoff with full jitter, shared by the publisher and the IBKR source.

Pure apart from the injected random source, so tests can make it deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2  # +/- fraction of the delay

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry ``attempt`` (0 = first retry): initial * factor**attempt,
        capped at ``maximum``, spread by +/- ``jitter`` so shards do not retry in step."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        spread = base * self.jitter * (2.0 * rand() - 1.0)
        return max(0.0, min(self.maximum, base + spread))
