"""`Frame`: every per-contract array the rules need, computed once per snapshot.

Who calls this: `spy_analytics.pipeline` builds it; `spy_analytics.rules` and
`spy_analytics.structure` read it. Building it runs the data-quality screen, implied
volatility of out-of-the-money mids, the smile fits, fitted-IV model prices and greeks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from .bsm import bsm_price
from .chain import ChainSnapshot
from .config import AnalyzerConfig
from .iv import implied_volatility_with_reason
from .quality import screen
from .smile import SmileFit, fit_smiles, scaled_moneyness

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class Frame:
    """Per-contract arrays (length n) and per-expiry-group arrays (length groups)."""

    snap: ChainSnapshot
    usable: BoolArray
    skipped: dict[str, int]
    t: FloatArray
    fwd: FloatArray
    k: FloatArray  # ln(K/F)
    z: FloatArray  # k / (0.2 sqrt t)
    group: IntArray  # expiry group of each contract
    group_expiry: list[str]  # YYYY-MM-DD per group
    group_t: FloatArray
    mid: FloatArray
    half: FloatArray  # half spread
    otm: BoolArray  # usable and out of the money (call K >= F, put K < F)
    iv: FloatArray  # mid IV of OTM quotes, NaN elsewhere
    iv_sigma: FloatArray  # IV uncertainty used as the residual scale
    fit_iv: FloatArray  # fitted smile IV at every contract (NaN if no fit)
    model: FloatArray  # BSM price at fit_iv with the American intrinsic floor
    gamma: FloatArray  # BSM gamma at fit_iv (0 where unavailable)
    smile: SmileFit
    expiry_str: NDArray[np.str_]
    #: effective continuous carry q = r - ln(F/S)/T of each contract (F: fwd)
    carry: FloatArray
    #: usable rows sorted by (expiry, right, strike) - verticals and butterflies
    by_strike: IntArray
    #: usable rows sorted by (expiry, strike, right) - put-call pairs
    by_pair: IntArray
    #: usable rows sorted by (right, strike, expiry) - calendars
    by_maturity: IntArray


def build_frame(snap: ChainSnapshot, cfg: AnalyzerConfig) -> Frame:
    n = len(snap)
    t = snap.time_to_expiry()
    usable, skipped = screen(snap, t, cfg.quality)
    spot, r = snap.spot, snap.rate
    strike = snap.strike
    call = snap.is_call
    days = snap.expiry.astype("datetime64[D]")
    uniq, group = np.unique(days, return_inverse=True)
    group = group.astype(np.intp).reshape(n)
    group_t = np.full(uniq.shape[0], np.nan)
    if n:
        group_t[group] = t
    use = np.flatnonzero(usable)
    orders = _orders(use, group, strike, call)
    with np.errstate(all="ignore"):
        t_safe = np.where(t > 0.0, t, np.nan)
        mid = 0.5 * (snap.bid + snap.ask)
        half = 0.5 * (snap.ask - snap.bid)
        fwd = spot * np.exp((r - snap.div_yield) * t_safe)
        if cfg.forward.implied_from_parity:
            fwd = _implied_forward(
                snap, mid, t_safe, fwd, group, orders["by_pair"], cfg.forward.max_deviation
            )
        # the carry every BSM call below uses: the forward as an effective yield
        q = r - np.log(fwd / spot) / t_safe
        k = np.log(strike / fwd)
        z = scaled_moneyness(k, t_safe)
    otm = usable & np.where(call, strike >= fwd, strike < fwd)

    iv = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    sel = np.flatnonzero(otm)
    if sel.size:
        iv_sel, _reason = implied_volatility_with_reason(
            mid[sel], spot, strike[sel], t[sel], r, q[sel], call[sel]
        )
        vega = _vega(spot, strike[sel], t[sel], r, q[sel], iv_sel)
        with np.errstate(all="ignore"):
            spread_vol = half[sel] / vega
        floor = cfg.iv_residual.model_floor
        sigma[sel] = np.sqrt(spread_vol * spread_vol + floor * floor)
        iv[sel] = iv_sel
    smile = fit_smiles(group, uniq.shape[0], z, iv, sigma)

    fit_iv = np.full(n, np.nan)
    model = np.full(n, np.nan)
    gamma = np.zeros(n)
    if use.size:
        fit_use = smile.evaluate(group[use], np.nan_to_num(z[use]))
        fit_iv[use] = fit_use
        vol = np.where(np.isfinite(fit_use) & (fit_use > 0.0), fit_use, np.nan)
        euro = bsm_price(spot, strike[use], t[use], r, q[use], vol, call[use])
        intrinsic = np.maximum(np.where(call[use], spot - strike[use], strike[use] - spot), 0.0)
        model[use] = np.maximum(euro, intrinsic)
        g = _gamma(spot, strike[use], t[use], r, q[use], vol)
        gamma[use] = np.where(np.isfinite(g), g, 0.0)
    return Frame(
        snap=snap,
        usable=usable,
        skipped=skipped,
        t=t,
        fwd=fwd,
        k=k,
        z=z,
        group=group,
        group_expiry=[str(d) for d in uniq],
        group_t=group_t,
        mid=mid,
        half=half,
        otm=otm,
        iv=iv,
        iv_sigma=sigma,
        fit_iv=fit_iv,
        model=model,
        gamma=gamma,
        smile=smile,
        expiry_str=np.array([str(d) for d in uniq], dtype=str)[group]
        if n
        else np.array([], dtype=str),
        carry=q,
        **orders,
    )


def _implied_forward(
    snap: ChainSnapshot,
    mid: FloatArray,
    t: FloatArray,
    fwd_model: FloatArray,
    group: IntArray,
    by_pair: IntArray,
    max_deviation: float,
) -> FloatArray:
    """Per-expiry forward from put-call parity at the strikes nearest the money.

    ``F = K + (C_mid - P_mid) e^{rT}`` for the (up to) 5 put/call pairs closest to the
    model forward; their median replaces ``S e^{(r-q)T}`` when it is within
    ``max_deviation`` of it (American early-exercise value is negligible at the money).
    This absorbs a mis-stated dividend yield or rate, which would otherwise split call
    and put IVs at the same strike.
    """
    s = snap
    a, b = by_pair[:-1], by_pair[1:]
    pair = (group[a] == group[b]) & (s.strike[a] == s.strike[b]) & ~s.is_call[a] & s.is_call[b]
    put, call = a[pair], b[pair]
    if put.size == 0:
        return fwd_model
    est = s.strike[call] + (mid[call] - mid[put]) * np.exp(s.rate * t[call])
    dist = np.abs(np.log(s.strike[call] / fwd_model[call]))
    g = group[call]
    order = np.lexsort((dist, g))
    g, est = g[order], est[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(g.size) - np.repeat(starts, np.diff(np.r_[starts, g.size]))
    keep = rank < 5
    g, est = g[keep], est[keep]
    bounds = np.r_[np.flatnonzero(np.r_[True, g[1:] != g[:-1]]), g.size]
    n_groups = int(group.max()) + 1
    f_group = np.full(n_groups, np.nan)
    for lo, hi in itertools.pairwise(bounds.tolist()):
        f_group[g[lo]] = np.median(est[lo:hi])
    f_imp = f_group[group]
    ok = np.isfinite(f_imp) & (np.abs(f_imp / fwd_model - 1.0) <= max_deviation)
    fwd: FloatArray = np.where(ok, f_imp, fwd_model)
    return fwd


def _orders(
    use: IntArray, group: IntArray, strike: FloatArray, call: BoolArray
) -> dict[str, IntArray]:
    """Sort orders of the usable rows via composite int64 keys (faster than lexsort)."""
    g = group[use].astype(np.int64)
    k = np.rint(strike[use] * 1000.0).astype(np.int64)  # < 2**32 for any listed strike
    c = call[use].astype(np.int64)
    keys = {
        "by_strike": (g * 2 + c) * 2**33 + k,
        "by_pair": (g * 2**33 + k) * 2 + c,
        "by_maturity": (c * 2**33 + k) * 2**12 + g,
    }
    return {name: use[np.argsort(key, kind="stable")] for name, key in keys.items()}


def _d1(
    spot: float, strike: FloatArray, t: FloatArray, r: float, q: FloatArray, vol: FloatArray
) -> tuple[FloatArray, FloatArray]:
    sd = vol * np.sqrt(t)
    d1: FloatArray = (np.log(spot / strike) + (r - q) * t) / sd + 0.5 * sd
    return d1, sd


def _vega(
    spot: float, strike: FloatArray, t: FloatArray, r: float, q: FloatArray, vol: FloatArray
) -> FloatArray:
    """``S e^{-qT} n(d1) sqrt(T)`` (Hull ch. 19)."""
    with np.errstate(all="ignore"):
        d1, _ = _d1(spot, strike, t, r, q, vol)
        out: FloatArray = spot * np.exp(-q * t - 0.5 * d1 * d1) * _INV_SQRT2PI * np.sqrt(t)
    return out


def _gamma(
    spot: float, strike: FloatArray, t: FloatArray, r: float, q: FloatArray, vol: FloatArray
) -> FloatArray:
    """``e^{-qT} n(d1) / (S sigma sqrt(T))`` (Hull ch. 19)."""
    with np.errstate(all="ignore"):
        d1, sd = _d1(spot, strike, t, r, q, vol)
        out: FloatArray = np.exp(-q * t - 0.5 * d1 * d1) * _INV_SQRT2PI / (spot * sd)
    return out


def cdf(x: FloatArray) -> FloatArray:
    out: FloatArray = ndtr(x)
    return out
