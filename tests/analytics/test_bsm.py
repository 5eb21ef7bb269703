"""Black-Scholes-Merton prices and greeks against textbook values and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spy_analytics import bsm_greeks, bsm_price


@pytest.mark.parametrize(
    ("spot", "strike", "t", "r", "q", "vol", "call", "expected", "source"),
    [
        (42.0, 40.0, 0.5, 0.10, 0.0, 0.20, True, 4.76, "Hull ex. 15.6 call"),
        (42.0, 40.0, 0.5, 0.10, 0.0, 0.20, False, 0.81, "Hull ex. 15.6 put"),
        (60.0, 65.0, 0.25, 0.08, 0.0, 0.30, True, 2.1334, "Haug 1.1.1"),
        (75.0, 70.0, 0.5, 0.10, 0.05, 0.35, False, 4.0870, "Haug 1.1.6 (b = r - q)"),
        (100.0, 95.0, 0.5, 0.10, 0.05, 0.20, False, 2.4648, "Haug 1.1.2 Merton 1973"),
    ],
)
def test_textbook_prices(spot, strike, t, r, q, vol, call, expected, source):
    digits = len(str(expected).split(".")[1])
    assert round(float(bsm_price(spot, strike, t, r, q, vol, call)), digits) == expected, source


def test_hull_greeks_example():
    # Hull, example 19.1 ff.: S=49, K=50, r=5%, sigma=20%, T=20 weeks
    g = bsm_greeks(49.0, 50.0, 0.3846, 0.05, 0.0, 0.20, True)
    assert round(float(g.delta), 3) == 0.522
    assert round(float(g.gamma), 3) == 0.066
    assert round(float(g.vega), 1) == 12.1
    assert round(float(g.theta), 2) == -4.31
    assert round(float(g.rho), 2) == 8.91


@settings(max_examples=200, deadline=None)
@given(
    spot=st.floats(10, 1000),
    m=st.floats(0.5, 1.5),
    t=st.floats(1 / 365, 3.0),
    r=st.floats(-0.01, 0.1),
    q=st.floats(0.0, 0.06),
    vol=st.floats(0.03, 2.0),
)
def test_put_call_parity(spot, m, t, r, q, vol):
    k = spot * m
    c = float(bsm_price(spot, k, t, r, q, vol, True))
    p = float(bsm_price(spot, k, t, r, q, vol, False))
    assert c - p == pytest.approx(spot * np.exp(-q * t) - k * np.exp(-r * t), abs=1e-9 * spot)


def test_greeks_match_finite_differences():
    rng = np.random.default_rng(7)
    n = 500
    s = rng.uniform(50, 150, n)
    k = s * rng.uniform(0.7, 1.3, n)
    t = rng.uniform(0.05, 2.0, n)
    r = rng.uniform(0.0, 0.08, n)
    q = rng.uniform(0.0, 0.04, n)
    v = rng.uniform(0.1, 0.8, n)
    c = rng.random(n) < 0.5
    g = bsm_greeks(s, k, t, r, q, v, c)
    h = 1e-4

    def p(**kw):
        args = {"spot": s, "strike": k, "t": t, "rate": r, "div_yield": q, "vol": v}
        args.update(kw)
        return bsm_price(is_call=c, **args)

    np.testing.assert_allclose(g.delta, (p(spot=s + h) - p(spot=s - h)) / (2 * h), atol=1e-6)
    hs = 1e-2
    gamma_fd = (p(spot=s + hs) - 2 * p() + p(spot=s - hs)) / hs**2
    np.testing.assert_allclose(g.gamma, gamma_fd, atol=1e-5)
    np.testing.assert_allclose(
        g.vega, (p(vol=v + h) - p(vol=v - h)) / (2 * h), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        g.rho, (p(rate=r + h) - p(rate=r - h)) / (2 * h), rtol=1e-4, atol=1e-5
    )
    # theta is the derivative in calendar time: -dV/dT
    np.testing.assert_allclose(g.theta, -(p(t=t + h) - p(t=t - h)) / (2 * h), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.price, p())


def test_broadcasting_and_edge_values():
    out = bsm_price(
        100.0, np.array([[90.0], [110.0]]), np.array([0.1, 0.5, 1.0]), 0.0, 0.0, 0.2, True
    )
    assert out.shape == (2, 3)
    # zero time and zero vol give the discounted forward intrinsic value
    assert float(bsm_price(100.0, 90.0, 0.0, 0.05, 0.0, 0.2, True)) == pytest.approx(10.0)
    assert float(bsm_price(100.0, 90.0, 1.0, 0.0, 0.0, 0.0, False)) == 0.0
    # deep out of the money keeps relative precision (no cancellation to 0 or negative)
    tiny = float(bsm_price(100.0, 200.0, 0.1, 0.0, 0.0, 0.2, True))
    assert 0.0 < tiny < 1e-20
