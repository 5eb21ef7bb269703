"""Anomaly rules. Each is independent, configurable and returns `Finding`s.

Who calls this: `spy_analytics.pipeline` (every enabled rule on every snapshot); tests
call single rules on constructed frames. Formulas and defaults: docs/analytics.md.
All comparisons use executable prices (bid/ask), so a price-bound finding is money on
the table net of the spread. Only usable quotes (data-quality screen passed) are seen.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .config import (
    BoundsConfig,
    IVResidualConfig,
    SeverityBands,
    SpreadBlowoutConfig,
    StaticArbConfig,
    VolOIConfig,
    VolumeZConfig,
)
from .frame import Frame
from .types import AnomalyKind, Severity

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)


class Finding(NamedTuple):
    """One rule hit on one contract (row index into the snapshot)."""

    row: int
    kind: AnomalyKind
    severity: Severity
    score: float
    reason: str
    iv: float | None = None
    fitted_iv: float | None = None
    k: float | None = None


def severity_of(score: float, bands: SeverityBands) -> Severity | None:
    """LOW/MEDIUM/HIGH by the bands, None below ``bands.low``."""
    if not score >= bands.low:
        return None
    if score >= bands.high:
        return Severity.HIGH
    return Severity.MEDIUM if score >= bands.medium else Severity.LOW


def _describe(f: Frame, i: int) -> str:
    right = "C" if f.snap.is_call[i] else "P"
    return f"{f.expiry_str[i]} {f.snap.strike[i]:g}{right}"


def _opt(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _finding(
    f: Frame,
    i: int,
    kind: AnomalyKind,
    score: float,
    bands: SeverityBands,
    reason: str,
    with_iv: bool = True,
) -> Finding | None:
    """The Finding for contract ``i`` if ``score`` reaches a severity band, else None.
    With ``with_iv`` it carries the contract's IV, fitted IV and log-moneyness."""
    sev = severity_of(score, bands)
    if sev is None:
        return None
    if not with_iv:
        return Finding(i, kind, sev, score, reason)
    return Finding(
        i, kind, sev, score, reason,
        _opt(float(f.iv[i])), _opt(float(f.fit_iv[i])), _opt(float(f.k[i])),
    )  # fmt: skip


# --- volatility ------------------------------------------------------------------


def iv_residual(f: Frame, cfg: IVResidualConfig) -> list[Finding]:
    """z = (iv_mid - iv_fit) / sigma (sigma: `frame._implied_vols`). Out-of-the-money
    quotes always; in-the-money ones through the IV of their mid less the estimated
    early-exercise premium (``test_itm``), whose uncertainty is part of sigma."""
    if not cfg.enabled:
        return []
    with np.errstate(all="ignore"):
        resid = f.iv - f.fit_iv
        zscore = resid / f.iv_sigma
        tested = f.otm | (f.usable & cfg.test_itm)
        hit = (
            tested
            & (np.abs(zscore) >= cfg.bands.low)
            & (np.abs(resid) >= cfg.min_abs_residual)
            & (np.abs(f.z * 0.2 / np.maximum(f.fit_iv, 1e-9)) <= cfg.max_abs_z_moneyness)
        )
    out: list[Finding] = []
    for i in np.flatnonzero(hit):
        score = float(abs(zscore[i]))
        side = "above" if resid[i] > 0 else "below"
        reason = (
            f"IV {f.iv[i]:.1%} is {score:.1f} sigma {side} the fitted smile "
            f"({f.fit_iv[i]:.1%}) on {_describe(f, int(i))}"
        )
        if found := _finding(f, int(i), AnomalyKind.IV_RESIDUAL, score, cfg.bands, reason):
            out.append(found)
    return out


# --- activity --------------------------------------------------------------------


def vol_oi(f: Frame, cfg: VolOIConfig) -> list[Finding]:
    """Barchart-style unusual activity: volume/OI with volume, OI, price and DTE floors."""
    if not cfg.enabled:
        return []
    s = f.snap
    price = np.where(np.isfinite(s.last) & (s.last > 0.0), s.last, f.mid)
    with np.errstate(all="ignore"):
        ratio = s.volume / s.open_interest
        hit = (
            f.usable
            & (s.volume > cfg.min_volume)
            & (s.open_interest > cfg.min_open_interest)
            & (price > cfg.min_price)
            & (f.t * 365.0 >= cfg.min_dte_days)
            & (ratio >= cfg.bands.low)
        )
    out: list[Finding] = []
    for i in np.flatnonzero(hit):
        score = float(ratio[i])
        reason = (
            f"volume {s.volume[i]:,.0f} is {score:.1f}x open interest "
            f"{s.open_interest[i]:,.0f} at ${price[i]:.2f} on {_describe(f, int(i))}"
        )
        if found := _finding(f, int(i), AnomalyKind.VOL_OI, score, cfg.bands, reason):
            out.append(found)
    return out


def volume_z(
    f: Frame,
    cfg: VolumeZConfig,
    increment: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    samples: NDArray[np.int64],
) -> list[Finding]:
    """z = (dV - mean) / sqrt(max(var, mean + 1)) of the volume traded since the previous
    snapshot against the contract's EWMA baseline (Poisson floor on the variance)."""
    if not cfg.enabled:
        return []
    with np.errstate(all="ignore"):
        zscore = (increment - mean) / np.sqrt(np.maximum(var, mean + 1.0))
        hit = (
            f.usable
            & (samples >= cfg.min_samples)
            & (increment >= cfg.min_increment)
            & (zscore >= cfg.bands.low)
        )
    out: list[Finding] = []
    for i in np.flatnonzero(hit):
        score = float(zscore[i])
        reason = (
            f"{increment[i]:,.0f} contracts traded since the last snapshot, "
            f"{score:.1f} sigma above its baseline of {mean[i]:,.1f} on {_describe(f, int(i))}"
        )
        if found := _finding(f, int(i), AnomalyKind.VOLUME_Z, score, cfg.bands, reason):
            out.append(found)
    return out


def spread_blowout(
    f: Frame, cfg: SpreadBlowoutConfig, mean: FloatArray, samples: NDArray[np.int64]
) -> list[Finding]:
    """Spread against its strike neighbours and (once warm) its own EWMA, each ratio
    divided by its chain-wide median; score = the smaller (config docstring)."""
    if not cfg.enabled:
        return []
    spread = 2.0 * f.half
    floor = 2.0 * cfg.tick
    with np.errstate(all="ignore"):
        ref_nb = np.full(spread.shape, np.nan)
        use = np.flatnonzero(f.usable)
        ref_nb[use] = _neighbour_median(f, spread, use, cfg.neighbours)
        ref_nb = np.maximum(ref_nb, floor)
        ratio_nb = spread / ref_nb
        ratio_nb /= _chain_median(ratio_nb, f.usable & np.isfinite(ratio_nb))
        warm = f.usable & (samples >= cfg.min_samples) & np.isfinite(mean)
        ref_own = np.maximum(mean, floor)
        ratio_own = spread / ref_own
        ratio_own /= _chain_median(ratio_own, warm)
        score_all = np.where(warm, np.fmin(ratio_nb, ratio_own), ratio_nb)
        ref = np.where(warm, np.fmax(ref_nb, ref_own), ref_nb)
        hit = (
            f.usable
            & np.isfinite(score_all)
            & (spread - ref >= cfg.min_widening)
            & (score_all >= cfg.bands.low)
        )
    out: list[Finding] = []
    for i in np.flatnonzero(hit):
        score = float(score_all[i])
        reason = (
            f"bid-ask spread ${spread[i]:.2f} is {score:.1f}x normal (neighbouring strikes "
            f"${ref_nb[i]:.2f}"
            + (f", its own average ${mean[i]:.2f}" if warm[i] else "")
            + f") on {_describe(f, int(i))}"
        )
        kind = AnomalyKind.SPREAD_BLOWOUT
        if found := _finding(f, int(i), kind, score, cfg.bands, reason, with_iv=False):
            out.append(found)
    return out


def _chain_median(values: FloatArray, mask: NDArray[np.bool_]) -> float:
    """Median of ``values[mask]`` floored at 1 (1 when empty): the market-wide regime."""
    sel = values[mask]
    return max(float(np.median(sel)), 1.0) if sel.size else 1.0


# --- price bounds ----------------------------------------------------------------


def _deviation(f: Frame, rows: IntArray) -> FloatArray:
    """How far a quote's mid is off the model, in half spreads, after removing the
    model error its strike neighbours share (the median of their mid - model over
    two strikes each side, same expiry and right): a smooth model error (an early-
    exercise premium under- or overestimated, a smile slightly off) moves every leg of
    a spread alike, a mispriced leg stands out from its neighbours."""
    resid = f.mid - f.model
    local = _neighbour_median(f, resid, rows, 2)
    dev: FloatArray = np.abs(resid[rows] - np.nan_to_num(local)) / np.maximum(f.half[rows], 0.005)
    return np.nan_to_num(dev, nan=0.0)


def _neighbour_median(f: Frame, values: FloatArray, rows: IntArray, m: int) -> FloatArray:
    """Median of ``values`` over the ``m`` usable strikes on each side of each row
    (same expiry and right; NaN when there is none), for the given rows only."""
    order = f.by_strike
    pos = np.full(values.shape[0], -1, dtype=np.intp)
    pos[order] = np.arange(order.size)
    key = f.group[order] * 2 + f.snap.is_call[order]
    p = pos[rows]
    cols = []
    for off in range(1, m + 1):
        for sign in (-1, 1):
            src = p + sign * off
            ok = (p >= 0) & (src >= 0) & (src < order.size)
            src_c = np.clip(src, 0, max(order.size - 1, 0))
            same = ok & (key[src_c] == key[np.clip(p, 0, max(order.size - 1, 0))])
            cols.append(
                np.where(same, values[order[src_c]], np.nan) if order.size else src * np.nan
            )
    stack = np.sort(np.stack(cols), axis=0)
    count = np.sum(np.isfinite(stack), axis=0)
    lo = np.take_along_axis(stack, np.maximum((count - 1) // 2, 0)[None, :], axis=0)[0]
    hi = np.take_along_axis(stack, np.maximum(count // 2, 0)[None, :], axis=0)[0]
    out: FloatArray = np.where(count > 0, 0.5 * (lo + hi), np.nan)
    return out


def _blame(f: Frame, *candidates: IntArray) -> IntArray:
    """For each tuple of rows, the one whose quote deviates most from the model."""
    devs = np.stack([_deviation(f, c) for c in candidates])
    rows = np.stack(candidates)
    pick: IntArray = rows[np.argmax(devs, axis=0), np.arange(rows.shape[1])]
    return pick


def _bound_findings(
    f: Frame,
    kind: AnomalyKind,
    rows: IntArray,
    brk: FloatArray,
    tol: float,
    bands: SeverityBands,
    texts: list[str],
) -> list[Finding]:
    out: list[Finding] = []
    for j in range(rows.shape[0]):
        i = int(rows[j])
        score = float(brk[j] / tol)
        if found := _finding(f, i, kind, score, bands, f"{texts[j]} on {_describe(f, i)}"):
            out.append(found)
    return out


def fresh_quotes(f: Frame, cfg: BoundsConfig) -> NDArray[np.bool_]:
    """Contracts whose quote is recent enough to compare with the snapshot's spot.

    (snapshot ts - quote_ts) <= ``max_quote_age_s``; a contract without a quote time is
    excluded, unless the snapshot has no quote times at all (synthetic or replay files
    without them), in which case every contract passes.
    """
    s = f.snap
    if not np.isfinite(s.quote_ts).any():
        return np.ones(len(s), dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        age = s.ts_epoch - s.quote_ts
        fresh: NDArray[np.bool_] = np.isfinite(age) & (age <= cfg.max_quote_age_s)
    return fresh


def parity(f: Frame, cfg: BoundsConfig) -> list[Finding]:
    """American put-call bounds with discrete dividends (Hull §11.4; S - PV(D) = F e^{-rT}
    with F the expiry's forward, docs/analytics.md)::

        F e^{-rT} - K <= C - P <= S - K e^{-rT}

    at the snapshot's spot, each leg brought from the spot it was quoted off to it
    (`Frame.sync`: the two legs may be a second apart on a moving SPY).
    break_hi = (C_bid - P_ask) - upper - w,  break_lo = lower - (C_ask - P_bid) - w,
    ``w`` the legs' spot uncertainty (`_sync_unc`); fired at break/tol >= low.
    """
    if not cfg.parity_enabled:
        return []
    s = f.snap
    order = f.by_pair
    a, b = order[:-1], order[1:]
    pair = (f.group[a] == f.group[b]) & (s.strike[a] == s.strike[b]) & ~s.is_call[a] & s.is_call[b]
    fresh = fresh_quotes(f, cfg)
    pair &= fresh[a] & fresh[b]
    put, call = a[pair], b[pair]
    strike, t = s.strike[call], f.t[call]
    disc = np.exp(-s.rate * t)
    widen = _sync_unc(f, call, put)
    upper = s.spot - strike * disc
    lower = f.fwd_now[call] * disc - strike
    bid, ask = _synced(f)
    brk_hi = (bid[call] - ask[put]) - upper - widen
    brk_lo = lower - (ask[call] - bid[put]) - widen
    brk = np.maximum(brk_hi, brk_lo)
    hit = brk >= cfg.tolerance * cfg.bands.low
    if not hit.any():
        return []
    rows = _blame(f, call[hit], put[hit])
    texts = []
    for j in np.flatnonzero(hit):
        if brk_hi[j] >= brk_lo[j]:
            texts.append(
                f"put-call bound broken by ${brk_hi[j]:.2f}: C_bid - P_ask = "
                f"{bid[call[j]] - ask[put[j]]:.2f} > S - K e^(-rT) = {upper[j]:.2f}"
            )
        else:
            texts.append(
                f"put-call bound broken by ${brk_lo[j]:.2f}: C_ask - P_bid = "
                f"{ask[call[j]] - bid[put[j]]:.2f} < S - PV(div) - K = {lower[j]:.2f}"
            )
    return _bound_findings(f, AnomalyKind.PARITY, rows, brk[hit], cfg.tolerance, cfg.bands, texts)


def early_exercise(f: Frame, cfg: BoundsConfig) -> list[Finding]:
    """American bounds at the quote's spot ``S`` and forward ``F``::

        ask >= max(intrinsic, e^{-rT} (F - K) call | e^{-rT} (K - F) put, 0)
        bid <= S (call) | K (put)

    break = lower - ask - w, or bid - upper - w, with ``w = |delta| x spot uncertainty``.
    The forward carries the discrete dividends, so a call just before an ex-date (worth
    about S - K, exercised tonight) and a put (worth at least K e^{-rT} - (S - PV(D)))
    are both inside their bounds.
    """
    if not cfg.early_exercise_enabled:
        return []
    s = f.snap
    rows = np.flatnonzero(f.usable & fresh_quotes(f, cfg))
    call = s.is_call[rows]
    spot, strike, t = f.spot_q[rows], s.strike[rows], f.t[rows]
    disc = np.exp(-s.rate * t)
    fwd_lower = np.where(call, 1.0, -1.0) * disc * (f.fwd[rows] - strike)
    intrinsic = np.where(call, spot - strike, strike - spot)
    lower = np.maximum(np.maximum(intrinsic, fwd_lower), 0.0)
    upper = np.where(call, spot, strike)
    widen = f.abs_delta[rows] * f.spot_unc[rows]
    brk_lo = lower - s.ask[rows] - widen
    brk_hi = s.bid[rows] - upper - widen
    brk = np.maximum(brk_lo, brk_hi)
    hit = brk >= cfg.tolerance * cfg.bands.low
    texts = [
        (
            f"ask ${s.ask[rows[j]]:.2f} is ${brk_lo[j]:.2f} below the exercise value "
            f"${lower[j]:.2f}"
            if brk_lo[j] >= brk_hi[j]
            else f"bid ${s.bid[rows[j]]:.2f} is ${brk_hi[j]:.2f} above the upper bound "
            f"${upper[j]:.2f}"
        )
        for j in np.flatnonzero(hit)
    ]
    return _bound_findings(
        f, AnomalyKind.EARLY_EXERCISE, rows[hit], brk[hit], cfg.tolerance, cfg.bands, texts
    )


def _synced(f: Frame) -> tuple[FloatArray, FloatArray]:
    """Bid and ask moved from each quote's own spot to the snapshot's (`Frame.sync`):
    legs quoted a second apart on a moving SPY are compared as of one spot."""
    return f.snap.bid + f.sync, f.snap.ask + f.sync


def _sync_unc(f: Frame, *legs: IntArray) -> FloatArray:
    """What the legs' spots are not known to within, in USD (|delta| x spot_unc)."""
    total: FloatArray = np.zeros(legs[0].shape[0])
    for x in legs:
        total += f.abs_delta[x] * f.spot_unc[x]
    return total


def call_spread(f: Frame, cfg: StaticArbConfig) -> list[Finding]:
    """Vertical spreads between adjacent strikes K1 < K2 (same expiry and right)::

    calls: C_bid(K2) - C_ask(K1) (monotone)   C_bid(K1) - C_ask(K2) - (K2 - K1) (slope)
    puts:  P_bid(K1) - P_ask(K2) (monotone)   P_bid(K2) - P_ask(K1) - (K2 - K1) (slope)
    """
    if not cfg.call_spread_enabled:
        return []
    s = f.snap
    order = f.by_strike
    lo, hi = order[:-1], order[1:]
    same = (f.group[lo] == f.group[hi]) & (s.is_call[lo] == s.is_call[hi])
    lo, hi = lo[same], hi[same]
    call = s.is_call[lo]
    width = s.strike[hi] - s.strike[lo]
    bid, ask = _synced(f)
    mono = np.where(call, bid[hi] - ask[lo], bid[lo] - ask[hi])
    slope = np.where(call, bid[lo] - ask[hi], bid[hi] - ask[lo]) - width
    brk = np.maximum(mono, slope) - _sync_unc(f, lo, hi)
    hit = brk >= cfg.tolerance * cfg.bands.low
    if not hit.any():
        return []
    rows = _blame(f, lo[hit], hi[hit])
    texts = [
        (
            f"vertical spread {s.strike[lo[j]]:g}/{s.strike[hi[j]]:g} "
            + (
                f"not monotone by ${mono[j]:.2f} at bid/ask"
                if mono[j] >= slope[j]
                else f"worth ${slope[j]:.2f} more than its width at bid/ask"
            )
        )
        for j in np.flatnonzero(hit)
    ]
    return _bound_findings(
        f, AnomalyKind.CALL_SPREAD, rows, brk[hit], cfg.tolerance, cfg.bands, texts
    )


def butterfly(f: Frame, cfg: StaticArbConfig) -> list[Finding]:
    """Convexity over consecutive strikes K1 < K2 < K3 (same expiry and right)::

    break = bid(K2) - [w1 ask(K1) + w3 ask(K3)],  w1 = (K3-K2)/(K3-K1), w3 = (K2-K1)/(K3-K1)
    """
    if not cfg.butterfly_enabled:
        return []
    s = f.snap
    order = f.by_strike
    a, b, c = order[:-2], order[1:-1], order[2:]
    same = (
        (f.group[a] == f.group[c])
        & (f.group[a] == f.group[b])
        & (s.is_call[a] == s.is_call[c])
        & (s.is_call[a] == s.is_call[b])
    )
    a, b, c = a[same], b[same], c[same]
    k1, k2, k3 = s.strike[a], s.strike[b], s.strike[c]
    w1 = (k3 - k2) / (k3 - k1)
    w3 = (k2 - k1) / (k3 - k1)
    bid, ask = _synced(f)
    brk = bid[b] - (w1 * ask[a] + w3 * ask[c]) - _sync_unc(f, a, b, c)
    hit = brk >= cfg.tolerance * cfg.bands.low
    if not hit.any():
        return []
    rows = _blame(f, b[hit], a[hit], c[hit])
    texts = [
        f"butterfly {k1[j]:g}/{k2[j]:g}/{k3[j]:g} not convex by ${brk[j]:.2f} at bid/ask"
        for j in np.flatnonzero(hit)
    ]
    return _bound_findings(
        f, AnomalyKind.BUTTERFLY, rows, brk[hit], cfg.tolerance, cfg.bands, texts
    )


def calendar(f: Frame, cfg: StaticArbConfig) -> list[Finding]:
    """American options: same strike and right, consecutive expiries T1 < T2::

    break = bid(T1) - ask(T2)   (the longer option is worth at least the shorter)
    """
    if not cfg.calendar_enabled:
        return []
    s = f.snap
    order = f.by_maturity
    near, far = order[:-1], order[1:]
    same = (s.strike[near] == s.strike[far]) & (s.is_call[near] == s.is_call[far])
    near, far = near[same], far[same]
    if s.context_expiries:
        # a detector shard: a pair is checked by the shard that owns its near leg (the
        # far leg may be the context expiry after it), so each adjacent pair once
        own = ~np.isin(f.expiry_str[near], sorted(s.context_expiries))
        near, far = near[own], far[own]
    bid, ask = _synced(f)
    brk = bid[near] - ask[far] - _sync_unc(f, near, far)
    hit = brk >= cfg.tolerance * cfg.bands.low
    if not hit.any():
        return []
    rows = _blame(f, far[hit], near[hit])
    texts = [
        f"calendar {f.expiry_str[near[j]]}/{f.expiry_str[far[j]]} inverted by ${brk[j]:.2f} "
        f"at bid/ask"
        for j in np.flatnonzero(hit)
    ]
    return _bound_findings(f, AnomalyKind.CALENDAR, rows, brk[hit], cfg.tolerance, cfg.bands, texts)
