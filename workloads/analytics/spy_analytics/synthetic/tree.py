"""Binomial-tree American option values with a discrete cash dividend (the yardstick).

Who calls this: `spy_analytics.synthetic.tape` prices its American SPY chain with it,
so the detector (which estimates early exercise with closed-form approximations,
`spy_analytics.american`) is measured against an independent pricer.

Cox, Ross & Rubinstein (1979) tree on the escrowed spot ``S* = S - PV(D)`` (Hull,
*Options, Futures, and Other Derivatives*, §21.3 "known dividend"): the tree carries
``S*`` at the risk-free rate; the value of exercising at a node is
``theta (S*_node + PV(dividends still to come) - K)``, so a call is exercised just
before an ex-date when that pays. The early-exercise premium is taken as a control
variate, ``tree_american - tree_european``, and added to the exact European (Black)
value on the forward, which cancels most of the tree's discretisation error.
One tree per contract, all contracts at once (arrays of shape (contracts, nodes)).

A call that spans one ex-date is only ever exercised just before it (without a
dividend an American call is worth its European value, Merton 1973), so its value is
computed exactly instead, as the expectation over the escrowed spot at the ex-time
``t_d`` (lognormal) of the better of exercising and holding (Hull §15.12; the
Roll-Geske-Whaley formula evaluates the same integral in closed form)::

    C = e^{-r t_d} E[ max(S*_{t_d} + D - K, C_eu(S*_{t_d}, K, T - t_d)) ]

by Gauss-Hermite quadrature (a tree with a node hours before the ex-date misses
cents of it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..bsm import bsm_price

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_HERMITE_NODES = 96


def call_one_dividend(
    s_star: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: float,
    vol: FloatArray,
    div_t: FloatArray,
    div_amount: FloatArray,
) -> FloatArray:
    """American call value with one cash dividend at ``div_t < t`` (module docstring)."""
    x, w = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    w = w / np.sqrt(2.0 * np.pi)
    sd = (vol * np.sqrt(div_t))[:, None]
    s_d = s_star[:, None] * np.exp(rate * div_t[:, None] - 0.5 * sd * sd + sd * x[None, :])
    rest = (t - div_t)[:, None]
    k = strike[:, None]
    hold = bsm_price(s_d, k, rest, rate, 0.0, vol[:, None], True)
    value = np.maximum(s_d + div_amount[:, None] - k, hold)
    out: FloatArray = np.exp(-rate * div_t) * (value @ w)
    return out


def early_exercise_premium_tree(
    s_star: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: float,
    vol: FloatArray,
    is_call: BoolArray,
    div_t: FloatArray,
    div_amount: FloatArray,
    steps: int = 80,
) -> FloatArray:
    """American minus European value on the same tree (>= 0).

    ``div_t``/``div_amount``: years to the one ex-dividend time of the horizon and its
    cash amount (NaN / 0 when none; SPY pays quarterly, so a chain out to a few
    months holds one). It may fall after expiry: the stock at expiry is then
    ``S* + D e^{-r (t_d - T)}`` (the dividend is still in the price).
    """
    n = s_star.shape[0]
    if n == 0:
        return np.zeros(0)
    dt = t / steps
    u = np.exp(vol * np.sqrt(dt))
    d = 1.0 / u
    growth = np.exp(rate * dt)
    p = ((growth - d) / (u - d))[:, None]
    disc = (1.0 / growth)[:, None]
    theta = np.where(is_call, 1.0, -1.0)[:, None]
    k = strike[:, None]
    has_div = np.isfinite(div_t) & (div_amount > 0.0)
    j = np.arange(steps + 1, dtype=np.float64)
    nodes = s_star[:, None] * np.exp(np.log(u)[:, None] * (2.0 * j[None, :] - steps))
    pvd_end = np.where(has_div & (div_t > t), div_amount * np.exp(-rate * (div_t - t)), 0.0)
    # American and European values side by side: one pass of the recursion for both
    val = np.concatenate([np.maximum(theta * (nodes + pvd_end[:, None] - k), 0.0)] * 2)
    p2, disc2 = np.concatenate([p, p]), np.concatenate([disc, disc])
    up = u[:, None]
    for i in range(steps - 1, -1, -1):
        val = disc2 * (p2 * val[:, 1 : i + 2] + (1.0 - p2) * val[:, : i + 1])
        nodes = nodes[:, : i + 1] * up  # S u^(2j - i) from S u^(2j - i - 1)
        t_i = i * dt
        pvd = np.where(has_div & (div_t > t_i), div_amount * np.exp(-rate * (div_t - t_i)), 0.0)
        val[:n] = np.maximum(val[:n], theta * (nodes + pvd[:, None] - k))
    out: FloatArray = np.maximum(val[:n, 0] - val[n:, 0], 0.0)
    return out
