"""Sharded detectors' GEX/flow parts merged by the backend, against real Azurite.

The parts are what three detector shards publish for one synthetic snapshot
(`spy_detector.sharding.result_wire`); the one-shard records of the same snapshot are
posted under another symbol, and /gex and /flow must answer the same values for both.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from spy_analytics import AnomalyKind, analyze
from spy_analytics.synthetic import SyntheticConfig, SyntheticMarket
from spy_detector.sharding import ShardSpec, result_wire, shard_snapshot

from .conftest import Backend

SHARDS = 3
DAY = {"start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z"}


def _wires() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(one-shard wire, the three shards' wires) after two snapshots (flow needs one)."""
    config = dataclasses.replace(
        SyntheticConfig(), start=datetime(2026, 11, 24, 15, tzinfo=UTC), interval_s=60.0
    )
    market = SyntheticMarket(3, config)
    snaps = [market.next_snapshot(dict.fromkeys(AnomalyKind, 1)).snapshot for _ in range(2)]
    wires = []
    for shard in [ShardSpec(0, 1)] + [ShardSpec(i, SHARDS) for i in range(SHARDS)]:
        prev = state = None
        for snap in snaps:
            mine = shard_snapshot(snap, shard)
            result = analyze(mine, prev, state)
            prev, state = mine, result.baseline
        wires.append(result_wire(result, shard, 0.08))
    return wires[0], wires[1:]


def _latest(backend: Backend, resource: str, symbol: str) -> list[dict[str, Any]]:
    response = backend.client.get(f"/api/v1/{resource}", params={**DAY, "symbol": symbol})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_three_shards_merge_into_the_one_shard_record(backend: Backend) -> None:
    whole, shards = _wires()
    one = {k: [{**whole[k][0], "symbol": "ONE"}] for k in ("gex", "flow")}
    assert backend.ingest(one).status_code == 200

    for i, wire in enumerate(shards):
        if i == SHARDS - 1:
            # incomplete rounds are not served: no wrong (partial) net GEX or flow
            assert _latest(backend, "gex", "SPY") == []
            assert _latest(backend, "flow", "SPY") == []
        response = backend.ingest({"gex": wire["gex"], "flow": wire["flow"]})
        assert response.status_code == 200, response.text

    [gex] = _latest(backend, "gex", "SPY")
    [want] = _latest(backend, "gex", "ONE")
    assert gex["ts"] == want["ts"] and "shard" not in gex
    assert gex["strikes"] == want["strikes"]
    assert gex["gex"] == pytest.approx(want["gex"], rel=1e-9, abs=1e-3)
    assert gex["net_gex"] == pytest.approx(want["net_gex"], rel=1e-9)
    assert want["flip"] is not None
    assert gex["flip"] == pytest.approx(want["flip"], rel=1e-9)

    [flow] = _latest(backend, "flow", "SPY")
    [want_flow] = _latest(backend, "flow", "ONE")
    for key in ("call_premium", "put_premium", "net_premium", "put_call_volume_ratio"):
        assert flow[key] == pytest.approx(want_flow[key], rel=1e-9), key


def test_a_retried_part_is_merged_once(backend: Backend) -> None:
    _, shards = _wires()
    for wire in shards:
        assert backend.ingest({"gex": wire["gex"]}).status_code == 200
    # the last shard's batch again (the publisher retries after a lost answer)
    assert backend.ingest({"gex": shards[-1]["gex"]}).status_code == 200
    assert len(_latest(backend, "gex", "SPY")) == 1


@pytest.mark.parametrize(
    "shard",
    [{"index": 3, "count": 3}, {"index": -1, "count": 2}, {"index": 0, "count": 33}],
)
def test_bad_shard_ids_are_refused_with_the_field(backend: Backend, shard: dict[str, int]):
    _, shards = _wires()
    part = {**shards[0]["gex"][0], "shard": shard}
    response = backend.ingest({"gex": [part]})
    assert response.status_code == 422
    assert "shard" in response.text


def test_parts_whose_sum_breaks_the_bounds_are_a_422_not_a_500(backend: Backend) -> None:
    """Each part valid (600 strikes), the merged record not (1,200 > 1,000 strikes)."""

    def part(index: int) -> dict[str, Any]:
        strikes = [float(100 + 2 * i + index) for i in range(600)]
        return {
            "ts": "2026-11-24T15:00:00Z", "symbol": "SPY", "spot": 600.0,
            "strikes": strikes, "gex": [1.0] * 600, "net_gex": 600.0, "flip": None,
            "shard": {"index": index, "count": 2},
            "flip_curve": {"range": 0.08, "net": [1.0, 1.0, 1.0]},
        }  # fmt: skip

    assert backend.ingest({"gex": [part(0)]}).status_code == 200
    response = backend.ingest({"gex": [part(1)]})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "gex", 0] and "strikes" in error["msg"]
    assert _latest(backend, "gex", "SPY") == []
