"""The smile curves of the market-state record: each fitted expiry's points and fit.

Who calls this: `spy_analytics.analyze` (`MarketState.expiries`). Within the backend's
limits of a record (spy_backend.models.series): at most `MAX_EXPIRIES` expiries (the
nearest half, then evenly spaced over the rest of the term structure) and
`MAX_POINTS` quotes per curve (evenly spaced in moneyness order).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .contracts import restrict
from .frame import Frame
from .smile import Z_SCALE_VOL
from .types import SmileCurve

_FIT_POINTS = 25
#: Backend limits of a market-state record (spy_backend.models.series): at most 32
#: expiries per record and 256 smile points per curve.
MAX_EXPIRIES = 32
MAX_POINTS = 256


def smile_curves(f: Frame) -> tuple[SmileCurve, ...]:
    n_groups = len(f.group_expiry)
    fitted = np.flatnonzero(f.smile.ok & (f.group_t > 0.0))
    if fitted.size == 0:
        return ()
    if fitted.size > MAX_EXPIRIES:
        # the nearest half, then evenly spaced over the rest of the term structure
        near = MAX_EXPIRIES // 2
        rest = fitted[near:]
        pick = np.unique(np.round(np.linspace(0, rest.size - 1, MAX_EXPIRIES - near)))
        fitted = np.concatenate([fitted[:near], rest[pick.astype(np.intp)]])
    # every group's fit grid and ATM point evaluated in one vectorised call
    frac = np.linspace(0.0, 1.0, _FIT_POINTS)
    zs = f.smile.z_lo[fitted, None] + (f.smile.z_hi - f.smile.z_lo)[fitted, None] * frac
    zs = np.concatenate([zs, np.zeros((fitted.size, 1))], axis=1)
    gi = np.repeat(fitted, _FIT_POINTS + 1)
    fit = np.round(f.smile.evaluate(gi, zs.ravel()).reshape(fitted.size, -1), 6)
    ks = np.round(zs * Z_SCALE_VOL * np.sqrt(f.group_t[fitted])[:, None], 6)
    pts = _by_expiry_and_moneyness(f, f.otm & np.isfinite(f.iv))
    bounds = np.searchsorted(f.group[pts], np.arange(n_groups + 1))
    k_round = np.round(f.k[pts], 6)
    iv_round = np.round(f.iv[pts], 6)
    curves = []
    for row, g in enumerate(fitted.tolist()):
        lo, hi = bounds[g], bounds[g + 1]
        keep = np.arange(lo, hi)
        if keep.size > MAX_POINTS:
            keep = keep[np.unique(np.round(np.linspace(0, keep.size - 1, MAX_POINTS)).astype(int))]
        curves.append(
            SmileCurve(
                expiry=f.group_expiry[g],
                t=round(float(f.group_t[g]), 6),
                atm_iv=float(fit[row, -1]),
                points_k=tuple(k_round[keep].tolist()),
                points_iv=tuple(iv_round[keep].tolist()),
                fit_k=tuple(ks[row, :-1].tolist()),
                fit_iv=tuple(fit[row, :-1].tolist()),
            )
        )
    return tuple(curves)


def _by_expiry_and_moneyness(f: Frame, rows: NDArray[np.bool_]) -> NDArray[np.intp]:
    """The ``rows`` sorted by (expiry group, k), ties in row order (a stable sort).

    The out-of-the-money quotes of an expiry are its puts then its calls, each by
    strike, and k = ln(K/F) rises with the strike: so the usable rows' (expiry, right,
    strike) order restricted to them is that sort whenever (group, k) strictly rises
    along it (then the sort has one answer); otherwise they are sorted."""
    cand = restrict(f.adjacent.by_strike, rows)
    g, k = f.group[cand], f.k[cand]
    rises = (g[1:] > g[:-1]) | ((g[1:] == g[:-1]) & (k[1:] > k[:-1]))
    if rises.all():
        return cand
    pts = np.flatnonzero(rows)
    out: NDArray[np.intp] = pts[np.lexsort((f.k[pts], f.group[pts]))]
    return out
