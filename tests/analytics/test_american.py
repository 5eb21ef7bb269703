"""Early-exercise premia (spy_analytics.american) and the yardstick's pricers
(synthetic.tree) against a fine Cox-Ross-Rubinstein tree written out here."""

from __future__ import annotations

import numpy as np
import pytest
from spy_analytics import bsm_price
from spy_analytics.american import call_one_dividend, early_exercise_premium
from spy_analytics.synthetic.tree import early_exercise_premium_tree

R, S, VOL = 0.043, 600.0, 0.15


def crr(s, k, t, r, vol, call, steps=1500, div_t=None, div=0.0):
    """Plain CRR (escrowed dividend), American - European."""
    dt = t / steps
    u = np.exp(vol * np.sqrt(dt))
    p = (np.exp(r * dt) - 1 / u) / (u - 1 / u)
    disc = np.exp(-r * dt)
    s_star = s - (div * np.exp(-r * div_t) if div_t is not None else 0.0)
    sign = 1.0 if call else -1.0
    j = np.arange(steps + 1)
    nodes = s_star * u ** (2 * j - steps)
    am = eu = np.maximum(sign * (nodes - k), 0.0)
    for i in range(steps - 1, -1, -1):
        am = disc * (p * am[1:] + (1 - p) * am[:-1])
        eu = disc * (p * eu[1:] + (1 - p) * eu[:-1])
        pvd = div * np.exp(-r * (div_t - i * dt)) if div_t is not None and div_t > i * dt else 0
        am = np.maximum(am, sign * (s_star * u ** (2 * j[: i + 1] - i) + pvd - k))
    return am[0] - eu[0]


@pytest.mark.parametrize("dte", [5, 30, 60])
@pytest.mark.parametrize("strike", [590.0, 600.0, 620.0, 650.0])
def test_put_premium_is_within_a_fifth_of_the_tree(dte, strike):
    t = dte / 365
    truth = crr(S, strike, t, R, VOL, call=False)
    fwd = np.array([S * np.exp(R * t)])
    nan = np.array([np.nan])
    est = early_exercise_premium(
        fwd, np.array([strike]), np.array([t]), R, np.array([VOL]), np.array([False]), nan, nan
    )[0]
    assert est == pytest.approx(truth, rel=0.2, abs=0.01)
    tree = early_exercise_premium_tree(
        np.array([S]), np.array([strike]), np.array([t]), R, np.array([VOL]),
        np.array([False]), nan, np.zeros(1), steps=80,
    )[0]  # fmt: skip
    # the yardstick's 80-step tree: within ~2 cents (6%) of a 1,500-step one
    assert tree == pytest.approx(truth, rel=0.08, abs=0.015)


@pytest.mark.parametrize("strike", [550.0, 600.0, 620.0])
def test_call_across_an_ex_date_is_worth_the_exercise_the_night_before(strike):
    t, td, d = 30 / 365, 7 / 365, 1.90
    s_star = S - d * np.exp(-R * td)
    exact = call_one_dividend(
        np.array([s_star]), np.array([strike]), np.array([t]), R, np.array([VOL]),
        np.array([td]), np.array([d]),
    )[0]  # fmt: skip
    euro = float(bsm_price(s_star * np.exp(R * t), strike, t, R, R, VOL, True))
    assert exact - euro == pytest.approx(crr(S, strike, t, R, VOL, True, 1500, td, d), abs=0.01)
    fwd = np.array([s_star * np.exp(R * t)])
    div_fwd = np.array([S * np.exp(R * td)])
    est = early_exercise_premium(
        fwd, np.array([strike]), np.array([t]), R, np.array([VOL]), np.array([True]),
        np.array([td]), div_fwd, np.array([d]),
    )[0]  # fmt: skip
    assert est == pytest.approx(exact - euro, abs=0.01)
    # without the amount only Black's lower value is known, and it is lower
    black = early_exercise_premium(
        fwd, np.array([strike]), np.array([t]), R, np.array([VOL]), np.array([True]),
        np.array([td]), div_fwd,
    )[0]  # fmt: skip
    assert black <= est + 1e-12


def test_no_premium_for_a_call_without_a_dividend():
    nan = np.array([np.nan])
    est = early_exercise_premium(
        np.array([610.0]), np.array([550.0]), np.array([0.1]), R, np.array([VOL]),
        np.array([True]), nan, nan,
    )  # fmt: skip
    assert est[0] == 0.0
