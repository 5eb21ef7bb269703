"""`Frame`: every per-contract array the rules need, computed once per snapshot.

Who calls this: `spy_analytics.pipeline` builds it; `spy_analytics.rules` and
`spy_analytics.structure` read it. Building it runs the data-quality screen, each
expiry's forward (dividends, then put-call parity; docs/analytics.md "Dividends and the
forward"), the spot each quote was priced off, implied volatility of out-of-the-money
mids, the smile fits, fitted-IV model prices with the early-exercise premium, greeks,
and the IV of in-the-money mids less that premium.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from .american import early_exercise_premium
from .bsm import bsm_price, d1_sd
from .chain import SECONDS_PER_YEAR, ChainSnapshot
from .config import AnalyzerConfig, BoundsConfig, ForwardConfig
from .dividends import last_dividend, pv_dividends
from .iv import implied_volatility
from .quality import screen
from .smile import SmileFit, fit_smiles, scaled_moneyness

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))
#: how far the vega at a quote's IV may exceed the vega at the smile (`_implied_vols`)
_VEGA_RATIO = 2.0
#: Seconds in a trading year (252 sessions of 6.5 hours): spot moves happen in them.
_TRADING_YEAR_S = 252 * 6.5 * 3600.0
#: Passes of the early-exercise correction of the implied forward.
_FORWARD_PASSES = 3


@dataclass(frozen=True, eq=False)
class Frame:
    """Per-contract arrays (length n) and per-expiry-group arrays (length groups)."""

    snap: ChainSnapshot
    usable: BoolArray
    skipped: dict[str, int]
    t: FloatArray
    #: forward of each contract's expiry as of the spot its quote was priced off
    fwd: FloatArray
    #: forward of each contract's expiry as of the snapshot's spot
    fwd_now: FloatArray
    k: FloatArray  # ln(K/F)
    z: FloatArray  # k / (0.2 sqrt t)
    group: IntArray  # expiry group of each contract
    group_expiry: list[str]  # YYYY-MM-DD per group
    group_t: FloatArray
    mid: FloatArray
    half: FloatArray  # half spread
    otm: BoolArray  # usable and out of the money (call K >= F, put K < F)
    iv: FloatArray  # mid IV (ITM: of the mid less the early-exercise premium), else NaN
    iv_sigma: FloatArray  # IV uncertainty used as the residual scale
    fit_iv: FloatArray  # fitted smile IV at every contract (NaN if no fit)
    model: FloatArray  # American model price at fit_iv (European + premium, >= intrinsic)
    gamma: FloatArray  # BSM gamma at fit_iv (0 where unavailable)
    smile: SmileFit
    expiry_str: NDArray[np.str_]
    #: effective continuous carry q = r - ln(F/S)/T of each contract's expiry
    carry: FloatArray
    #: spot the quote was priced off (the snapshot's spot history at the quote time)
    spot_q: FloatArray
    #: USD the quote's spot may be off by (no history: a move over the quote's age)
    spot_unc: FloatArray
    #: estimated early-exercise premium at fit_iv (0 where not estimated)
    eep: FloatArray
    #: |dV/dS| at fit_iv (1 where unknown), scales spot uncertainty into price
    abs_delta: FloatArray
    #: price change that brings each quote from its own spot to the snapshot's:
    #: delta (S - spot_q), 0 where unknown (static-arbitrage rules compare quotes)
    sync: FloatArray
    #: usable rows sorted by (expiry, right, strike) - verticals and butterflies
    by_strike: IntArray
    #: usable rows sorted by (expiry, strike, right) - put-call pairs
    by_pair: IntArray
    #: usable rows sorted by (right, strike, expiry) - calendars
    by_maturity: IntArray


def build_frame(snap: ChainSnapshot, cfg: AnalyzerConfig, prev_spot: float | None = None) -> Frame:
    """All per-contract arrays of ``snap``; ``prev_spot`` (the previous snapshot's
    spot) bounds how far the spot moved under quotes when the snapshot has no spot
    history (`_spot_uncertainty`)."""
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
        spot_q = snap.spot_at(snap.quote_ts)
        spot_unc = _spot_uncertainty(snap, cfg.bounds, prev_spot)
        expiry_epoch = snap.ts_epoch + t * SECONDS_PER_YEAR
        pvd = pv_dividends(snap.dividends, snap.ts_epoch, expiry_epoch, r)
        grow = np.exp((r - snap.div_yield) * t_safe)
        fwd_ref = (spot - pvd) * grow
        # a quote priced off another spot sees a forward moved one-for-one (grown)
        shift = (spot_q - spot) * grow
        if cfg.forward.implied_from_parity:
            fwd_ref = _implied_forward(
                snap,
                mid,
                t_safe,
                fwd_ref,
                shift,
                group,
                orders["by_pair"],
                cfg.forward,
                spot_q,
                expiry_epoch,
            )
        fwd = fwd_ref + shift
        q = r - np.log(fwd_ref / spot) / t_safe
        k = np.log(strike / fwd)
        z = scaled_moneyness(k, t_safe)
    otm = usable & np.where(call, strike >= fwd, strike < fwd)

    iv = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    zeros = np.zeros(n)
    _implied_vols(otm, mid, zeros, half, zeros, spot_unc, fwd, strike, t, r, call, cfg, iv, sigma)
    smile = fit_smiles(group, uniq.shape[0], z, iv, sigma)

    fit_iv = np.full(n, np.nan)
    model = np.full(n, np.nan)
    gamma = np.zeros(n)
    eep = np.zeros(n)
    abs_delta = np.ones(n)
    sync = np.zeros(n)
    if use.size:
        fit_use = smile.evaluate(group[use], np.nan_to_num(z[use]))
        fit_iv[use] = fit_use
        vol = np.where(np.isfinite(fit_use) & (fit_use > 0.0), fit_use, np.nan)
        fu, ku, tu, cu = fwd[use], strike[use], t[use], call[use]
        euro = bsm_price(fu, ku, tu, r, r, vol, cu)
        prem = _premium(snap, use, fu, ku, tu, vol, cu, spot_q[use], expiry_epoch[use])
        eep[use] = np.nan_to_num(prem)
        intrinsic = np.maximum(np.where(cu, spot_q[use] - ku, ku - spot_q[use]), 0.0)
        model[use] = np.maximum(euro + eep[use], intrinsic)
        with np.errstate(all="ignore"):
            d1, _sd = d1_sd(fu, ku, tu, r, r, vol)
            dlt = np.where(cu, ndtr(d1), ndtr(d1) - 1.0)
            # deep in the money a put at its exercise value moves one-for-one
            dlt = np.where(~cu & (model[use] <= intrinsic + 1e-9), -1.0, dlt)
        abs_delta[use] = np.where(np.isfinite(dlt), np.abs(dlt), 1.0)
        sync[use] = np.where(np.isfinite(dlt), dlt, 0.0) * (spot - spot_q[use])
        g = _gamma(spot, ku, tu, r, q[use], vol)
        gamma[use] = np.where(np.isfinite(g), g, 0.0)
    if cfg.iv_residual.test_itm:
        itm = usable & ~otm & np.isfinite(fit_iv)
        _implied_vols(
            itm, mid, eep, half, abs_delta, spot_unc, fwd, strike, t, r, call, cfg, iv, sigma,
            vega_vol=fit_iv,
        )  # fmt: skip
    return Frame(
        snap=snap,
        usable=usable,
        skipped=skipped,
        t=t,
        fwd=fwd,
        fwd_now=fwd_ref,
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
        spot_q=spot_q,
        spot_unc=spot_unc,
        eep=eep,
        abs_delta=abs_delta,
        sync=sync,
        **orders,
    )


def _implied_vols(
    rows: BoolArray,
    mid: FloatArray,
    eep: FloatArray,
    half: FloatArray,
    abs_delta: FloatArray,
    spot_unc: FloatArray,
    fwd: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    r: float,
    call: BoolArray,
    cfg: AnalyzerConfig,
    iv: FloatArray,
    sigma: FloatArray,
    vega_vol: FloatArray | None = None,
) -> None:
    """IV of ``mid - eep`` on the forward (Black: spot = F, yield = r) and its
    uncertainty ``sqrt((half/vega)^2 + floor^2 + (u eep/vega)^2 + (|delta| dS/vega)^2)``,
    written into ``iv`` and ``sigma`` at ``rows``.

    ``vega_vol`` (the fitted IV, in-the-money pass): vega is at most ``_VEGA_RATIO``
    times the vega at this vol. A deep in-the-money 0DTE quote whose forward is off by a
    few cents has an IV far above the smile, where its vega is 10-100x the vega at the
    smile: linearised there, a price error of cents looked like a 5-sigma IV residual.
    Within that ratio (every ordinary quote) the quote's own vega is kept."""
    sel = np.flatnonzero(rows)
    if sel.size == 0:
        return
    f, kk, tt = fwd[sel], strike[sel], t[sel]
    iv_sel = implied_volatility(mid[sel] - eep[sel], f, kk, tt, r, r, call[sel])
    with np.errstate(all="ignore"):
        d1, _sd = d1_sd(f, kk, tt, r, r, iv_sel)
        vega = f * np.exp(-r * tt - 0.5 * d1 * d1) * _INV_SQRT2PI * np.sqrt(tt)
        if vega_vol is not None:
            d1v, _sd = d1_sd(f, kk, tt, r, r, vega_vol[sel])
            vega_fit = f * np.exp(-r * tt - 0.5 * d1v * d1v) * _INV_SQRT2PI * np.sqrt(tt)
            vega = np.fmin(vega, _VEGA_RATIO * vega_fit)
        price_unc2 = (
            half[sel] ** 2
            + (cfg.iv_residual.eep_uncertainty * eep[sel]) ** 2
            + (abs_delta[sel] * spot_unc[sel]) ** 2
        )
        floor = cfg.iv_residual.model_floor
        sigma[sel] = np.sqrt(price_unc2 / (vega * vega) + floor * floor)
    iv[sel] = iv_sel


def _premium(
    snap: ChainSnapshot,
    use: IntArray,
    fwd: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    vol: FloatArray,
    call: BoolArray,
    spot_q: FloatArray,
    expiry_epoch: FloatArray,
) -> FloatArray:
    """Early-exercise premium of the usable rows (`spy_analytics.american`)."""
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
            fwd[j], strike[j], t[j], r, vol[j], call[j], div_t[j], div_fwd[j], amount[j]
        )
    return out


def _spot_uncertainty(
    snap: ChainSnapshot, cfg: BoundsConfig, prev_spot: float | None = None
) -> FloatArray:
    """How far (USD) the spot a quote was priced off may be from `spot_at` its time.

    With a spot history that covers the quote's time: 0 (the spot is known). Without
    one, ``sigmas`` standard deviations of the spot move over the quote's age at
    ``spot_vol`` (trading-time years of 252 x 6.5 h), and at least the move since the
    previous snapshot (a fast market is not a 3-sigma event for long); a quote of
    unknown age: 0 (the snapshot promises nothing more)."""
    with np.errstate(invalid="ignore"):
        age = np.maximum(snap.ts_epoch - snap.quote_ts, 0.0)
        covered = (
            (snap.quote_ts >= snap.spot_ts[0]) if snap.spot_ts.size else np.zeros(len(snap), bool)
        )
        move = cfg.spot_move_sigmas * cfg.spot_vol * snap.spot * np.sqrt(age / _TRADING_YEAR_S)
        if prev_spot is not None and np.isfinite(prev_spot):
            move = np.maximum(move, abs(snap.spot - prev_spot))
    out: FloatArray = np.where(covered | ~np.isfinite(age), 0.0, move)
    return out


def _implied_forward(
    snap: ChainSnapshot,
    mid: FloatArray,
    t: FloatArray,
    fwd_model: FloatArray,
    shift: FloatArray,
    group: IntArray,
    by_pair: IntArray,
    cfg: ForwardConfig,
    spot_q: FloatArray,
    expiry_epoch: FloatArray,
) -> FloatArray:
    """Per-expiry forward from put-call parity at the strikes nearest the money.

    ``F = K + (C_mid - P_mid) e^{rT}`` (less each pair's spot ``shift``, so quotes
    priced off different spots agree) for the ``cfg.pairs`` pairs closest to the model
    forward; their median replaces the model forward when within
    ``cfg.max_deviation`` of it. Near the money the early-exercise premia of the two
    legs are small and partly cancel; this absorbs a mis-stated dividend, yield or
    borrow, which would otherwise split call and put IVs at the same strike.
    """
    s = snap
    a, b = by_pair[:-1], by_pair[1:]
    pair = (group[a] == group[b]) & (s.strike[a] == s.strike[b]) & ~s.is_call[a] & s.is_call[b]
    put, call = a[pair], b[pair]
    if put.size == 0:
        return fwd_model
    est = s.strike[call] + (mid[call] - mid[put]) * np.exp(s.rate * t[call])
    est = est - 0.5 * (shift[call] + shift[put])
    dist = np.abs(np.log(s.strike[call] / fwd_model[call]))
    g = group[call]
    order = np.lexsort((dist, g))
    g, est = g[order], est[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(g.size) - np.repeat(starts, np.diff(np.r_[starts, g.size]))
    keep = rank < cfg.pairs
    g, est = g[keep], est[keep]
    c_rows, p_rows = call[order][keep], put[order][keep]
    f_group = _group_median(g, est, int(group.max()) + 1)
    # Then the legs' early-exercise premia (at the pair's own OTM-leg IV) come out of
    # C - P. Near the money they are small, except on an expiry that spans an ex-date,
    # where calls are worth exercising the night before (Black's value). The premium
    # is computed on the forward it corrects, so iterate to the fixed point (the bias
    # shrinks by about the call's delta per pass).
    pair_shift = 0.5 * (shift[c_rows] + shift[p_rows])
    k_pair, t_pair = s.strike[c_rows], t[c_rows]
    both = np.concatenate([c_rows, p_rows])
    grow = np.exp(s.rate * t_pair)
    for _ in range(_FORWARD_PASSES):
        f_pair = f_group[g] + pair_shift
        otm_call = k_pair >= f_pair
        otm_leg = np.where(otm_call, c_rows, p_rows)
        vol = implied_volatility(mid[otm_leg], f_pair, k_pair, t_pair, s.rate, s.rate, otm_call)
        prem = _premium(
            snap,
            both,
            np.concatenate([f_pair, f_pair]),
            np.concatenate([k_pair, k_pair]),
            np.concatenate([t_pair, t_pair]),
            np.concatenate([vol, vol]),
            s.is_call[both],
            np.concatenate([spot_q[c_rows], spot_q[p_rows]]),
            np.concatenate([expiry_epoch[c_rows], expiry_epoch[c_rows]]),
        )
        eep_diff = np.nan_to_num(prem[: c_rows.size] - prem[c_rows.size :])
        f_group = _group_median(g, est - eep_diff * grow, int(group.max()) + 1)
    f_imp = f_group[group]
    ok = np.isfinite(f_imp) & (np.abs(f_imp / fwd_model - 1.0) <= cfg.max_deviation)
    fwd: FloatArray = np.where(ok, f_imp, fwd_model)
    return fwd


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


def _gamma(
    spot: float, strike: FloatArray, t: FloatArray, r: float, q: FloatArray, vol: FloatArray
) -> FloatArray:
    """``e^{-qT} n(d1) / (S sigma sqrt(T))`` (Hull ch. 19)."""
    with np.errstate(all="ignore"):
        d1, sd = d1_sd(spot, strike, t, r, q, vol)
        out: FloatArray = np.exp(-q * t - 0.5 * d1 * d1) * _INV_SQRT2PI / (spot * sd)
    return out


def cdf(x: FloatArray) -> FloatArray:
    out: FloatArray = ndtr(x)
    return out
