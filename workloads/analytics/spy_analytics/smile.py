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


@dataclass(frozen=True)
class SmileFit:
    """Spline coefficients per expiry group and the data range they cover."""

    coef: FloatArray  # (groups, N_BASIS), NaN rows for groups without a fit
    z_lo: FloatArray  # (groups,)
    z_hi: FloatArray  # (groups,)
    ok: NDArray[np.bool_]  # (groups,)

    def evaluate(self, group: IntArray, z: FloatArray) -> FloatArray:
        """Fitted IV at scaled moneyness ``z`` of expiry group ``group`` (NaN if unfit)."""
        idx, basis = _basis(group, z, self.z_lo, self.z_hi)
        vals = self.coef.ravel()[group[:, None] * N_BASIS + idx]
        out: FloatArray = np.sum(vals * basis, axis=1)
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

    idx, basis = _basis(g, zz, z_lo, z_hi)
    # sort points by (group, segment): each run shares the same 4x4 block of the normal
    # equations, so they are accumulated with reduceat instead of scattered adds
    seg_key = g * N_SEGMENTS + idx[:, 0]
    order = np.argsort(seg_key, kind="stable")
    g, idx, basis, seg_key = g[order], idx[order], basis[order], seg_key[order]
    sel = sel[order]
    y = iv[sel]
    w0 = 1.0 / (sigma[sel] ** 2)
    starts = np.flatnonzero(np.r_[True, seg_key[1:] != seg_key[:-1]])
    seg_g = g[starts]
    seg_j = idx[starts, 0]
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(-1, 16)
    penalty = _penalty()
    flat_idx = g[:, None] * N_BASIS + idx
    rho = np.ones_like(y)
    for stage in range(3):
        w = w0 * rho
        coef = _solve_groups(n_groups, starts, seg_g, seg_j, outer, basis, y, w, penalty, ok)
        fitted = np.sum(coef.ravel()[flat_idx] * basis, axis=1)
        r = (y - fitted) * np.sqrt(w0)
        if stage == 0:
            a = np.abs(r)
            rho = np.where(a <= _HUBER_C, 1.0, _HUBER_C / np.maximum(a, 1e-300))
        else:
            u = r / _TUKEY_C
            rho = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
    return SmileFit(coef=coef, z_lo=z_lo, z_hi=z_hi, ok=ok)


def _solve_groups(
    n_groups: int,
    starts: IntArray,
    seg_g: IntArray,
    seg_j: IntArray,
    outer: FloatArray,
    basis: FloatArray,
    y: FloatArray,
    w: FloatArray,
    penalty: FloatArray,
    ok: NDArray[np.bool_],
) -> FloatArray:
    nb = N_BASIS
    blocks = np.add.reduceat(w[:, None] * outer, starts, axis=0)
    rhs_blocks = np.add.reduceat((w * y)[:, None] * basis, starts, axis=0)
    ata = np.zeros((n_groups, nb, nb))
    atb = np.zeros((n_groups, nb))
    for a in range(4):
        atb[seg_g, seg_j + a] += rhs_blocks[:, a]
        for b in range(4):
            ata[seg_g, seg_j + a, seg_j + b] += blocks[:, 4 * a + b]
    scale = np.trace(ata, axis1=1, axis2=2) / nb
    lam = _LAMBDA * np.maximum(scale, 1e-300)
    system = ata + lam[:, None, None] * penalty[None, :, :]
    system[~ok] = np.eye(nb)
    atb[~ok] = 0.0
    coef: FloatArray = np.linalg.solve(system, atb[:, :, None])[:, :, 0]
    coef[~ok] = np.nan
    return coef


def _basis(
    group: IntArray, z: FloatArray, z_lo: FloatArray, z_hi: FloatArray
) -> tuple[IntArray, FloatArray]:
    lo = z_lo[group]
    hi = z_hi[group]
    u = (np.clip(z, lo, hi) - lo) * (N_SEGMENTS / (hi - lo))
    j = np.minimum(u.astype(np.intp), N_SEGMENTS - 1)
    tau = u - j
    tau2 = tau * tau
    tau3 = tau2 * tau
    omt = 1.0 - tau
    basis = np.stack(
        [
            omt * omt * omt / 6.0,
            (3.0 * tau3 - 6.0 * tau2 + 4.0) / 6.0,
            (-3.0 * tau3 + 3.0 * tau2 + 3.0 * tau + 1.0) / 6.0,
            tau3 / 6.0,
        ],
        axis=1,
    )
    idx = j[:, None] + np.arange(4)[None, :]
    return idx, basis


def _penalty() -> FloatArray:
    d = np.diff(np.eye(N_BASIS), n=2, axis=0)
    pen: FloatArray = d.T @ d
    return pen
