"""Snapshot files (JSONL): round trip, several snapshots, labels and malformed lines."""

from __future__ import annotations

import io

import numpy as np
import pytest
from analytics_chains import TS, clean_chain
from spy_analytics import AnomalyKind, read_snapshot, read_snapshots, write_snapshot
from spy_analytics.synthetic import SyntheticMarket


def test_round_trip(tmp_path):
    snap = clean_chain()
    snap.bid[0] = np.nan
    path = tmp_path / "chain.jsonl"
    with open(path, "w") as fh:
        write_snapshot(fh, snap)
    back = read_snapshot(path)
    assert back.ts == TS and back.symbol == "SPY" and back.spot == snap.spot
    assert back.rate == snap.rate and back.div_yield == snap.div_yield
    for name in ("strike", "bid", "ask", "last", "volume", "open_interest", "quote_ts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(snap, name))
    np.testing.assert_array_equal(back.expiry, snap.expiry)
    np.testing.assert_array_equal(back.is_call, snap.is_call)


def test_recording_with_labels_and_malformed_lines():
    buf = io.StringIO()
    m = SyntheticMarket(3)
    first = m.next_snapshot()
    second = m.next_snapshot({AnomalyKind.CALENDAR: 1})
    write_snapshot(buf, first.snapshot)
    write_snapshot(buf, second.snapshot, [lab.to_json() for lab in second.labels])
    buf.write("{not json\n")
    snaps = list(read_snapshots(buf.getvalue().splitlines()))
    assert len(snaps) == 2
    assert len(snaps[1]) == len(second.snapshot)
    assert snaps[1].rejected == {"malformed_line": 1}
    assert snaps[0].ts < snaps[1].ts


def test_read_snapshot_without_header_fails_clearly():
    with pytest.raises(ValueError, match="no snapshot header"):
        read_snapshot(['{"type": "quote"}'])


def test_record_cli_writes_a_replayable_session(tmp_path):
    from spy_analytics.record import main

    path = tmp_path / "session.jsonl"
    assert main([str(path), "--seed", "2", "--steps", "2", "--inject-every", "2"]) == 0
    snaps = list(read_snapshots(path))
    assert len(snaps) == 2
    labels = [line for line in path.read_text().splitlines() if '"type":"label"' in line]
    assert len(labels) == len(AnomalyKind)
