"""Per-contract intraday baselines carried from one snapshot to the next.

Who calls this: `spy_analytics.analyze` reads a `BaselineState` and returns an updated
one; the detector keeps the latest state in memory between snapshots (one per shard).
The state is immutable; contracts are aligned by `ChainSnapshot.contract_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class BaselineState:
    """EWMA baselines per contract, sorted by ``keys``.

    * ``last_volume`` – cumulative session volume at the previous snapshot;
    * ``inc_mean``/``inc_var``/``inc_n`` – EWMA mean/variance/count of the volume traded
      between snapshots (the volume_z baseline);
    * ``spread_mean``/``spread_n`` – EWMA of the bid-ask spread (spread_blowout).
    """

    keys: NDArray[np.int64]
    last_volume: FloatArray
    inc_mean: FloatArray
    inc_var: FloatArray
    inc_n: NDArray[np.int64]
    spread_mean: FloatArray
    spread_n: NDArray[np.int64]

    @classmethod
    def empty(cls) -> BaselineState:
        f = np.empty(0, dtype=np.float64)
        i = np.empty(0, dtype=np.int64)
        return cls(i, f, f, f, i, f, i)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def lookup(self, keys: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Index into this state for each key, and whether the key is present."""
        if len(self) == 0:
            return np.zeros(keys.shape, dtype=np.intp), np.zeros(keys.shape, dtype=np.bool_)
        idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, len(self) - 1)
        return idx, self.keys[idx] == keys
