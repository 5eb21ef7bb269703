"""Smile fit: recovers known smiles for many expiries at once, resists outliers."""

from __future__ import annotations

import numpy as np
from spy_analytics.smile import fit_smiles, scaled_moneyness


def _data(seed=0, n_groups=6, per=60):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    t = (g + 1) / 12.0
    k = rng.uniform(-0.25, 0.15, g.size) * np.sqrt(t)
    truth = 0.2 - 0.15 * k / np.sqrt(t) + 0.8 * k * k / t
    sigma = np.full(g.size, 0.004)
    iv = truth + rng.normal(0.0, 1.0, g.size) * sigma
    return g, t, k, truth, iv, sigma


def test_recovers_a_known_smile_per_expiry():
    g, t, k, truth, iv, sigma = _data()
    z = scaled_moneyness(k, t)
    fit = fit_smiles(g, 6, z, iv, sigma)
    assert fit.ok.all()
    err = np.abs(fit.evaluate(g, z) - truth)
    assert err.max() < 0.008  # within two quote uncertainties everywhere (edges included)
    assert np.median(err) < 0.0015  # and well inside one in the body


def test_outlier_does_not_pull_the_fit_and_scores_high():
    g, t, k, truth, iv, sigma = _data(seed=1)
    z = scaled_moneyness(k, t)
    i = 30  # a point in the middle of the first expiry
    iv[i] = truth[i] + 0.08  # 20 sigma
    fit = fit_smiles(g, 6, z, iv, sigma)
    fitted = fit.evaluate(g, z)
    assert abs(fitted[i] - truth[i]) < 0.004
    assert (iv[i] - fitted[i]) / sigma[i] > 17
    # the rest of the curve is as good as without the outlier
    assert np.abs(fitted - truth).max() < 0.008


def test_thin_and_invalid_groups_are_left_unfitted():
    g, t, k, _truth, iv, sigma = _data()
    z = scaled_moneyness(k, t)
    keep = (g != 2) | (np.arange(g.size) % 60 < 5)  # group 2 keeps 5 points only
    iv2 = iv.copy()
    iv2[g == 3] = np.nan  # group 3 has no valid IV at all
    fit = fit_smiles(g[keep], 6, z[keep], iv2[keep], sigma[keep])
    assert fit.ok.tolist() == [True, True, False, False, True, True]
    out = fit.evaluate(np.array([2, 3, 4]), np.zeros(3))
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])


def test_flat_extrapolation_outside_the_data():
    g, t, k, _truth, iv, sigma = _data()
    z = scaled_moneyness(k, t)
    fit = fit_smiles(g, 6, z, iv, sigma)
    lo = fit.evaluate(np.array([0, 0]), np.array([fit.z_lo[0], fit.z_lo[0] - 50.0]))
    assert lo[0] == lo[1]
