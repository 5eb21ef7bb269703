"""A short history of the underlying's price, so each option quote can be compared
with the spot at its own time (``ChainSnapshot.spot_at``).

Who calls this: ``sources/ibkr.py`` records every tick of the underlying and attaches
the last ``keep_s`` seconds to each snapshot. Pure: no I/O, the clock is the caller's.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray


class SpotHistory:
    """Ticks (epoch seconds, price) of the last ``keep_s`` seconds, oldest first."""

    def __init__(self, keep_s: float = 60.0, max_ticks: int = 5000) -> None:
        self.keep_s = keep_s
        self._ticks: deque[tuple[float, float]] = deque(maxlen=max_ticks)

    def __len__(self) -> int:
        return len(self._ticks)

    def add(self, when: float, price: float) -> None:
        """Record a tick; out-of-order or non-positive prices are ignored."""
        if not (price > 0.0) or (self._ticks and when < self._ticks[-1][0]):
            return
        if self._ticks and self._ticks[-1][1] == price:
            return  # an unchanged price adds nothing to a step function
        self._ticks.append((when, price))

    def arrays(self, now: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(times, prices) of the window ending at ``now``; the tick in force at the
        window's start is kept so the whole window is covered."""
        while len(self._ticks) > 1 and self._ticks[1][0] <= now - self.keep_s:
            self._ticks.popleft()
        times = np.array([t for t, _ in self._ticks], dtype=np.float64)
        prices = np.array([p for _, p in self._ticks], dtype=np.float64)
        return times, prices
