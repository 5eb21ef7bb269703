"""Data-quality screen: which quotes the pipeline may use, and why the others are skipped.

Who calls this: `spy_analytics.pipeline`. Bad data is never an anomaly and never an
exception: each skipped contract is counted under exactly one reason (the first that
applies, in the order of `REASONS`), plus the rows `ChainSnapshot.from_records` or
the file reader already dropped (``missing_field``, ``malformed_line``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .chain import ChainSnapshot
from .config import QualityConfig
from .contracts import ContractIndex, contract_index, restrict

#: Skip reasons, in the order they are tested.
REASONS = (
    "bad_spot",  # spot price not finite or <= 0: the whole snapshot is skipped
    "expired",  # time to expiry <= 0
    "bad_strike",  # strike not finite or <= 0
    "non_finite",  # bid or ask NaN/inf
    "bad_price",  # bid/ask above max_price, or last inf/negative/above max_price
    "negative",  # bid or ask < 0
    "crossed",  # bid > ask
    "zero_quote",  # bid == 0 or ask == 0 (one-sided or empty book)
    "locked",  # bid == ask
    "stale",  # quote older than QualityConfig.stale_after_s
    "bad_volume",  # volume or open interest inf/negative/above max_volume_oi (or NaN)
    "zero_oi",  # open interest == 0
    "duplicate",  # same (expiry, strike, right) seen earlier in the snapshot
)


def screen(
    snap: ChainSnapshot,
    t: NDArray[np.float64],
    cfg: QualityConfig,
    index: ContractIndex | None = None,
) -> tuple[NDArray[np.bool_], dict[str, int]]:
    """Usable-quote mask and skip counts by reason (only non-zero counts); ``index``:
    the snapshot's `ContractIndex` (looked up when not given)."""
    n = len(snap)
    counts: dict[str, int] = {k: int(v) for k, v in snap.rejected.items() if v}
    if not (np.isfinite(snap.spot) and snap.spot > 0.0):
        if n:
            counts["bad_spot"] = n
        return np.zeros(n, dtype=np.bool_), counts
    bid, ask = snap.bid, snap.ask
    with np.errstate(invalid="ignore"):
        age = snap.ts_epoch - snap.quote_ts
        tests = (
            ("expired", ~(t > 0.0)),
            ("bad_strike", ~(np.isfinite(snap.strike) & (snap.strike > 0.0))),
            ("non_finite", ~(np.isfinite(bid) & np.isfinite(ask))),
            ("bad_price", _bad_price(snap, cfg)),
            ("negative", (bid < 0.0) | (ask < 0.0)),
            ("crossed", bid > ask),
            ("zero_quote", (bid == 0.0) | (ask == 0.0)),
            ("locked", bid == ask),
            ("stale", age > cfg.stale_after_s),
            ("bad_volume", _bad_volume(snap.volume, cfg) | _bad_volume(snap.open_interest, cfg)),
            ("zero_oi", snap.open_interest == 0.0),
        )
    usable = np.ones(n, dtype=np.bool_)
    for name, bad in tests:
        hit = bad & usable
        c = int(np.count_nonzero(hit))
        if c:
            counts[name] = counts.get(name, 0) + c
            usable &= ~hit
    # duplicates among the remaining rows: keep the first occurrence (the key order is
    # stable, so within equal keys rows stay in snapshot order)
    index = index if index is not None else contract_index(snap)
    rows = restrict(index.key_order, usable)
    if rows.size:
        keys = index.keys[rows]
        dup = np.r_[False, keys[1:] == keys[:-1]]
        c = int(np.count_nonzero(dup))
        if c:
            counts["duplicate"] = c
            usable[rows[dup]] = False
    return usable, counts


def _bad_price(snap: ChainSnapshot, cfg: QualityConfig) -> NDArray[np.bool_]:
    """Prices no listed option trades at: IB's "unset" 1.797e308 and the like. A NaN
    ``last`` is simply "no trade yet" and is fine."""
    last = snap.last
    bad: NDArray[np.bool_] = (snap.bid > cfg.max_price) | (snap.ask > cfg.max_price)
    bad |= np.isinf(last) | (last < 0.0) | (last > cfg.max_price)
    return bad


def _bad_volume(values: NDArray[np.float64], cfg: QualityConfig) -> NDArray[np.bool_]:
    """Negative, infinite or above ``max_volume_oi`` always; NaN (missing) unless the
    config keeps it."""
    bad: NDArray[np.bool_] = np.isinf(values) | (values < 0.0) | (values > cfg.max_volume_oi)
    if cfg.skip_missing_volume_oi:
        bad |= np.isnan(values)
    return bad
