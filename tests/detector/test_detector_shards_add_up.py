"""Shards add up (issue 11 item 5): n shards analysed apart and merged give the one-shard
GEX, flip, flow and findings, calendars across shard boundaries included.

Pure tests: the shards' snapshots come from `sharding.shard_snapshot`, their parts
from `sharding.result_wire` and the merge is `spy_analytics.shards` - the functions the
detector and the backend run. The backend path (Azurite) is in
tests/backend/test_shard_parts.py, the whole platform in test_detector_shards_cluster.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest
from detector_chains import EXPIRIES, flat_chain
from spy_analytics import AnalysisResult, AnomalyKind, ChainSnapshot, analyze
from spy_analytics.shards import complete, merge_flow, merge_gex
from spy_analytics.synthetic import SyntheticConfig, SyntheticMarket
from spy_detector.sharding import ShardSpec, context_expiries, result_wire, shard_snapshot

FLIP_RANGE = 0.08


def _session(n_shards: int, snapshots: list[ChainSnapshot]) -> list[AnalysisResult]:
    """Each shard's last result after analysing every snapshot in order."""
    out = []
    for index in range(n_shards):
        prev = state = None
        for snap in snapshots:
            mine = shard_snapshot(snap, ShardSpec(index, n_shards))
            result = analyze(mine, prev, state)
            prev, state = mine, result.baseline
        out.append(result)
    return out


@pytest.fixture(scope="module")
def synthetic_session() -> list[ChainSnapshot]:
    config = dataclasses.replace(
        SyntheticConfig(), start=datetime(2026, 11, 24, 15, tzinfo=UTC), interval_s=60.0
    )
    market = SyntheticMarket(7, config)
    every_kind = dict.fromkeys(AnomalyKind, 1)
    return [market.next_snapshot(every_kind).snapshot for _ in range(3)]


@pytest.mark.parametrize("n_shards", [2, 3, 5])
def test_merged_parts_equal_one_shard(synthetic_session: list[ChainSnapshot], n_shards: int):
    [whole] = _session(1, synthetic_session)
    parts = _session(n_shards, synthetic_session)
    wires = [result_wire(r, ShardSpec(i, n_shards), FLIP_RANGE) for i, r in enumerate(parts)]
    gex_parts = [w["gex"][0] for w in wires]
    flow_parts = [w["flow"][0] for w in wires]
    assert complete(gex_parts) and complete(flow_parts)

    gex, want = merge_gex(gex_parts), whole.gex.to_wire()
    assert gex["strikes"] == want["strikes"]
    assert gex["gex"] == pytest.approx(want["gex"], rel=1e-9, abs=1e-3)
    assert gex["net_gex"] == pytest.approx(want["net_gex"], rel=1e-9)
    assert want["flip"] is not None
    assert gex["flip"] == pytest.approx(want["flip"], rel=1e-9)
    # no single shard has the chain's figures (the bug: each showed its own)
    assert all(p["net_gex"] != pytest.approx(want["net_gex"], rel=1e-3) for p in gex_parts)

    flow, want_flow = merge_flow(flow_parts), whole.flow.to_wire()
    for key in ("call_premium", "put_premium", "net_premium", "put_call_volume_ratio"):
        assert flow[key] == pytest.approx(want_flow[key], rel=1e-9), key


@pytest.mark.parametrize("n_shards", [2, 3])
def test_findings_add_up_calendars_included(
    synthetic_session: list[ChainSnapshot], n_shards: int
) -> None:
    """Every finding of the one-shard run is reported by exactly one shard, and no shard
    reports one the whole chain does not have (context expiries are read-only)."""
    [whole] = _session(1, synthetic_session)
    parts = _session(n_shards, synthetic_session)
    ids = [a.id for r in parts for a in r.anomalies]
    assert sorted(ids) == sorted(a.id for a in whole.anomalies)
    calendars = [a for a in whole.anomalies if a.kind is AnomalyKind.CALENDAR]
    assert calendars, "the injected calendar breaks are found"


def _calendar_break_between(snap: ChainSnapshot, near: str, far: str) -> ChainSnapshot:
    """The near 600 call bid above the far one's ask: a calendar inversion."""
    bid, ask = snap.bid.copy(), snap.ask.copy()
    expiry = snap.expiry.astype(str)
    at = (snap.strike == 600.0) & snap.is_call
    far_ask = float(ask[at & (expiry == far)][0])
    i = np.flatnonzero(at & (expiry == near))[0]
    bid[i], ask[i] = far_ask + 0.40, far_ask + 0.50
    return dataclasses.replace(snap, bid=bid, ask=ask)


@pytest.mark.parametrize("n_shards", [2, 3])
def test_calendar_across_a_shard_boundary_found_once(n_shards: int) -> None:
    """Adjacent expiries sit on different shards (index modulo n); the break between the
    2nd and 3rd expiry is reported once, as on one shard."""
    snap = _calendar_break_between(flat_chain(), EXPIRIES[1], EXPIRIES[2])
    [whole] = _session(1, [snap])
    want = [a.id for a in whole.anomalies if a.kind is AnomalyKind.CALENDAR]
    assert want, "one shard finds the inversion"
    parts = _session(n_shards, [snap])
    got = [a.id for r in parts for a in r.anomalies if a.kind is AnomalyKind.CALENDAR]
    assert sorted(got) == sorted(want)


def test_context_is_the_next_expiry_of_each_owned_one() -> None:
    assert context_expiries(EXPIRIES, ShardSpec(0, 1)) == []
    assert context_expiries(EXPIRIES, ShardSpec(0, 2)) == [EXPIRIES[1], EXPIRIES[3]]
    assert context_expiries(EXPIRIES, ShardSpec(1, 2)) == [EXPIRIES[2]]
    assert context_expiries(EXPIRIES, ShardSpec(2, 3)) == [EXPIRIES[3]]
    part = shard_snapshot(flat_chain(), ShardSpec(1, 3))
    assert sorted(set(part.expiry.astype(str))) == [EXPIRIES[1], EXPIRIES[2]]
    assert part.context_expiries == {EXPIRIES[2]}


def test_parts_carry_shard_and_one_shard_publishes_whole_records() -> None:
    snap = flat_chain()
    [whole] = _session(1, [snap])
    plain = result_wire(whole, ShardSpec(0, 1), FLIP_RANGE)
    assert "shard" not in plain["gex"][0] and "shard" not in plain["flow"][0]
    [_, part] = _session(2, [snap])
    wire = result_wire(part, ShardSpec(1, 2), FLIP_RANGE)
    assert wire["gex"][0]["shard"] == {"index": 1, "count": 2}
    assert wire["gex"][0]["flip_curve"]["range"] == FLIP_RANGE
    assert len(wire["gex"][0]["flip_curve"]["net"]) == 33
    assert wire["flow"][0]["shard"] == {"index": 1, "count": 2}
    assert wire["flow"][0]["call_volume"] > 0


def _part(index: int, count: int, strikes: list[float], gex: list[float], net: list[float]):
    return {
        "ts": "2026-11-25T15:00:00.000000Z",
        "symbol": "SPY",
        "spot": 600.0,
        "strikes": strikes,
        "gex": gex,
        "net_gex": sum(gex),
        "flip": None,
        "shard": {"index": index, "count": count},
        "flip_curve": {"range": 0.1, "net": net},
    }


def test_merge_gex_sums_per_strike_and_finds_the_flip_on_the_summed_curve() -> None:
    # neither curve changes sign alone; their sum does, between 600 and 660
    a = _part(0, 2, [590.0, 600.0], [1.0, 2.0], [-3.0, -1.0, 2.0])
    b = _part(1, 2, [600.0, 610.0], [4.0, -8.0], [-1.0, -1.0, -1.0])
    merged = merge_gex([a, b])
    assert merged["strikes"] == [590.0, 600.0, 610.0]
    assert merged["gex"] == [1.0, 6.0, -8.0]
    assert merged["net_gex"] == -1.0
    # summed curve at 540/600/660: -4, -2, +1 -> zero at 600 + 60 * 2/3
    assert merged["flip"] == pytest.approx(640.0)
    assert "shard" not in merged
    # another grid (a shard on another configuration): no flip rather than a wrong one
    c = {**b, "flip_curve": {"range": 0.08, "net": [-1.0, -1.0, -1.0]}}
    assert merge_gex([a, c])["flip"] is None


def test_complete_needs_every_index_of_one_count() -> None:
    a, b = _part(0, 2, [], [], [0.0, 0.0]), _part(1, 2, [], [], [0.0, 0.0])
    assert complete([a, b]) and complete([b, a])
    assert not complete([a])
    assert not complete([a, _part(1, 3, [], [], [0.0, 0.0])])
    assert not complete([a, a])
