"""Implied volatility of quotes and its uncertainty, the scale of IV residuals.

Who calls this: `spy_analytics.frame`, twice per snapshot: out-of-the-money mids (the
smile's points) and in-the-money mids less the early-exercise premium (tested against
the smile by `rules.iv_residual`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .bsm import d1_sd
from .config import AnalyzerConfig
from .iv import implied_volatility

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))
#: how far the vega at a quote's IV may exceed the vega at the smile (`quote_ivs`)
_VEGA_RATIO = 2.0


class QuoteIVInputs(NamedTuple):
    """Per-contract arrays the quote IVs and their uncertainty are computed from."""

    mid: FloatArray
    half: FloatArray
    spot_unc: FloatArray
    fwd: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: float
    call: BoolArray
    cfg: AnalyzerConfig


def quote_ivs(
    x: QuoteIVInputs,
    rows: BoolArray,
    eep: FloatArray,
    abs_delta: FloatArray,
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
    mid, half, spot_unc, fwd, strike, t, r, call, cfg = x
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
