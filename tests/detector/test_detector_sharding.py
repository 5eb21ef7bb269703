"""Shard selection: shard i of n owns the expiries whose sorted index % n == i."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spy_analytics import ChainSnapshot
from spy_detector.sharding import ShardConfigError, ShardSpec, select_expiries, shard_snapshot

EXPIRIES = ["2026-12-19", "2026-11-27", "2026-12-05", "2027-01-16", "2026-12-12"]


@pytest.mark.parametrize(
    ("index", "count", "expected"),
    [
        (0, 1, ["2026-11-27", "2026-12-05", "2026-12-12", "2026-12-19", "2027-01-16"]),
        (0, 2, ["2026-11-27", "2026-12-12", "2027-01-16"]),
        (1, 2, ["2026-12-05", "2026-12-19"]),
        (2, 3, ["2026-12-12"]),
        (4, 5, ["2027-01-16"]),
        (5, 6, []),
    ],
)
def test_select_expiries(index: int, count: int, expected: list[str]) -> None:
    assert select_expiries(EXPIRIES, ShardSpec(index, count)) == expected


@given(
    expiries=st.lists(st.dates().map(lambda d: d.isoformat()), max_size=40),
    count=st.integers(min_value=1, max_value=8),
)
def test_shards_partition_the_chain(expiries: list[str], count: int) -> None:
    parts = [select_expiries(expiries, ShardSpec(i, count)) for i in range(count)]
    flat = [e for p in parts for e in p]
    assert sorted(flat) == sorted(set(expiries)), "every expiry owned exactly once"
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1, "balanced"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ShardSpec(0, 1)),
        ({"HOSTNAME": "spy-detector-2", "SPY_SHARD_COUNT": "3"}, ShardSpec(2, 3)),
        ({"HOSTNAME": "spy-detector-12", "SPY_SHARD_COUNT": "16"}, ShardSpec(12, 16)),
        ({"HOSTNAME": "laptop", "SPY_SHARD_COUNT": "2"}, ShardSpec(0, 2)),
        ({"HOSTNAME": "d-2", "SPY_SHARD_INDEX": "1", "SPY_SHARD_COUNT": "3"}, ShardSpec(1, 3)),
    ],
)
def test_shard_from_env(env: dict[str, str], expected: ShardSpec) -> None:
    assert ShardSpec.from_env(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"HOSTNAME": "spy-detector-3", "SPY_SHARD_COUNT": "3"},  # ordinal beyond count
        {"SPY_SHARD_COUNT": "0"},
        {"SPY_SHARD_COUNT": "two"},
        {"SPY_SHARD_INDEX": "-1", "SPY_SHARD_COUNT": "2"},
    ],
)
def test_shard_env_errors(env: dict[str, str]) -> None:
    with pytest.raises(ShardConfigError):
        ShardSpec.from_env(env)


def test_shard_snapshot_keeps_owned_and_context_expiries() -> None:
    exp = np.array(["2026-12-19", "2026-11-27", "2026-12-05", "2026-11-27"], dtype="datetime64[D]")
    snap = ChainSnapshot.from_arrays(
        ts=datetime(2026, 11, 25, 15, tzinfo=UTC),
        symbol="SPY",
        spot=600.0,
        rate=0.04,
        div_yield=0.01,
        expiry=exp,
        strike=[600.0, 600.0, 605.0, 610.0],
        is_call=[True, True, False, False],
        bid=[1.0, 2.0, 3.0, 4.0],
        ask=[1.1, 2.1, 3.1, 4.1],
    )
    mine = shard_snapshot(snap, ShardSpec(0, 2))  # sorted: 11-27 (0), 12-05 (1), 12-19 (2)
    # owned 0 and 2, and 1 (the expiry after 0) as read-only context for calendars
    assert sorted(set(mine.expiry.astype(str))) == ["2026-11-27", "2026-12-05", "2026-12-19"]
    assert mine.context_expiries == {"2026-12-05"}
    assert len(mine) == 4
    other = shard_snapshot(snap, ShardSpec(1, 2))
    assert sorted(set(other.expiry.astype(str))) == ["2026-12-05", "2026-12-19"]
    assert other.context_expiries == {"2026-12-19"}
    assert shard_snapshot(snap, ShardSpec(0, 1)) is snap
