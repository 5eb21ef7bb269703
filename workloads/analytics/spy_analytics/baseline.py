"""Per-contract intraday baselines carried from one snapshot to the next.

Who calls this: `spy_analytics.analyze` reads a `BaselineState` (`priors`) and returns
an updated one (`updated`); the detector keeps the latest state in memory between
snapshots (one per shard). The state is immutable; contracts are aligned by
`ChainSnapshot.contract_keys` (`ContractIndex.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .config import AnalyzerConfig
from .contracts import ContractIndex, restrict, search_keys
from .frame import Frame

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

    def lookup(
        self, keys: NDArray[np.int64], index: ContractIndex | None = None
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Index into this state for each key, and whether the key is present; with
        ``index`` (the contract set of ``keys``) the answer is reused while the state
        holds the same keys (`contracts.search_keys`)."""
        if len(self) == 0:
            return np.zeros(keys.shape, dtype=np.intp), np.zeros(keys.shape, dtype=np.bool_)
        if index is not None:
            return search_keys(self.keys, keys, index, "baseline")
        idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, len(self) - 1)
        return idx, self.keys[idx] == keys


class Priors(NamedTuple):
    """Each contract's baselines from the previous state (NaN/0 when unseen)."""

    inc_mean: FloatArray
    inc_var: FloatArray
    inc_n: NDArray[np.int64]
    spread_mean: FloatArray
    spread_n: NDArray[np.int64]


def priors(state: BaselineState, pos: NDArray[np.intp], known: NDArray[np.bool_], n: int) -> Priors:
    def prior(values: NDArray[Any], fill: float) -> FloatArray:
        if len(state) == 0:
            return np.full(n, fill)
        return np.where(known, values[pos], fill).astype(np.float64, copy=False)

    return Priors(
        inc_mean=prior(state.inc_mean, np.nan),
        inc_var=prior(state.inc_var, np.nan),
        inc_n=prior(state.inc_n, 0.0).astype(np.int64),
        spread_mean=prior(state.spread_mean, np.nan),
        spread_n=prior(state.spread_n, 0.0).astype(np.int64),
    )


def updated(
    f: Frame,
    index: ContractIndex,
    state: BaselineState,
    increment: FloatArray,
    prior: Priors,
    cfg: AnalyzerConfig,
) -> BaselineState:
    """EWMA update (winsorised at the LOW threshold once warm, so an anomaly does not
    become its own baseline) for usable contracts. The last session volume is kept for
    every contract with a valid volume (even when its quote is unusable), so the next
    increment always spans exactly one snapshot; unseen contracts carry over.
    Called by `spy_analytics.analyze` after the rules."""
    vol_ok = np.isfinite(f.snap.volume) & (f.snap.volume >= 0.0)
    # one row per contract key (the first), in key order: the stable key order
    # restricted to these rows, without a sort
    rows = restrict(index.key_order, vol_ok)
    if rows.size:
        k = index.keys[rows]
        rows = rows[np.r_[True, k[1:] != k[:-1]]]
    usable = f.usable[rows]
    with np.errstate(invalid="ignore"):
        m1, v1, n1 = _ewma_volume(rows, usable, increment, prior, cfg)
        sm1, sn1 = _ewma_spread(rows, usable, f.half, prior, cfg)
    new = BaselineState(
        keys=index.keys[rows],
        last_volume=f.snap.volume[rows],
        inc_mean=m1,
        inc_var=v1,
        inc_n=n1,
        spread_mean=sm1,
        spread_n=sn1,
    )
    today = int(np.datetime64(f.snap.ts.date().isoformat(), "D").astype(np.int64))
    return _merge_state(new, state, today, index)


def _ewma_volume(
    rows: NDArray[np.intp],
    usable: NDArray[np.bool_],
    increment: FloatArray,
    prior: Priors,
    cfg: AnalyzerConfig,
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """EWMA mean, variance and count of the volume increment (volume_z baseline)."""
    vz = cfg.volume_z
    n0 = prior.inc_n[rows]
    m0 = np.nan_to_num(prior.inc_mean[rows])
    v0 = np.nan_to_num(prior.inc_var[rows])
    x = increment[rows]
    cap = m0 + vz.bands.low * np.sqrt(np.maximum(v0, m0 + 1.0))
    x = np.where(n0 >= vz.min_samples, np.minimum(x, cap), x)
    alpha = np.maximum(vz.alpha, 1.0 / (n0 + 1.0))
    has = np.isfinite(x) & usable
    d = np.where(has, x - m0, 0.0)
    m1 = np.where(has, m0 + alpha * d, m0)
    v1 = np.where(has, (1.0 - alpha) * (v0 + alpha * d * d), v0)
    return m1, v1, n0 + has.astype(np.int64)


def _ewma_spread(
    rows: NDArray[np.intp],
    usable: NDArray[np.bool_],
    half: FloatArray,
    prior: Priors,
    cfg: AnalyzerConfig,
) -> tuple[FloatArray, NDArray[np.int64]]:
    """EWMA of the bid-ask spread and its count (spread_blowout baseline)."""
    sb = cfg.spread_blowout
    sn0 = prior.spread_n[rows]
    sm0 = np.nan_to_num(prior.spread_mean[rows])
    spread = 2.0 * half[rows]
    spread = np.where(sn0 >= sb.min_samples, np.minimum(spread, sm0 * sb.bands.low), spread)
    salpha = np.maximum(sb.alpha, 1.0 / (sn0 + 1.0))
    sm1 = np.where(usable, sm0 + salpha * (spread - sm0), sm0)
    return sm1, sn0 + usable.astype(np.int64)


def _merge_state(
    new: BaselineState, old: BaselineState, today: int, index: ContractIndex
) -> BaselineState:
    """``new`` (sorted by key) plus the contracts of ``old`` it does not hold, sorted
    by key; contracts that expired before ``today`` (days since epoch) leave the state
    (it does not grow for ever)."""
    if len(old) and len(new):
        keep = ~search_keys(new.keys, old.keys, index, "merge")[1]
    else:
        keep = np.ones(len(old), bool)
    fields = ("keys", "last_volume", "inc_mean", "inc_var", "inc_n", "spread_mean", "spread_n")
    carried = bool(keep.any())
    cols = {
        name: np.concatenate([getattr(new, name), getattr(old, name)[keep]])
        if carried
        else getattr(new, name)  # `updated` built these arrays for this state alone
        for name in fields
    }
    alive = cols["keys"] >= today * 10**10  # the expiry day (keys // 10**10) >= today
    if not alive.all():
        cols = {name: col[alive] for name, col in cols.items()}
    keys = cols["keys"]
    if carried or not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        cols = {name: col[order] for name, col in cols.items()}
    # else: ``new``'s keys alone, unique and in key order already (the sort is the identity)
    return BaselineState(**cols)
