"""Implied volatility: round trips, reason codes for every undefined input, speed path."""

from __future__ import annotations

import numpy as np
import pytest
import spy_analytics.iv as ivmod
import spy_analytics.iv_householder as iv_householder
from hypothesis import given, settings
from hypothesis import strategies as st
from spy_analytics import IVReason, bsm_greeks, bsm_price, implied_volatility
from spy_analytics import implied_volatility_with_reason as ivr


def _random_chain(n, seed=0):
    rng = np.random.default_rng(seed)
    s = np.full(n, 100.0)
    k = s * rng.uniform(0.7, 1.3, n)
    t = rng.uniform(1 / 365, 2.0, n)
    v = rng.uniform(0.05, 1.5, n)
    r = rng.uniform(0.0, 0.06, n)
    q = rng.uniform(0.0, 0.03, n)
    c = rng.random(n) < 0.5
    return s, k, t, r, q, v, c


def test_hull_round_trip():
    p = bsm_price(42.0, 40.0, 0.5, 0.1, 0.0, 0.2, True)
    assert float(implied_volatility(p, 42.0, 40.0, 0.5, 0.1, 0.0, True)) == pytest.approx(
        0.2, abs=1e-12
    )


def test_round_trip_accuracy_on_well_conditioned_inputs():
    s, k, t, r, q, v, c = _random_chain(50_000)
    p = bsm_price(s, k, t, r, q, v, c)
    iv, reason = ivr(p, s, k, t, r, q, c)
    vega = bsm_greeks(s, k, t, r, q, v, c).vega
    with np.errstate(divide="ignore"):
        # 8 ulps of the price move the vol by at most 1e-10: the price determines the vol
        well = (p * 2.2e-16 * 8 / vega <= 1e-10) & (p > 1e-250)
    assert well.mean() > 0.95
    assert np.all(reason[well] == IVReason.OK)
    assert np.max(np.abs(iv[well] - v[well])) <= 1e-9
    # price(iv(price)) == price wherever the solver answered
    ok = reason == IVReason.OK
    np.testing.assert_allclose(bsm_price(s, k, t, r, q, iv, c)[ok], p[ok], rtol=1e-10, atol=1e-13)


@settings(max_examples=300, deadline=None)
@given(
    m=st.floats(0.6, 1.6),
    t=st.floats(1 / 365, 3.0),
    vol=st.floats(0.02, 3.0),
    r=st.floats(-0.02, 0.1),
    q=st.floats(0.0, 0.05),
    call=st.booleans(),
)
def test_property_price_of_iv_is_price(m, t, vol, r, q, call):
    s = 600.0
    p = float(bsm_price(s, s * m, t, r, q, vol, call))
    iv, reason = ivr(p, s, s * m, t, r, q, call)
    if reason == IVReason.OK:
        assert float(bsm_price(s, s * m, t, r, q, iv, call)) == pytest.approx(
            p, rel=1e-9, abs=1e-12
        )
    else:
        # undefined only when the price carries (almost) no time value
        assert np.isnan(iv)
        assert int(reason) in (
            IVReason.BELOW_INTRINSIC,
            IVReason.VEGA_UNDERFLOW,
            IVReason.ABOVE_UPPER_BOUND,
        )


@pytest.mark.parametrize(
    ("price", "spot", "strike", "t", "call", "reason"),
    [
        (np.nan, 100.0, 100.0, 1.0, True, IVReason.INVALID_INPUT),
        (np.inf, 100.0, 100.0, 1.0, True, IVReason.INVALID_INPUT),
        (-1.0, 100.0, 100.0, 1.0, True, IVReason.INVALID_INPUT),
        (5.0, -100.0, 100.0, 1.0, True, IVReason.INVALID_INPUT),
        (5.0, 100.0, 0.0, 1.0, True, IVReason.INVALID_INPUT),
        (5.0, 100.0, 100.0, 0.0, True, IVReason.INVALID_INPUT),
        (5.0, 100.0, 100.0, np.nan, False, IVReason.INVALID_INPUT),
        (10.0, 110.0, 100.0, 1.0, True, IVReason.BELOW_INTRINSIC),  # = intrinsic (r=q=0)
        (9.0, 110.0, 100.0, 1.0, True, IVReason.BELOW_INTRINSIC),
        (0.0, 100.0, 120.0, 1.0, True, IVReason.BELOW_INTRINSIC),
        (100.0, 100.0, 100.0, 1.0, True, IVReason.ABOVE_UPPER_BOUND),  # = S
        (101.0, 100.0, 100.0, 1.0, True, IVReason.ABOVE_UPPER_BOUND),
        (100.5, 100.0, 100.0, 1.0, False, IVReason.ABOVE_UPPER_BOUND),  # > K
        (1e-310, 100.0, 200.0, 0.01, True, IVReason.VEGA_UNDERFLOW),
    ],
)
def test_undefined_inputs_give_nan_and_reason(price, spot, strike, t, call, reason):
    iv, code = ivr(price, spot, strike, t, 0.0, 0.0, call)
    assert np.isnan(iv)
    assert int(code) == reason


def test_no_convergence_is_reported(monkeypatch):
    monkeypatch.setattr(ivmod, "_FULL_STEPS", 0)
    monkeypatch.setattr(iv_householder, "_MAX_EXTRA_STEPS", 0)
    iv, code = ivr(10.0, 100.0, 100.0, 1.0, 0.0, 0.0, True)
    assert np.isnan(iv)
    assert int(code) == IVReason.NO_CONVERGENCE


def test_hard_cases_converge_through_the_safeguarded_path():
    # far outside the initial-guess table: |ln F/K| = 5 and vol 300%
    s, k, t, v = 100.0, 100.0 * np.exp(5.0), 4.0, 3.0
    p = bsm_price(s, k, t, 0.0, 0.0, v, True)
    iv, code = ivr(p, s, k, t, 0.0, 0.0, True)
    assert int(code) == IVReason.OK
    assert float(iv) == pytest.approx(v, rel=1e-9)


def test_broadcasting_shape():
    strikes = np.array([[90.0], [100.0], [110.0]])
    times = np.array([0.1, 0.5])
    p = bsm_price(100.0, strikes, times, 0.03, 0.01, 0.25, False)
    iv = implied_volatility(p, 100.0, strikes, times, 0.03, 0.01, False)
    assert iv.shape == (3, 2)
    np.testing.assert_allclose(iv, 0.25, atol=1e-10)
