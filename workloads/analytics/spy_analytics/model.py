"""The American model at the fitted smile: price, early-exercise premium, delta, gamma.

Who calls this: `spy_analytics.frame` (once per snapshot, on the usable rows). The
price is Black on the expiry's forward at the fitted IV plus the early-exercise premium
(`forward.premium`, closed forms of `spy_analytics.american`), at least intrinsic; the
rules blame price-bound breaks with it, the in-the-money IV pass subtracts the premium,
GEX reads the gamma.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from .bsm import bsm_price, d1_sd
from .chain import ChainSnapshot
from .forward import premium
from .smile import SmileFit

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))


class Forwards(Protocol):
    """What the model reads of each contract's expiry forward (`frame`'s forwards)."""

    @property
    def fwd(self) -> FloatArray: ...
    @property
    def carry(self) -> FloatArray: ...
    @property
    def expiry_epoch(self) -> FloatArray: ...


class ModelAtFit(NamedTuple):
    """Per-contract arrays (length n) of the model at the fitted smile."""

    fit_iv: FloatArray
    model: FloatArray
    gamma: FloatArray
    eep: FloatArray
    abs_delta: FloatArray
    sync: FloatArray


def model_at_fit(
    snap: ChainSnapshot,
    use: IntArray,
    group: IntArray,
    z: FloatArray,
    t: FloatArray,
    fw: Forwards,
    spot_q: FloatArray,
    smile: SmileFit,
) -> ModelAtFit:
    """Fitted IV of the usable rows and, at it: the American model price (Black on the
    forward plus the early-exercise premium, at least intrinsic), the premium, delta
    (its size, and the price change that brings a quote to the snapshot's spot) and
    gamma on the snapshot's spot."""
    n, r, spot = len(snap), snap.rate, snap.spot
    out = ModelAtFit(
        np.full(n, np.nan), np.full(n, np.nan), np.zeros(n), np.zeros(n), np.ones(n), np.zeros(n)
    )
    if use.size == 0:
        return out
    fit_use = smile.evaluate(group[use], np.nan_to_num(z[use]))
    out.fit_iv[use] = fit_use
    vol = np.where(np.isfinite(fit_use) & (fit_use > 0.0), fit_use, np.nan)
    fu, ku, tu, cu, sq = fw.fwd[use], snap.strike[use], t[use], snap.is_call[use], spot_q[use]
    euro = bsm_price(fu, ku, tu, r, r, vol, cu)
    prem = premium(snap, use, fu, ku, tu, vol, cu, sq, fw.expiry_epoch[use], euro)
    eep = np.nan_to_num(prem)
    out.eep[use] = eep
    intrinsic = np.maximum(np.where(cu, sq - ku, ku - sq), 0.0)
    model = np.maximum(euro + eep, intrinsic)
    out.model[use] = model
    with np.errstate(all="ignore"):
        d1, _sd = d1_sd(fu, ku, tu, r, r, vol)
        nd1 = ndtr(d1)
        dlt = np.where(cu, nd1, nd1 - 1.0)
        # deep in the money a put at its exercise value moves one-for-one
        dlt = np.where(~cu & (model <= intrinsic + 1e-9), -1.0, dlt)
    finite = np.isfinite(dlt)
    out.abs_delta[use] = np.where(finite, np.abs(dlt), 1.0)
    out.sync[use] = np.where(finite, dlt, 0.0) * (spot - sq)
    g = gamma(spot, ku, tu, r, fw.carry[use], vol)
    out.gamma[use] = np.where(np.isfinite(g), g, 0.0)
    return out


def gamma(
    spot: float, strike: FloatArray, t: FloatArray, r: float, q: FloatArray, vol: FloatArray
) -> FloatArray:
    """``e^{-qT} n(d1) / (S sigma sqrt(T))`` (Hull ch. 19)."""
    with np.errstate(all="ignore"):
        d1, sd = d1_sd(spot, strike, t, r, q, vol)
        out: FloatArray = np.exp(-q * t - 0.5 * d1 * d1) * _INV_SQRT2PI / (spot * sd)
    return out
