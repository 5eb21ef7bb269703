"""Vectorised Black-Scholes-Merton with a continuous dividend yield.

Who calls this: `spy_analytics.iv` (normalised Black kernel), the pipeline (greeks for
GEX and IV weights), the synthetic market (prices), tests and benchmarks.

Model (Merton 1973; Hull, *Options, Futures, and Other Derivatives*, ch. 17-19;
Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed., §1.1.6), with
forward ``F = S e^{(r-q)T}`` and discount ``D = e^{-rT}``::

    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2)
    put  = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)

Prices are evaluated in Jäckel's normalised form (*Let's Be Rational*, 2015):
``price = D sqrt(F K) b(x, s)`` with ``x = ln(F/K)``, ``s = sigma sqrt(T)``, and the
out-of-the-money part written with the scaled complementary error function
``erfcx(z) = e^{z^2} erfc(z)`` so that deep out-of-the-money values keep their
relative precision instead of cancelling::

    b_otm(x<=0, s) = 1/2 e^{-(h^2+t^2)/2} [erfcx(-(h+t)/sqrt2) - erfcx(-(h-t)/sqrt2)],
    h = x/s,  t = s/2,  b = intrinsic(x) + b_otm(-|x|, s).

All functions take array-likes, broadcast them once and return arrays.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfcx, ndtr

FloatArray = NDArray[np.float64]

_SQRT2 = float(np.sqrt(2.0))
_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))


def d1_sd(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div_yield: ArrayLike,
    vol: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """``d1`` and ``sd = sigma sqrt(T)`` (Hull eq. 15.20 with a yield; Haug §1.1.6)::

        d1 = (ln(S/K) + (r - q) T) / (sigma sqrt(T)) + sigma sqrt(T) / 2,   d2 = d1 - sd

    The package's one ``d1``: the greeks here, the pipeline's vega and gamma
    (`spy_analytics.frame`), the gamma-flip search (`spy_analytics.structure`) and the
    synthetic markets all call it. Plain numpy broadcasting (a spot grid against a
    column of strikes works); inf/NaN where ``t`` or ``vol`` is 0, for callers to mask.

    >>> d1, sd = d1_sd(42.0, 40.0, 0.5, 0.1, 0.0, 0.2)  # Hull ex. 15.6
    >>> round(float(d1), 4), round(float(d1 - sd), 4)
    (0.7693, 0.6278)
    """
    tau = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd: FloatArray = np.asarray(vol, dtype=np.float64) * np.sqrt(tau)
        carry = (np.asarray(rate, dtype=np.float64) - np.asarray(div_yield, dtype=np.float64)) * tau
        d1: FloatArray = (np.log(np.divide(spot, strike)) + carry) / sd + 0.5 * sd
    return d1, sd


def normalised_otm(x: FloatArray, s: FloatArray) -> FloatArray:
    """Normalised out-of-the-money Black value ``b_otm(x, s)`` for ``x <= 0``, ``s >= 0``.

    Zero at ``s = 0`` (and for ``x < 0`` with underflow); ``x = 0, s -> 0`` gives 0.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        h = x / s
        t = 0.5 * s
        diff = erfcx(-(h + t) / _SQRT2) - erfcx(-(h - t) / _SQRT2)
        b = 0.5 * np.exp(-0.5 * (h * h + t * t)) * diff
    return np.where(s > 0.0, np.where(np.isfinite(b), b, 0.0), 0.0)


def normalised_intrinsic(x: FloatArray, theta: FloatArray) -> FloatArray:
    """``max(theta (e^{x/2} - e^{-x/2}), 0)`` with ``theta = +1`` call, ``-1`` put."""
    return np.maximum(theta * 2.0 * np.sinh(0.5 * x), 0.0)


def bsm_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div_yield: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """European BSM price with continuous dividend yield (formula in the module doc).

    ``t`` in years, ``rate``/``div_yield``/``vol`` annualised decimals (continuous
    compounding). ``t = 0`` or ``vol = 0`` give the discounted forward intrinsic value.

    >>> round(float(bsm_price(42.0, 40.0, 0.5, 0.1, 0.0, 0.2, True)), 2)  # Hull ex. 15.6
    4.76
    >>> round(float(bsm_price(42.0, 40.0, 0.5, 0.1, 0.0, 0.2, False)), 2)
    0.81
    """
    spot_, strike_, tau, r, q, v, c = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (spot, strike, t, rate, div_yield, vol)),
        np.asarray(is_call, dtype=np.bool_),
    )
    tau = np.maximum(tau, 0.0)
    fwd = spot_ * np.exp((r - q) * tau)
    disc = np.exp(-r * tau)
    x = np.log(fwd / strike_)
    s = v * np.sqrt(tau)
    theta = np.where(c, 1.0, -1.0)
    b = normalised_intrinsic(x, theta) + normalised_otm(-np.abs(x), s)
    out: FloatArray = disc * np.sqrt(fwd * strike_) * b
    return out


class Greeks(NamedTuple):
    """Analytic BSM sensitivities (Hull ch. 19; Haug §2.1), all arrays.

    * delta = dV/dS; gamma = d2V/dS2
    * vega = dV/dsigma per 1.00 of vol (divide by 100 for per vol point)
    * theta = dV/dt per year of calendar time (divide by 365 for per day)
    * rho = dV/dr per 1.00 of rate
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray


def bsm_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    div_yield: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
) -> Greeks:
    """Price and analytic greeks with continuous dividend yield ``q``::

        delta_c = e^{-qT} N(d1)             delta_p = -e^{-qT} N(-d1)
        gamma   = e^{-qT} n(d1) / (S sigma sqrt T)
        vega    = S e^{-qT} n(d1) sqrt T
        theta_c = -S e^{-qT} n(d1) sigma / (2 sqrt T) - r K e^{-rT} N(d2) + q S e^{-qT} N(d1)
        theta_p = -S e^{-qT} n(d1) sigma / (2 sqrt T) + r K e^{-rT} N(-d2) - q S e^{-qT} N(-d1)
        rho_c   = K T e^{-rT} N(d2)          rho_p = -K T e^{-rT} N(-d2)

    Requires ``t > 0`` and ``vol > 0`` (NaN otherwise).
    """
    spot_, strike_, tau, r, q, v, c = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (spot, strike, t, rate, div_yield, vol)),
        np.asarray(is_call, dtype=np.bool_),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (tau > 0.0) & (v > 0.0)
        sqrt_t = np.sqrt(np.where(ok, tau, np.nan))
        d1, sd = d1_sd(spot_, strike_, np.where(ok, tau, np.nan), r, q, v)
        d2 = d1 - sd
        dq = np.exp(-q * tau)
        dr = np.exp(-r * tau)
        pdf = _INV_SQRT2PI * np.exp(-0.5 * d1 * d1)
        sign = np.where(c, 1.0, -1.0)
        nd1 = ndtr(sign * d1)
        nd2 = ndtr(sign * d2)
        price = bsm_price(spot_, strike_, tau, r, q, v, c)
        delta = sign * dq * nd1
        gamma = dq * pdf / (spot_ * sd)
        vega = spot_ * dq * pdf * sqrt_t
        theta = (
            -spot_ * dq * pdf * v / (2.0 * sqrt_t)
            - sign * r * strike_ * dr * nd2
            + sign * q * spot_ * dq * nd1
        )
        rho = sign * strike_ * tau * dr * nd2
    return Greeks(price, delta, gamma, vega, theta, rho)


def _as_float(a: Any) -> FloatArray:
    return np.asarray(a, dtype=np.float64)
