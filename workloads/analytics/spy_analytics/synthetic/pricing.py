"""Quote construction for the synthetic market: $0.01 ticks and American monotonicity.

Who calls this: `spy_analytics.synthetic.market`, `.tape` and `.injection`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class SsviParams(Protocol):
    """The smile parameters `SyntheticConfig` and `TapeConfig` share."""

    @property
    def atm_vol_short(self) -> float: ...
    @property
    def atm_vol_long(self) -> float: ...
    @property
    def atm_decay(self) -> float: ...
    @property
    def ssvi_rho(self) -> float: ...
    @property
    def ssvi_eta(self) -> float: ...
    @property
    def ssvi_gamma(self) -> float: ...


def ssvi_iv(c: SsviParams, vol_shift: float, k: FloatArray, t: FloatArray) -> FloatArray:
    """SSVI implied vol at log-moneyness ``k = ln(K/F)`` and maturity ``t`` (Gatheral &
    Jacquier 2014, power-law phi), on an ATM term structure
    ``vol(T) = long - (long - short) e^{-T / decay}`` shifted by ``vol_shift``."""
    atm = c.atm_vol_long - (c.atm_vol_long - c.atm_vol_short) * np.exp(-t / c.atm_decay)
    atm = np.maximum(atm + vol_shift, 0.03)
    theta = atm * atm * t
    phi = c.ssvi_eta / (theta**c.ssvi_gamma * (1.0 + theta) ** (1.0 - c.ssvi_gamma))
    rho = c.ssvi_rho
    pk = phi * k
    w = 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))
    out: FloatArray = np.sqrt(w / t)
    return out


def quote_on_tick(mid: FloatArray, half: FloatArray) -> tuple[FloatArray, FloatArray]:
    bid = np.floor((mid - half) * 100.0 + 1e-9) / 100.0
    ask = np.ceil((mid + half) * 100.0 - 1e-9) / 100.0
    bid = np.maximum(bid, 0.0)
    ask = np.maximum(ask, bid + 0.01)
    return bid, ask


def cummax_in_maturity(price: FloatArray, strike: FloatArray, is_call: BoolArray) -> FloatArray:
    """American options: a later expiry is worth at least an earlier one (same K, right).
    Contracts are laid out expiry by expiry, so a stable sort by (right, strike) keeps
    maturity order within each (right, strike) run."""
    order = np.lexsort((strike, is_call))
    p = price[order]
    key = strike[order] * 2 + is_call[order]
    starts = np.r_[True, key[1:] != key[:-1]]
    run = np.cumsum(starts) - 1
    # cumulative max within runs: offset each run so a global cummax cannot leak across
    offset = run * 1e7
    cm = np.maximum.accumulate(p + offset) - offset
    out = np.empty_like(price)
    out[order] = cm
    return out


def spoil_quotes(
    rng: np.random.Generator,
    rate: float,
    bid: FloatArray,
    ask: FloatArray,
    quote_ts: FloatArray,
    protected: BoolArray | None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Data-quality noise, never labelled and never an anomaly: a ``rate`` share of the
    unprotected quotes become crossed, locked, stale (an hour old) or one-sided."""
    bad = np.flatnonzero(rng.random(bid.shape[0]) < rate)
    if protected is not None:
        bad = bad[~protected[bad]]
    kinds = rng.integers(0, 4, bad.shape[0])
    bid, ask, quote_ts = bid.copy(), ask.copy(), quote_ts.copy()
    bid[bad[kinds == 0]] = ask[bad[kinds == 0]] + 0.05  # crossed
    bid[bad[kinds == 1]] = ask[bad[kinds == 1]]  # locked
    quote_ts[bad[kinds == 2]] -= 3600.0  # stale
    ask[bad[kinds == 3]] = np.nan  # one side missing
    return bid, ask, quote_ts
