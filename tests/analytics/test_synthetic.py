"""Synthetic market: realistic listing, determinism, labelled injections of every kind."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from spy_analytics import AnomalyKind, analyze
from spy_analytics.synthetic import (
    MAGNITUDES,
    SyntheticMarket,
    listed_expiries,
    strike_grid,
)


def test_listing_looks_like_spy():
    exp = listed_expiries(date(2026, 11, 25))
    dte = [(e - date(2026, 11, 25)).days for e in exp]
    assert dte[0] == 0 and max(dte) <= 365 and max(dte) > 300
    assert all(e.weekday() < 5 for e in exp)
    assert sum(1 for d in dte if d <= 7) >= 5  # dailies
    near = strike_grid(600.0, 3)
    assert np.all(np.diff(near[(near > 580) & (near < 620)]) == 1.0)
    far = strike_grid(600.0, 300)
    assert np.all(np.diff(far[far > 700]) >= 5.0)
    m = SyntheticMarket(0)
    assert 17_000 <= len(m) <= 23_000


def test_same_seed_same_market():
    a, b, c = SyntheticMarket(5), SyntheticMarket(5), SyntheticMarket(6)
    for _ in range(3):
        a.next_snapshot(), b.next_snapshot(), c.next_snapshot()
    inj = {AnomalyKind.BUTTERFLY: 2}
    sa, sb = a.next_snapshot(inj), b.next_snapshot(inj)
    for name in ("bid", "ask", "volume", "open_interest", "quote_ts", "strike"):
        np.testing.assert_array_equal(getattr(sa.snapshot, name), getattr(sb.snapshot, name))
    assert sa.labels == sb.labels and len(sa.labels) == 2
    assert not np.array_equal(sa.snapshot.bid, c.next_snapshot().snapshot.bid, equal_nan=True)


def test_clean_session_has_no_high_anomalies():
    m = SyntheticMarket(11)
    state = prev = None
    for _ in range(8):
        snap = m.next_snapshot().snapshot
        result = analyze(snap, prev, state)
        state, prev = result.baseline, snap
        assert [a for a in result.anomalies if a.severity.value == "HIGH"] == []
        assert result.data_quality.total > 0  # the market also emits bad quotes


@pytest.mark.parametrize("seed", [1, 2])
def test_every_injected_kind_is_labelled_and_detected(seed):
    m = SyntheticMarket(seed)
    state = prev = None
    for _ in range(7):
        snap = m.next_snapshot().snapshot
        result = analyze(snap, prev, state)
        state, prev = result.baseline, snap
    injected = m.next_snapshot(dict.fromkeys(AnomalyKind, 2))
    kinds = {label.kind for label in injected.labels}
    assert kinds == set(AnomalyKind)
    assert all(label.magnitude == MAGNITUDES[label.kind] for label in injected.labels)
    result = analyze(injected.snapshot, prev, state)
    found = {
        (a.kind, a.contract.expiry, a.contract.strike, a.contract.right) for a in result.anomalies
    }
    for label in injected.labels:
        assert (label.kind, label.expiry, label.strike, label.right) in found, label
