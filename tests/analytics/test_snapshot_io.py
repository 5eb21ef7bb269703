"""Snapshot files (JSONL): round trip, several snapshots, labels and malformed lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from analytics_chains import TS, clean_chain
from spy_analytics import AnomalyKind, ChainSnapshot, read_snapshot, read_snapshots, write_snapshot
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


@pytest.mark.parametrize(
    ("expiry", "close_utc"),
    [
        ("2026-07-17", datetime(2026, 7, 17, 20, 0, tzinfo=UTC)),  # EDT: 16:00 = 20:00 UTC
        ("2026-12-18", datetime(2026, 12, 18, 21, 0, tzinfo=UTC)),  # EST: 16:00 = 21:00 UTC
        ("2026-03-06", datetime(2026, 3, 6, 21, 0, tzinfo=UTC)),  # before the March switch
        ("2026-03-09", datetime(2026, 3, 9, 20, 0, tzinfo=UTC)),  # after it
        ("2026-11-02", datetime(2026, 11, 2, 21, 0, tzinfo=UTC)),  # after the November one
    ],
)
def test_expiry_cutoff_is_16_00_new_york(expiry: str, close_utc: datetime) -> None:
    from spy_analytics.exchange_clock import _close_epoch, _us_dst, expiry_close_epoch

    # a 0DTE snapshot taken 30 minutes before the close
    ts = close_utc - timedelta(minutes=30)
    snap = ChainSnapshot.from_arrays(
        ts=ts,
        symbol="SPY",
        spot=600.0,
        rate=0.04,
        div_yield=0.01,
        expiry=[expiry, expiry, "2027-01-15"],
        strike=[600.0, 600.0, 600.0],
        is_call=[True, False, True],
        bid=[1.0, 1.0, 1.0],
        ask=[1.1, 1.1, 1.1],
    )
    t = snap.time_to_expiry()
    assert t[0] * 365 * 86400 == pytest.approx(1800.0)
    assert t[1] == t[0]
    assert float(expiry_close_epoch(np.array([expiry], dtype="datetime64[D]"))[0]) == (
        close_utc.timestamp()
    )
    # the hand-written US rule (used without a tz database) agrees with zoneinfo
    day = int(np.datetime64(expiry, "D").astype(np.int64))
    offset = 4 if _us_dst(close_utc.date()) else 5
    assert day * 86400.0 + (16 + offset) * 3600.0 == _close_epoch(day)
