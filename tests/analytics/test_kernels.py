"""Fast kernels equal the plain numpy they replace (issue 11): bit for bit, on every
kind of input the pipeline can give them, NaN and infinities included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from spy_analytics.rule_base import _row_median

_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf]),
)


def _median_by_sort(stack: np.ndarray) -> np.ndarray:
    """The row median as `rule_base` computed it before: sort each row (NaN last),
    then the middle of its finite entries."""
    stack = np.sort(stack, axis=1)
    count = np.sum(np.isfinite(stack), axis=1)
    lo = np.take_along_axis(stack, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(stack, np.maximum(count // 2, 0)[:, None], axis=1)[:, 0]
    return np.where(count > 0, 0.5 * (lo + hi), np.nan)


@settings(max_examples=300, deadline=None)
@given(
    width=st.sampled_from([2, 4, 6, 8, 10]),
    data=st.data(),
)
def test_row_median_equals_the_row_sort(width: int, data: st.DataObject) -> None:
    rows = data.draw(st.integers(min_value=1, max_value=12))
    flat = data.draw(st.lists(_VALUES, min_size=rows * width, max_size=rows * width))
    stack = np.array(flat, dtype=np.float64).reshape(rows, width)
    with np.errstate(all="ignore"):
        got = _row_median([stack[:, j].copy() for j in range(width)], rows)
        want = _median_by_sort(stack)
    # equal values, NaN where NaN (the sign of a zero median may differ: harmless,
    # every caller floors or subtracts it)
    np.testing.assert_array_equal(got, want)


def test_row_median_without_columns_is_nan() -> None:
    assert np.isnan(_row_median([], 3)).all()


def _plain_search(haystack: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.minimum(np.searchsorted(haystack, needles), haystack.size - 1)
    return pos, haystack[pos] == needles


def test_search_keys_reuses_only_answers_to_the_same_keys() -> None:
    from spy_analytics.contracts import build_index, search_keys
    from spy_analytics.synthetic import SyntheticMarket

    snap = SyntheticMarket(3).next_snapshot().snapshot
    index = build_index(snap)
    rng = np.random.default_rng(0)
    keys = np.sort(rng.choice(index.keys, index.keys.size // 2, replace=False))
    for haystack in (keys, keys.copy(), np.sort(np.r_[keys[1:], keys[0] + 1])):
        pos, found = search_keys(haystack, index.keys, index, "test")
        want_pos, want_found = _plain_search(haystack, index.keys)
        np.testing.assert_array_equal(pos, want_pos)
        np.testing.assert_array_equal(found, want_found)
    assert not pos.flags.writeable  # shared with later calls


def test_first_row_is_what_a_key_lookup_finds() -> None:
    from spy_analytics.chain import ChainSnapshot
    from spy_analytics.contracts import build_index
    from spy_analytics.synthetic import SyntheticMarket

    snap = SyntheticMarket(4).next_snapshot().snapshot
    # duplicate rows: the lookup finds the first of them in key order
    snap = snap.take(np.r_[np.arange(len(snap)), np.arange(0, len(snap), 7)])
    assert isinstance(snap, ChainSnapshot)
    index = build_index(snap)
    order = index.key_order
    pos, _found = _plain_search(index.keys[order], index.keys)
    np.testing.assert_array_equal(index.first_row, order[pos])


def test_adjacency_is_recomputed_for_another_usable_mask() -> None:
    from spy_analytics.adjacency import adjacency
    from spy_analytics.contracts import build_index, restrict
    from spy_analytics.synthetic import SyntheticMarket

    snap = SyntheticMarket(5).next_snapshot().snapshot
    index = build_index(snap)
    rng = np.random.default_rng(1)
    for _ in range(3):
        usable = rng.random(len(snap)) < 0.8
        adj = adjacency(index, usable)
        assert adjacency(index, usable.copy()) is adj  # same rows usable: reused
        order = restrict(index.by_pair, usable)
        a, b = order[:-1], order[1:]
        g, k, c = index.group, index.strike, index.is_call
        pair = (g[a] == g[b]) & (k[a] == k[b]) & ~c[a] & c[b]
        np.testing.assert_array_equal(adj.pair_put, a[pair])
        np.testing.assert_array_equal(adj.pair_call, b[pair])
        order = restrict(index.by_maturity, usable)
        near, far = order[:-1], order[1:]
        cal = (k[near] == k[far]) & (c[near] == c[far])
        np.testing.assert_array_equal(adj.calendar_near, near[cal])
        lo = restrict(index.by_strike, usable)
        assert (adj.strike_pos[lo] == np.arange(lo.size)).all()
        a, b, d = lo[:-2], lo[1:-1], lo[2:]
        vert = (g[a] == g[b]) & (c[a] == c[b])
        np.testing.assert_array_equal(
            adj.vertical_lo, lo[:-1][(g[lo[:-1]] == g[lo[1:]]) & (c[lo[:-1]] == c[lo[1:]])]
        )
        fly = vert & (g[a] == g[d]) & (c[a] == c[d])
        np.testing.assert_array_equal(adj.fly_mid, b[fly])
        assert (adj.strike_pos[~usable] == -1).all()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_curve_points_are_sorted_as_by_a_stable_lexsort(data: st.DataObject) -> None:
    from types import SimpleNamespace

    from spy_analytics.curves import _by_expiry_and_moneyness

    n = data.draw(st.integers(min_value=1, max_value=30))
    group = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    strike = np.array(data.draw(st.lists(st.integers(90, 110), min_size=n, max_size=n)), float)
    call = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    # k rises with the strike (the usual case), or is drawn freely (ties, NaN)
    if data.draw(st.booleans()):
        k = np.log(strike / 100.0)
    else:
        k = np.array(data.draw(st.lists(_VALUES, min_size=n, max_size=n)), float)
    rows = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    by_strike = np.lexsort((strike, call, group))  # (expiry, right, strike), stable
    f = SimpleNamespace(adjacent=SimpleNamespace(by_strike=by_strike), group=group, k=k)
    pts = np.flatnonzero(rows)
    with np.errstate(all="ignore"):
        want = pts[np.lexsort((k[pts], group[pts]))]
        got = _by_expiry_and_moneyness(f, rows)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, want)


def test_critical_price_skips_unit_carry_exactly() -> None:
    from spy_analytics.american import _critical_price

    rng = np.random.default_rng(2)
    n = 2000
    k = 600.0 * np.exp(rng.normal(0.0, 0.1, n))
    t = rng.uniform(1.0 / 365.0, 2.0, n)
    v = rng.uniform(0.05, 1.0, n)
    r = 0.043
    q1 = -rng.uniform(1.0, 200.0, n)
    seed = 0.9 * k
    with np.errstate(all="ignore"):
        skipped = _critical_price(seed, k, t, r, 0.0, v, np.sqrt(t), None, q1)
        ones = _critical_price(seed, k, t, r, 0.0, v, np.sqrt(t), np.ones(n), q1)
    np.testing.assert_array_equal(skipped, ones)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_groups_of_a_subset_are_np_unique(data: st.DataObject) -> None:
    from spy_analytics.structure import _groups_of

    n = data.draw(st.integers(min_value=1, max_value=40))
    keys = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    rows = np.flatnonzero(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    uniq_all, rank = np.unique(keys, return_inverse=True)
    present, inv = _groups_of(rank, uniq_all.size, rows)
    want, want_first, want_inv = np.unique(keys[rows], return_index=True, return_inverse=True)
    np.testing.assert_array_equal(uniq_all[present], want)
    np.testing.assert_array_equal(inv, want_inv)
    first = np.full(want.size, rows.size)
    np.minimum.at(first, inv, np.arange(rows.size))
    np.testing.assert_array_equal(first, want_first)
