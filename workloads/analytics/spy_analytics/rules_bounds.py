"""Price-bound and static-arbitrage rules: put-call parity, early exercise, call
spreads, butterflies and calendars, each finding blamed on the leg off the smile.

Who calls this: `spy_analytics.pipeline` through `spy_analytics.rules` (re-exported
there). Formulas and defaults: docs/analytics.md.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .config import (
    BoundsConfig,
    SeverityBands,
    StaticArbConfig,
)
from .frame import Frame
from .rule_base import (
    Finding,
    FloatArray,
    IntArray,
    _describe,
    _finding,
    _neighbour_median,
)
from .types import AnomalyKind


def _deviation(f: Frame, resid: FloatArray, rows: IntArray) -> FloatArray:
    """How far a quote's mid is off the model, in half spreads, after removing the
    model error its strike neighbours share (the median of their mid - model over
    two strikes each side, same expiry and right): a smooth model error (an early-
    exercise premium under- or overestimated, a smile slightly off) moves every leg of
    a spread alike, a mispriced leg stands out from its neighbours. ``resid``: mid -
    model of every row."""
    local = _neighbour_median(f, resid, rows, 2)
    dev: FloatArray = np.abs(resid[rows] - np.nan_to_num(local)) / np.maximum(f.half[rows], 0.005)
    return np.nan_to_num(dev, nan=0.0)


def _blame(f: Frame, *candidates: IntArray) -> IntArray:
    """For each tuple of rows, the one whose quote deviates most from the model."""
    resid = f.mid - f.model
    rows = np.stack(candidates)
    # every candidate's deviation in one call (each row's is its own)
    devs = _deviation(f, resid, rows.ravel()).reshape(rows.shape)
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
    put, call = f.adjacent.pair_put, f.adjacent.pair_call
    fresh = fresh_quotes(f, cfg)
    both = fresh[put] & fresh[call]
    put, call = put[both], call[both]
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
    widen = f.sync_unc[rows]
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
    return f.bid_sync, f.ask_sync


def _sync_unc(f: Frame, *legs: IntArray) -> FloatArray:
    """What the legs' spots are not known to within, in USD (|delta| x spot_unc)."""
    total: FloatArray = np.zeros(legs[0].shape[0])
    for x in legs:
        total += f.sync_unc[x]
    return total


def call_spread(f: Frame, cfg: StaticArbConfig) -> list[Finding]:
    """Vertical spreads between adjacent strikes K1 < K2 (same expiry and right)::

    calls: C_bid(K2) - C_ask(K1) (monotone)   C_bid(K1) - C_ask(K2) - (K2 - K1) (slope)
    puts:  P_bid(K1) - P_ask(K2) (monotone)   P_bid(K2) - P_ask(K1) - (K2 - K1) (slope)
    """
    if not cfg.call_spread_enabled:
        return []
    s = f.snap
    lo, hi = f.adjacent.vertical_lo, f.adjacent.vertical_hi
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
    a, b, c = f.adjacent.fly_lo, f.adjacent.fly_mid, f.adjacent.fly_hi
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
    near, far = f.adjacent.calendar_near, f.adjacent.calendar_far
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
