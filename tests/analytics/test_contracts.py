"""`ContractIndex`: what depends only on the contract set is computed once per set,
reused across snapshots, and never reused for another set (it would mis-group or
mis-sort contracts silently)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from analytics_chains import clean_chain, later
from spy_analytics import analyze
from spy_analytics.chain import contract_keys
from spy_analytics.contracts import _cache, build_index, contract_index, restrict
from spy_analytics.synthetic import SyntheticMarket


def test_same_contracts_new_quotes_reuse_the_index():
    snap = clean_chain()
    moved = dataclasses.replace(
        snap, ts=later(snap.ts, 1), bid=snap.bid + 0.01, ask=snap.ask + 0.01
    )
    assert contract_index(moved) is contract_index(snap)


@pytest.mark.parametrize("change", ["strike", "is_call", "expiry"])
def test_a_changed_contract_set_gets_its_own_index(change):
    snap = clean_chain()
    first = contract_index(snap)
    values = getattr(snap, change).copy()
    if change == "strike":
        values[0] += 0.5
    elif change == "is_call":
        values[0] = ~values[0]
    else:
        values[0] = values[0] + np.timedelta64(7, "D")
    other = dataclasses.replace(snap, **{change: values})
    index = contract_index(other)
    assert index is not first
    np.testing.assert_array_equal(
        index.keys, contract_keys(other.expiry, other.strike, other.is_call)
    )
    np.testing.assert_array_equal(index.by_pair, build_index(other).by_pair)


def test_the_index_is_a_copy_not_a_view_of_the_snapshot():
    snap = clean_chain()
    index = contract_index(snap)
    strikes = snap.strike.copy()
    snap.strike[0] += 1.0  # a source reusing its buffers
    try:
        assert contract_index(snap) is not index
        np.testing.assert_array_equal(index.strike, strikes)
    finally:
        snap.strike[0] -= 1.0


def test_restricted_order_equals_a_stable_sort_of_the_subset():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 50, 2_000)
    mask = rng.random(2_000) < 0.6
    order = np.argsort(keys, kind="stable")
    sub = np.flatnonzero(mask)
    np.testing.assert_array_equal(restrict(order, mask), sub[np.argsort(keys[sub], kind="stable")])


def test_analysis_is_the_same_with_a_cold_and_a_warm_cache():
    market = SyntheticMarket(5)
    snaps = [market.next_snapshot().snapshot for _ in range(3)]

    def run():
        state = prev = None
        out = []
        for snap in snaps:
            result = analyze(snap, prev, state)
            state, prev = result.baseline, snap
            out.append(result.to_wire())
        return out, state

    _cache.clear()
    cold, cold_state = run()
    warm, warm_state = run()  # every index now comes from the cache
    assert cold == warm
    np.testing.assert_array_equal(cold_state.keys, warm_state.keys)
    np.testing.assert_array_equal(cold_state.inc_n, warm_state.inc_n)
