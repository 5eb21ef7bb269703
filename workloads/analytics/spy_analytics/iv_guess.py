"""Initial guess of the implied-volatility solver: ``ln s`` by bilinear interpolation.

Who calls this: `spy_analytics.iv` (one guess per option, then one Householder step).
The table holds ``ln s`` (``s = sigma sqrt(T)``) on a grid of ``u = sqrt(|x|)`` and
``v = ln(-ln q)``, ``q = beta_otm / e^{-|x|/2}``, filled once per process by 80
bisection steps on the normalised out-of-the-money Black value; it is good to ~1e-4 in
``ln s`` (p99 4e-4) inside the grid, and the solver's safeguarded path takes the rest.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfcx

FloatArray = NDArray[np.float64]

_INV_SQRT2 = float(1.0 / np.sqrt(2.0))
_LN2 = float(np.log(2.0))
# Initial-guess table: u = sqrt(|x|) in [0, U_MAX], v = ln(-ln q) in [V_MIN, V_MAX].
_U_MAX = 2.0
_NU = 129
_V_MIN = -8.0
_V_MAX = 6.6
_NV = 293


def initial_guess(a: FloatArray, ln_beta: FloatArray) -> FloatArray:
    """Bilinear interpolation of ``ln s`` in the guess table, then ``e^{ln s}``.

    ``u = sqrt(a)``, ``v = ln(-ln q)`` with ``ln q = ln beta + a/2``; each cell's four
    corners are stored as the coefficients of ``c0 + c1 fv + fu (c2 + c3 fv)``, so
    one gather fetches them."""
    cells = _guess_cells()
    u = np.sqrt(a)
    u *= (_NU - 1) / _U_MAX
    np.minimum(u, _NU - 1.000001, out=u)
    v = np.multiply(a, -0.5)
    v -= ln_beta  # -ln q > 0
    np.fmax(v, 1e-300, out=v)
    np.log(v, out=v)
    v -= _V_MIN
    v *= (_NV - 1) / (_V_MAX - _V_MIN)
    np.clip(v, 0.0, _NV - 1.000001, out=v)
    iu = u.astype(np.intp)
    iv = v.astype(np.intp)
    u -= iu  # fraction within the cell
    v -= iv
    iu *= _NV
    iu += iv
    c = cells.take(iu, axis=0)
    ln_s = np.multiply(c[:, 3], v)
    ln_s += c[:, 2]
    ln_s *= u
    ln_s += c[:, 0]
    v *= c[:, 1]
    ln_s += v
    guess: FloatArray = np.exp(ln_s, out=ln_s)
    return guess


@functools.cache
def _guess_cells() -> FloatArray:
    """Per cell ``(iu, iv)`` (row ``iu * _NV + iv``) the bilinear coefficients
    ``t00, t01 - t00, t10 - t00, t11 - t10 - t01 + t00`` of the guess table."""
    t = _guess_table()
    cells = np.zeros((_NU * _NV, 4))
    t00, t01, t10, t11 = t[:-1, :-1], t[:-1, 1:], t[1:, :-1], t[1:, 1:]
    grid = cells.reshape(_NU, _NV, 4)
    grid[:-1, :-1, 0] = t00
    grid[:-1, :-1, 1] = t01 - t00
    grid[:-1, :-1, 2] = t10 - t00
    grid[:-1, :-1, 3] = t11 - t10 - t01 + t00
    cells.setflags(write=False)
    return cells


@functools.cache
def _guess_table() -> FloatArray:
    """ln s on the (u, v) grid, by 80 bisection steps in ln s (once per process)."""
    u = np.linspace(0.0, _U_MAX, _NU)
    v = np.linspace(_V_MIN, _V_MAX, _NV)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    a = uu * uu
    target = -np.exp(vv)  # ln q
    lo = np.full(a.shape, -40.0)
    hi = np.full(a.shape, 6.0)
    with np.errstate(all="ignore"):
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            s = np.exp(mid)
            p = a / s
            t = 0.5 * s
            d = erfcx((p - t) * _INV_SQRT2) - erfcx((p + t) * _INV_SQRT2)
            lnq = np.log(d) - _LN2 - 0.5 * (p * p + t * t) + 0.5 * a
            lnq = np.where(np.isfinite(lnq), lnq, -np.inf)
            up = lnq < target
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
    table: FloatArray = 0.5 * (lo + hi)
    table.setflags(write=False)
    return table
