"""Each expiry's forward, and early-exercise premia of snapshot rows.

Who calls this: `spy_analytics.frame` (the forward of every contract's expiry, the
American model prices). Formulas: docs/analytics.md "Dividends and the forward".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .american import early_exercise_premium
from .chain import SECONDS_PER_YEAR, ChainSnapshot
from .config import ForwardConfig
from .dividends import last_dividend, pv_dividends
from .iv import implied_volatility

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Passes of the early-exercise correction of the implied forward.
_FORWARD_PASSES = 3


class _Pairs(NamedTuple):
    """The put-call pairs nearest the money, at most ``pairs`` per expiry group."""

    group: IntArray  # expiry group of each pair (sorted)
    estimate: FloatArray  # K + (C - P) e^{rT}, less the pair's spot shift
    call: IntArray  # rows of the call legs
    put: IntArray  # rows of the put legs


def implied_forward(
    snap: ChainSnapshot,
    mid: FloatArray,
    t: FloatArray,
    fwd_model: FloatArray,
    shift: FloatArray,
    group: IntArray,
    put_call: tuple[IntArray, IntArray],
    cfg: ForwardConfig,
    spot_q: FloatArray,
    expiry_epoch: FloatArray,
) -> FloatArray:
    """Per-expiry forward from put-call parity at the strikes nearest the money;
    ``put_call``: the usable put-call pairs (`Adjacency.pair_put`, ``pair_call``).

    ``F = K + (C_mid - P_mid) e^{rT}`` (less each pair's spot ``shift``, so quotes
    priced off different spots agree) for the ``cfg.pairs`` pairs closest to the model
    forward; their median replaces the model forward when within
    ``cfg.max_deviation`` of it. Near the money the early-exercise premia of the two
    legs are small and partly cancel; this absorbs a mis-stated dividend, yield or
    borrow, which would otherwise split call and put IVs at the same strike.

    Then the legs' early-exercise premia (at the pair's own OTM-leg IV) come out of
    C - P. Near the money they are small, except on an expiry that spans an ex-date,
    where calls are worth exercising the night before (Black's value). The premium
    is computed on the forward it corrects, so iterate to the fixed point (the bias
    shrinks by about the call's delta per pass).
    """
    pairs = _nearest_pairs(snap, mid, t, fwd_model, shift, group, put_call, cfg.pairs)
    if pairs is None:
        return fwd_model
    n_groups = int(group.max()) + 1
    g, c_rows, p_rows = pairs.group, pairs.call, pairs.put
    f_group = _group_median(g, pairs.estimate, n_groups)
    pair_shift = 0.5 * (shift[c_rows] + shift[p_rows])
    k_pair, t_pair = snap.strike[c_rows], t[c_rows]
    both = np.concatenate([c_rows, p_rows])
    k2, t2 = np.concatenate([k_pair, k_pair]), np.concatenate([t_pair, t_pair])
    spot2 = np.concatenate([spot_q[c_rows], spot_q[p_rows]])
    epoch2 = np.concatenate([expiry_epoch[c_rows], expiry_epoch[c_rows]])
    grow = np.exp(snap.rate * t_pair)
    for _ in range(_FORWARD_PASSES):
        f_pair = f_group[g] + pair_shift
        otm_call = k_pair >= f_pair
        otm_leg = np.where(otm_call, c_rows, p_rows)
        r = snap.rate
        vol = implied_volatility(mid[otm_leg], f_pair, k_pair, t_pair, r, r, otm_call)
        f2, vol2 = np.concatenate([f_pair, f_pair]), np.concatenate([vol, vol])
        prem = premium(snap, both, f2, k2, t2, vol2, snap.is_call[both], spot2, epoch2)
        eep_diff = np.nan_to_num(prem[: c_rows.size] - prem[c_rows.size :])
        f_group = _group_median(g, pairs.estimate - eep_diff * grow, n_groups)
    f_imp = f_group[group]
    ok = np.isfinite(f_imp) & (np.abs(f_imp / fwd_model - 1.0) <= cfg.max_deviation)
    fwd: FloatArray = np.where(ok, f_imp, fwd_model)
    return fwd


def _nearest_pairs(
    snap: ChainSnapshot,
    mid: FloatArray,
    t: FloatArray,
    fwd_model: FloatArray,
    shift: FloatArray,
    group: IntArray,
    put_call: tuple[IntArray, IntArray],
    per_group: int,
) -> _Pairs | None:
    """The ``per_group`` put-call pairs of each expiry nearest the model forward (in
    ``|ln K/F|``)."""
    s = snap
    put, call = put_call
    if put.size == 0:
        return None
    est = s.strike[call] + (mid[call] - mid[put]) * np.exp(s.rate * t[call])
    est = est - 0.5 * (shift[call] + shift[put])
    dist = np.abs(np.log(s.strike[call] / fwd_model[call]))
    g = group[call]
    order = np.lexsort((dist, g))
    g = g[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(g.size) - np.repeat(starts, np.diff(np.r_[starts, g.size]))
    keep = order[rank < per_group]
    return _Pairs(group=group[call[keep]], estimate=est[keep], call=call[keep], put=put[keep])


def premium(
    snap: ChainSnapshot,
    use: IntArray,
    fwd: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    call: BoolArray,
    spot_q: FloatArray,
    expiry_epoch: FloatArray,
    euro: FloatArray | None = None,
) -> FloatArray:
    """Early-exercise premium of the usable rows (`spy_analytics.american`); ``euro``:
    their Black value on ``fwd`` when the caller has it."""
    r = snap.rate
    now = snap.ts_epoch
    t_last, amount, _before = last_dividend(snap.dividends, now, expiry_epoch)
    div_t = t_last / SECONDS_PER_YEAR
    with np.errstate(all="ignore"):
        ex_epoch = now + t_last
        pv_before = pv_dividends(snap.dividends, now, ex_epoch - 1.0, r)
        div_fwd = (spot_q - pv_before) * np.exp(r * div_t)
    # puts (but not far out of the money, where the premium is a fraction of a tick),
    # and calls that span an ex-date (exercised the night before it)
    with np.errstate(all="ignore"):
        far_otm_put = ~call & (np.log(strike / fwd) < -3.0 * vol * np.sqrt(t))
    need = (~call & ~far_otm_put) | np.isfinite(div_t)
    out = np.zeros(use.shape[0])
    j = np.flatnonzero(need)
    if j.size:
        out[j] = early_exercise_premium(
            fwd[j],
            strike[j],
            t[j],
            r,
            vol[j],
            call[j],
            div_t[j],
            div_fwd[j],
            amount[j],
            None if euro is None else euro[j],
        )
    return out


def _group_median(g: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    """Median of ``values`` per group id (``g`` sorted, a few values per group), NaN
    for absent groups: one padded sort instead of a median call per group."""
    out = np.full(n_groups, np.nan)
    if g.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, g.size])
    rank = np.arange(g.size) - np.repeat(starts, counts)
    table = np.full((starts.size, int(counts.max())), np.inf)
    table[np.repeat(np.arange(starts.size), counts), rank] = values
    table.sort(axis=1)
    rows = np.arange(starts.size)
    med = 0.5 * (table[rows, (counts - 1) // 2] + table[rows, counts // 2])
    out[g[starts]] = med
    return out
