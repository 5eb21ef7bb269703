"""Anomaly rules. Each is independent, configurable and returns `Finding`s.

Who calls this: `spy_analytics.pipeline` (every enabled rule on every snapshot); tests
call single rules on constructed frames. Formulas and defaults: docs/analytics.md.
All comparisons use executable prices (bid/ask), so a price-bound finding is money on
the table net of the spread. Only usable quotes (data-quality screen passed) are seen.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .config import (
    IVResidualConfig,
    SpreadBlowoutConfig,
    VolOIConfig,
    VolumeZConfig,
)
from .frame import Frame
from .rule_base import (
    Finding,
    FloatArray,
    _describe,
    _finding,
    _usable_neighbour_median,
    severity_of,
)
from .types import AnomalyKind


def iv_residual(f: Frame, cfg: IVResidualConfig) -> list[Finding]:
    """z = (iv_mid - iv_fit) / sigma (sigma: `quote_iv.quote_ivs`). Out-of-the-money
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
        use, ref_use = _usable_neighbour_median(f, spread, cfg.neighbours)
        ref_nb[use] = ref_use
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


# The price-bound and static-arbitrage rules live in rules_bounds.py; callers use
# them as rules.parity etc.
from .rules_bounds import (  # noqa: E402
    butterfly,
    calendar,
    call_spread,
    early_exercise,
    fresh_quotes,
    parity,
)

__all__ = [
    "Finding",
    "butterfly",
    "calendar",
    "call_spread",
    "early_exercise",
    "fresh_quotes",
    "iv_residual",
    "parity",
    "severity_of",
    "spread_blowout",
    "vol_oi",
    "volume_z",
]
