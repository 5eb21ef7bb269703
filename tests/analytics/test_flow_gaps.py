"""Premium flow is per interval: volume traded across a gap (a reconnect, a stalled
feed) is not shown as one interval's flow, nor sampled by volume_z (issue 11, Flow)."""

from __future__ import annotations

import pytest
from analytics_chains import EXPIRIES, TS, clean_chain, later, row
from spy_analytics import AnomalyKind, analyze


def _traded(minutes: int, contracts: float = 5000.0):
    snap = clean_chain(later(TS, minutes))
    c = row(snap, EXPIRIES[0], 101.0, "C")
    snap.volume[c] += contracts
    snap.last[c] = snap.ask[c]
    return snap, c


def test_a_gap_is_not_one_intervals_flow() -> None:
    prev = clean_chain()
    gap_minutes = 10  # structure.max_increment_gap_s is 300 s
    snap, _ = _traded(gap_minutes)
    result = analyze(snap, previous=prev)
    assert result.flow.call_premium == 0.0 and result.flow.put_premium == 0.0
    assert result.flow.net_premium == 0.0
    assert not [a for a in result.anomalies if a.kind is AnomalyKind.VOLUME_Z]
    # session volumes (the P/C ratio) are not increments: still reported
    assert result.flow.put_call_volume_ratio is not None

    # the next interval counts only what traded in it
    nxt = clean_chain(later(TS, gap_minutes + 1))
    nxt.volume[:] = snap.volume
    c = row(nxt, EXPIRIES[0], 101.0, "C")
    nxt.volume[c] += 10.0
    nxt.last[c] = nxt.ask[c]
    flow = analyze(nxt, previous=snap, baseline=result.baseline).flow
    assert flow.call_premium == pytest.approx(10 * nxt.ask[c] * 100)


def test_the_gap_is_configurable() -> None:
    from spy_analytics.config import DEFAULT_CONFIG

    assert DEFAULT_CONFIG.structure.max_increment_gap_s == 300.0
    cfg = DEFAULT_CONFIG.with_overrides({"structure.max_increment_gap_s": 3600})
    snap, c = _traded(10)
    flow = analyze(snap, previous=clean_chain(), config=cfg).flow
    assert flow.call_premium == pytest.approx(5000 * snap.ask[c] * 100)


def test_a_regular_interval_counts() -> None:
    snap, c = _traded(1)
    flow = analyze(snap, previous=clean_chain()).flow
    assert flow.call_premium == pytest.approx(5000 * snap.ask[c] * 100)
