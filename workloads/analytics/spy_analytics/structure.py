"""Market-structure metrics: dealer gamma exposure, gamma flip, premium flow, P/C ratio.

Who calls this: `spy_analytics.pipeline`. Conventions (SqueezeMetrics, "Gamma
Exposure", 2017; SpotGamma): dealers are assumed long the calls and short the puts
that customers hold, so per contract

    GEX = sign * gamma * OI * multiplier * S^2 * 0.01      (USD per 1% move in spot)

with sign +1 for calls, -1 for puts. The gamma flip is the spot level, searched on a
grid of +-`flip_range` around spot with gammas re-evaluated at each level (fitted IV
held fixed), where net GEX changes sign; linear interpolation between grid points.

Premium flow: the volume traded since the previous snapshot, dV, at the last trade
price p is classified by the quote rule (Lee & Ready 1991): p >= mid is buyer-initiated
(+1, "at the ask"), p < mid seller-initiated (-1, "at the bid"); without a trade price
it is not counted. Gross premium = dV * p * multiplier per right (``call_premium``,
``put_premium``, >= 0); ``net_premium = signed calls - signed puts`` (bullish positive:
calls bought and puts sold add, calls sold and puts bought subtract).
``put_call_volume_ratio`` uses session volumes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .config import StructureConfig
from .frame import Frame

FloatArray = NDArray[np.float64]

_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))


def gamma_exposure(
    f: Frame, cfg: StructureConfig
) -> tuple[list[float], list[float], float, float | None, FloatArray]:
    """(strikes, GEX per strike, net GEX, flip level or None, net GEX on the flip grid).

    The last item (`flip_curve`) is additive across disjoint sets of expiries: a
    sharded detector publishes it so the backend can sum the shards' curves and find
    the flip of the whole chain with `flip_level` (`spy_analytics.shards`)."""
    s = f.snap
    use = f.usable & (s.open_interest > 0.0) & (f.gamma > 0.0)
    with np.errstate(all="ignore"):
        # never NaN/inf on the wire: a contribution that is not finite (a sentinel the
        # quality screen let through) is left out
        use &= np.isfinite(
            s.open_interest * cfg.contract_multiplier * f.gamma * s.spot * s.spot * 0.01
        )
    rows = np.flatnonzero(use)
    if rows.size == 0:
        return [], [], 0.0, None, np.zeros(cfg.flip_grid_points)
    sign = np.where(s.is_call[rows], 1.0, -1.0)
    weight = sign * s.open_interest[rows] * cfg.contract_multiplier
    gex = weight * f.gamma[rows] * s.spot * s.spot * 0.01
    all_strikes, rank = f.index.strike_groups
    present, inv = _groups_of(rank, all_strikes.size, rows)
    strikes = all_strikes[present]  # np.unique(strike[rows]), inv its inverse
    per_strike = np.bincount(inv.ravel(), weights=gex, minlength=strikes.shape[0])
    per_strike = np.where(np.isfinite(per_strike), per_strike, 0.0)
    net = _finite(float(per_strike.sum()))
    curve = _flip_curve(f, rows, weight, cfg)
    flip = flip_level(s.spot, curve, cfg.flip_range)
    return strikes.tolist(), per_strike.tolist(), net, flip, curve


def _groups_of(
    rank: NDArray[np.intp], n_groups: int, rows: NDArray[np.intp]
) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
    """Which of the contract set's ``n_groups`` groups (``rank``: each row's) the
    ``rows`` hold, and each row's place among those: `np.unique`'s values (as a mask of
    the set's sorted groups) and inverse on a subset, without sorting it."""
    r = rank[rows]
    present = np.zeros(n_groups, dtype=np.bool_)
    present[r] = True
    inv: NDArray[np.intp] = (np.cumsum(present) - 1)[r]
    return present, inv


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def flip_grid(spot: float, flip_range: float, points: int) -> FloatArray:
    """Spot levels of the flip search: ``spot * (1 + linspace(-range, range, points))``."""
    grid: FloatArray = spot * (1.0 + np.linspace(-flip_range, flip_range, points))
    return grid


def _flip_curve(
    f: Frame, rows: NDArray[np.intp], weight: FloatArray, cfg: StructureConfig
) -> FloatArray:
    """Net GEX at every level of `flip_grid` (zeros when no contract qualifies)."""
    s = f.snap
    keep = (f.t[rows] <= cfg.flip_max_t) & np.isfinite(f.fit_iv[rows])
    # only contracts with gamma somewhere on the grid matter (|ln K/S| within the grid
    # plus 5 standard deviations)
    reach = cfg.flip_range + 5.0 * f.fit_iv[rows] * np.sqrt(f.t[rows])
    keep &= np.abs(np.log(s.strike[rows] / s.spot)) <= reach
    rows, weight = rows[keep], weight[keep]
    if rows.size == 0:
        return np.zeros(cfg.flip_grid_points)
    # a call and a put of the same expiry and strike share gamma (same fitted vol):
    # net their open-interest weights first
    present, inv = _groups_of(f.index.pair_groups[1], f.index.pair_groups[0].size, rows)
    n_pairs = int(np.count_nonzero(present))
    first = np.full(n_pairs, rows.size, dtype=np.intp)  # each pair's first row
    np.minimum.at(first, inv, np.arange(rows.size))
    weight = np.bincount(inv, weights=weight, minlength=n_pairs).astype(np.float64)
    rows = rows[first]
    levels = flip_grid(s.spot, cfg.flip_range, cfg.flip_grid_points)
    net: FloatArray = _net_gamma(f, rows, weight, levels) * levels * levels * 0.01
    return net


def flip_level(spot: float, curve: FloatArray, flip_range: float) -> float | None:
    """The gamma flip: where ``curve`` (net GEX on `flip_grid`) changes sign, the
    crossing nearest to spot, linearly interpolated; None without a sign change."""
    net = np.asarray(curve, dtype=np.float64)
    if net.size < 2 or not np.isfinite(net).all():
        return None
    levels = flip_grid(spot, flip_range, net.size)
    sign = np.sign(net)
    cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if cross.size == 0:
        return None
    # the crossing nearest to spot
    mid_levels = 0.5 * (levels[cross] + levels[cross + 1])
    j = int(cross[np.argmin(np.abs(mid_levels - spot))])
    x0, x1, y0, y1 = levels[j], levels[j + 1], net[j], net[j + 1]
    flip = float(x0 - y0 * (x1 - x0) / (y1 - y0))
    return flip if math.isfinite(flip) else None


def _net_gamma(
    f: Frame, rows: NDArray[np.intp], weight: FloatArray, levels: FloatArray
) -> FloatArray:
    """``sum_i w_i gamma_i(L)`` at every spot level ``L`` (gamma as in `gamma` of
    `spy_analytics.model`, Hull ch. 19): with ``d1 = ln(L) / sd + c_i``,
    ``c_i = (-ln K + (r - q) t) / sd + sd / 2``, it is
    ``(1 / L) sum_i (w_i e^{-q t} / (sd sqrt(2 pi))) e^{-d1^2 / 2}``: a rows x levels
    exponential and one matrix-vector product. Rows whose terms are not finite are
    left out (zero weight)."""
    s = f.snap
    with np.errstate(all="ignore"):
        t = f.t[rows]
        q = f.carry[rows]
        sd = f.fit_iv[rows] * np.sqrt(t)
        inv_sd = 1.0 / sd
        c = (np.log(1.0 / s.strike[rows]) + (s.rate - q) * t) * inv_sd + 0.5 * sd
        w = weight * np.exp(-q * t) * inv_sd * _INV_SQRT2PI
        ok = np.isfinite(c) & np.isfinite(inv_sd) & np.isfinite(w)
        c, inv_sd, w = c[ok], inv_sd[ok], w[ok]
        # bsm.d1_sd's d1 split into a per-row constant and ln(L)/sd, so the whole
        # rows x levels grid is one outer product (the flip's hot path, issue 11)
        d1 = np.multiply.outer(inv_sd, np.log(levels))
        d1 += c[:, None]
        d1 *= d1
        d1 *= -0.5
        np.exp(d1, out=d1)
        out: FloatArray = (w @ d1) / levels
    return out


def premium_flow(
    f: Frame, increment: FloatArray, cfg: StructureConfig
) -> tuple[float, float, float, float, float | None, float, float]:
    """(gross call premium, gross put premium, signed call premium, signed put premium,
    put/call volume ratio, call session volume, put session volume)."""
    s = f.snap
    price = s.last
    has_price = np.isfinite(price) & (price > 0.0)
    traded = f.usable & np.isfinite(increment) & (increment > 0.0) & has_price
    side = np.where(price >= f.mid, 1.0, -1.0)
    with np.errstate(all="ignore"):
        gross = np.where(traded, increment * price, 0.0) * cfg.contract_multiplier
    gross = np.where(np.isfinite(gross), gross, 0.0)  # never NaN/inf on the wire
    signed = side * gross
    calls = s.is_call
    vol = np.where(f.usable & np.isfinite(s.volume), s.volume, 0.0)
    call_vol = float(vol[calls].sum())
    put_vol = float(vol[~calls].sum())
    ratio = put_vol / call_vol if call_vol > 0.0 else None
    return (
        _finite(float(gross[calls].sum())),
        _finite(float(gross[~calls].sum())),
        _finite(float(signed[calls].sum())),
        _finite(float(signed[~calls].sum())),
        ratio if ratio is not None and math.isfinite(ratio) else None,
        _finite(call_vol),
        _finite(put_vol),
    )
