"""Per-expiry smile fit: robust penalised cubic B-spline (P-spline) in scaled moneyness.

Who calls this: `spy_analytics.pipeline` (fitted IV of every contract, residual z-scores,
the smile curves of the market-state message); tests.

Model, for each expiry separately (all expiries solved at once, vectorised)::

    z = k / (0.2 sqrt(T)),   k = ln(K / F)               (scaled log-moneyness)
    iv(z) = sum_j c_j B_j(z)                              (uniform cubic B-splines,
                                                           8 segments over the data)
    min_c  sum_i w_i rho_i (iv_i - iv(z_i))^2 + lambda_e sum_j (c_{j+1} - 2 c_j + c_{j-1})^2

(Eilers & Marx, "Flexible smoothing with B-splines and penalties", Stat. Sci. 1996.)
Weights ``w_i = 1 / sigma_i^2`` where ``sigma_i^2 = (half_spread_i / vega_i)^2 + floor^2``
is the IV uncertainty of quote ``i`` (vega- and spread-weighted), and ``rho_i`` are
iteratively reweighted robustness weights (one plain pass, one Huber pass with c = 2,
one Tukey-biweight pass with c = 6 on standardised residuals), so an anomalous quote
does not drag the curve toward itself. Residual z-scores are
``(iv_i - iv(z_i)) / sigma_i``. Outside the data range the curve is held flat.

The spline is used rather than raw SVI because it fits all expiries in one batched
linear solve (milliseconds for a 20k chain) and has no local minima; it carries no
no-arbitrage guarantee, which is why static arbitrage is checked on prices by separate
rules (docs/analytics.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

N_SEGMENTS = 8
N_BASIS = N_SEGMENTS + 3
MIN_POINTS = 6
Z_SCALE_VOL = 0.2
_LAMBDA = 1e-3
_HUBER_C = 2.0
_TUKEY_C = 6.0


#: (a, b) pairs of the 4x4 block of one segment's normal equations, in the order they
#: are accumulated, and which of the 10 distinct products ``B_a B_b`` (a <= b) each is
_PAIRS = [(a, b) for a in range(4) for b in range(4)]
_SYM = np.array([[0, 1, 2, 3], [1, 4, 5, 6], [2, 5, 7, 8], [3, 6, 8, 9]])


@dataclass(frozen=True)
class SmileFit:
    """Spline coefficients per expiry group and the data range they cover."""

    coef: FloatArray  # (groups, N_BASIS), NaN rows for groups without a fit
    z_lo: FloatArray  # (groups,)
    z_hi: FloatArray  # (groups,)
    ok: NDArray[np.bool_]  # (groups,)

    def evaluate(self, group: IntArray, z: FloatArray) -> FloatArray:
        """Fitted IV at scaled moneyness ``z`` of expiry group ``group`` (NaN if unfit)."""
        u = _knot_position(group, z, self.z_lo, self.z_hi)
        j = _segment(u)
        out = _combine(self.coef.ravel(), group * N_BASIS + j, _basis(u - j))
        return np.where(self.ok[group], out, np.nan)


def scaled_moneyness(k: FloatArray, t: FloatArray) -> FloatArray:
    """``z = k / (0.2 sqrt(t))``: log-moneyness in units of a 20%-vol standard deviation."""
    z: FloatArray = k / (Z_SCALE_VOL * np.sqrt(t))
    return z


def fit_smiles(
    group: IntArray, n_groups: int, z: FloatArray, iv: FloatArray, sigma: FloatArray
) -> SmileFit:
    """Fit every expiry group at once (points with non-finite iv/sigma are ignored)."""
    use = np.isfinite(iv) & np.isfinite(sigma) & np.isfinite(z) & (sigma > 0.0)
    sel = np.flatnonzero(use)
    sel = sel[np.argsort(group[sel], kind="stable")]
    g = group[sel]
    zz = z[sel]
    count = np.bincount(g, minlength=n_groups)
    ok = count >= MIN_POINTS
    z_lo = np.zeros(n_groups)
    z_hi = np.ones(n_groups)
    if sel.size:
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        present = g[starts]
        z_lo[present] = np.minimum.reduceat(zz, starts)
        z_hi[present] = np.maximum.reduceat(zz, starts)
    z_hi = np.where(z_hi > z_lo, z_hi, z_lo + 1.0)
    coef = np.full((n_groups, N_BASIS), np.nan)
    if not ok.any():
        return SmileFit(coef=coef, z_lo=z_lo, z_hi=z_hi, ok=ok)

    u = _knot_position(g, zz, z_lo, z_hi)
    j = _segment(u)
    # sort points by (group, segment): each run shares the same 4x4 block of the normal
    # equations, so they are accumulated with reduceat instead of scattered adds
    seg_key = g * N_SEGMENTS + j
    order = np.argsort(seg_key, kind="stable")
    g, j, u, seg_key, sel = g[order], j[order], u[order], seg_key[order], sel[order]
    basis = _basis(u - j)  # (4, points): one row per basis function
    y = iv[sel]
    w0 = 1.0 / (sigma[sel] ** 2)
    system = _NormalEquations(n_groups, g, j, seg_key, basis, ok)
    flat_idx = g * N_BASIS + j
    rho = np.ones_like(y)
    for stage in range(3):
        w = w0 * rho
        coef = system.solve(y, w)
        fitted = _combine(coef.ravel(), flat_idx, basis)
        r = (y - fitted) * np.sqrt(w0)
        if stage == 0:
            a = np.abs(r)
            rho = np.where(a <= _HUBER_C, 1.0, _HUBER_C / np.maximum(a, 1e-300))
        else:
            u = r / _TUKEY_C
            rho = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
    return SmileFit(coef=coef, z_lo=z_lo, z_hi=z_hi, ok=ok)


class _NormalEquations:
    """The weighted normal equations of every group, assembled per (group, segment)
    run of the sorted points: the 10 distinct products ``B_a B_b`` of a point are
    formed once, each pass weights and sums them per run (reduceat along contiguous
    rows) and scatters the runs' 4x4 blocks into the groups' 11x11 systems with one
    ``bincount`` (accumulating in the same order as 16 scattered adds would)."""

    def __init__(
        self,
        n_groups: int,
        g: IntArray,
        j: IntArray,
        seg_key: IntArray,
        basis: FloatArray,
        ok: NDArray[np.bool_],
    ) -> None:
        nb = N_BASIS
        self.n_groups, self.basis, self.ok = n_groups, basis, ok
        self.starts = np.flatnonzero(np.r_[True, seg_key[1:] != seg_key[:-1]])
        seg_g, seg_j = g[self.starts], j[self.starts]
        self.products = np.stack([basis[a] * basis[b] for a in range(4) for b in range(a, 4)])
        self.cell = np.concatenate(
            [seg_g * (nb * nb) + (seg_j + a) * nb + (seg_j + b) for a, b in _PAIRS]
        )
        self.sym = np.array([_SYM[a, b] for a, b in _PAIRS])
        self.rhs_cell = np.concatenate([seg_g * nb + seg_j + a for a in range(4)])

    def solve(self, y: FloatArray, w: FloatArray) -> FloatArray:
        nb, n_groups, ok = N_BASIS, self.n_groups, self.ok
        blocks = np.add.reduceat(w * self.products, self.starts, axis=1)
        rhs_blocks = np.add.reduceat((w * y) * self.basis, self.starts, axis=1)
        ata = np.bincount(
            self.cell, weights=blocks[self.sym].ravel(), minlength=n_groups * nb * nb
        ).reshape(n_groups, nb, nb)
        atb = np.bincount(self.rhs_cell, weights=rhs_blocks.ravel(), minlength=n_groups * nb)
        atb = atb.reshape(n_groups, nb)
        scale = np.trace(ata, axis1=1, axis2=2) / nb
        lam = _LAMBDA * np.maximum(scale, 1e-300)
        system = ata + lam[:, None, None] * _penalty()[None, :, :]
        system[~ok] = np.eye(nb)
        atb[~ok] = 0.0
        coef: FloatArray = np.linalg.solve(system, atb[:, :, None])[:, :, 0]
        coef[~ok] = np.nan
        return coef


def _knot_position(
    group: IntArray, z: FloatArray, z_lo: FloatArray, z_hi: FloatArray
) -> FloatArray:
    """Position of ``z`` on its group's knots, in segments (0 .. N_SEGMENTS)."""
    lo = z_lo[group]
    hi = z_hi[group]
    u: FloatArray = (np.clip(z, lo, hi) - lo) * (N_SEGMENTS / (hi - lo))
    return u


def _segment(u: FloatArray) -> IntArray:
    j: IntArray = np.minimum(u.astype(np.intp), N_SEGMENTS - 1)
    return j


def _basis(tau: FloatArray) -> FloatArray:
    """The 4 uniform cubic B-splines nonzero on a segment at fraction ``tau`` of it,
    one row each."""
    tau2 = tau * tau
    tau3 = tau2 * tau
    omt = 1.0 - tau
    return np.stack(
        [
            omt * omt * omt / 6.0,
            (3.0 * tau3 - 6.0 * tau2 + 4.0) / 6.0,
            (-3.0 * tau3 + 3.0 * tau2 + 3.0 * tau + 1.0) / 6.0,
            tau3 / 6.0,
        ]
    )


def _combine(coef: FloatArray, first: IntArray, basis: FloatArray) -> FloatArray:
    """``sum_a coef[first + a] B_a``, summed left to right."""
    out: FloatArray = coef[first] * basis[0]
    for a in range(1, 4):
        out += coef[first + a] * basis[a]
    return out


@functools.cache
def _penalty() -> FloatArray:
    d = np.diff(np.eye(N_BASIS), n=2, axis=0)
    pen: FloatArray = d.T @ d
    pen.setflags(write=False)
    return pen
