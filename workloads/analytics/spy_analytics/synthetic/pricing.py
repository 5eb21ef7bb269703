"""Quote construction for the synthetic market: $0.01 ticks and American monotonicity.

Who calls this: `spy_analytics.synthetic.market` and `.injection`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def quote_on_tick(mid: FloatArray, half: FloatArray) -> tuple[FloatArray, FloatArray]:
    bid = np.floor((mid - half) * 100.0 + 1e-9) / 100.0
    ask = np.ceil((mid + half) * 100.0 - 1e-9) / 100.0
    bid = np.maximum(bid, 0.0)
    ask = np.maximum(ask, bid + 0.01)
    return bid, ask


def cummax_in_maturity(price: FloatArray, strike: FloatArray, is_call: BoolArray) -> FloatArray:
    """American options: a later expiry is worth at least an earlier one (same K, right).
    Contracts are laid out expiry by expiry, so a stable sort by (right, strike) keeps
    maturity order within each (right, strike) run."""
    order = np.lexsort((strike, is_call))
    p = price[order]
    key = strike[order] * 2 + is_call[order]
    starts = np.r_[True, key[1:] != key[:-1]]
    run = np.cumsum(starts) - 1
    # cumulative max within runs: offset each run so a global cummax cannot leak across
    offset = run * 1e7
    cm = np.maximum.accumulate(p + offset) - offset
    out = np.empty_like(price)
    out[order] = cm
    return out
