"""Bad market data is skipped and counted by reason: never an exception, never an anomaly."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from analytics_chains import EXPIRIES, TS, clean_chain, row
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spy_analytics import ChainSnapshot, analyze


def _contracts(result):
    return {(a.contract.expiry, a.contract.strike, a.contract.right) for a in result.anomalies}


def test_each_bad_quote_is_counted_under_its_reason():
    snap = clean_chain()
    bad = {
        "non_finite": (EXPIRIES[0], 100.0, "C"),
        "negative": (EXPIRIES[0], 101.0, "C"),
        "crossed": (EXPIRIES[0], 102.0, "C"),
        "zero_quote": (EXPIRIES[0], 103.0, "C"),
        "locked": (EXPIRIES[0], 104.0, "C"),
        "stale": (EXPIRIES[0], 105.0, "C"),
        "zero_oi": (EXPIRIES[0], 106.0, "C"),
        "bad_volume": (EXPIRIES[0], 107.0, "C"),
    }
    idx = {name: row(snap, *key) for name, key in bad.items()}
    snap.bid[idx["non_finite"]] = math.inf
    snap.ask[idx["negative"]] = -1.0
    snap.bid[idx["crossed"]] = snap.ask[idx["crossed"]] + 0.5
    snap.bid[idx["zero_quote"]] = 0.0
    snap.bid[idx["locked"]] = snap.ask[idx["locked"]]
    snap.quote_ts[idx["stale"]] = TS.timestamp() - 3600.0
    snap.open_interest[idx["zero_oi"]] = 0.0
    snap.volume[idx["bad_volume"]] = math.nan
    result = analyze(snap)
    assert dict(result.data_quality.counts) == dict.fromkeys(bad, 1)
    assert result.market.bad_quotes == len(bad)
    assert not (_contracts(result) & set(bad.values()))


def test_missing_fields_duplicates_and_expired_expiries_from_records():
    records = clean_chain().to_records()
    good = len(records)
    records.append({"strike": 100.0, "right": "C", "bid": 1.0, "ask": 1.1})  # no expiry
    records.append({"expiry": EXPIRIES[0], "strike": "abc", "right": "C"})  # bad strike
    records.append({"expiry": EXPIRIES[0], "strike": 100.0, "right": "X"})  # bad right
    records.append(dict(records[0]))  # duplicate contract
    records.append(dict(records[1], expiry="2026-11-20"))  # expired
    records.append({"expiry": EXPIRIES[1], "strike": 100.0, "right": "P"})  # no prices
    snap = ChainSnapshot.from_records(
        records, ts=TS, symbol="SPY", spot=100.0, rate=0.04, div_yield=0.01
    )
    assert len(snap) == good + 3
    result = analyze(snap)
    counts = dict(result.data_quality.counts)
    assert counts["missing_field"] == 3
    assert counts["duplicate"] >= 1
    assert counts["expired"] == 1
    assert counts["non_finite"] >= 1
    assert result.anomalies == ()


def test_bad_spot_skips_the_whole_snapshot_without_raising():
    for spot in (math.nan, 0.0, -5.0, math.inf):
        snap = clean_chain()
        object.__setattr__(snap, "spot", spot)
        result = analyze(snap)
        assert result.anomalies == ()
        assert result.data_quality.counts == {"bad_spot": len(snap)}
        assert result.to_wire() == {"anomalies": [], "market": [], "gex": [], "flow": []}


def test_empty_snapshot():
    snap = ChainSnapshot.from_records([], ts=TS, symbol="SPY", spot=100.0)
    result = analyze(snap)
    assert result.anomalies == ()
    assert result.market.expiries == ()


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -1.0, 0.01, 1.0, 5.0]),
)


@settings(max_examples=60, deadline=None)
@given(
    bid=hnp.arrays(np.float64, 84, elements=values),
    ask=hnp.arrays(np.float64, 84, elements=values),
    volume=hnp.arrays(np.float64, 84, elements=values),
    oi=hnp.arrays(np.float64, 84, elements=values),
    qts=hnp.arrays(np.float64, 84, elements=values),
    spot=st.floats(allow_nan=True, allow_infinity=True),
)
def test_garbage_never_raises_and_never_becomes_an_anomaly(bid, ask, volume, oi, qts, spot):
    base = clean_chain()
    snap = ChainSnapshot.from_arrays(
        ts=datetime(2026, 11, 25, 15, tzinfo=UTC),
        symbol="SPY",
        spot=spot,
        rate=0.04,
        div_yield=0.01,
        expiry=base.expiry,
        strike=base.strike,
        is_call=base.is_call,
        bid=bid,
        ask=ask,
        volume=volume,
        open_interest=oi,
        quote_ts=qts,
    )
    result = analyze(snap, previous=base)
    wire = result.to_wire()
    for a in wire["anomalies"]:
        i = row(snap, a["contract"]["expiry"], a["contract"]["strike"], a["contract"]["right"])
        assert np.isfinite(snap.bid[i]) and np.isfinite(snap.ask[i])
        assert 0.0 < snap.bid[i] < snap.ask[i]
    counted = sum(result.data_quality.counts.values())
    assert counted <= len(snap)


def test_missing_open_interest_can_be_kept_for_price_rules():
    from spy_analytics import AnalyzerConfig

    snap = clean_chain()
    snap.open_interest[:] = np.nan
    strict = analyze(snap)
    assert strict.data_quality.counts == {"bad_volume": len(snap)}
    lenient = analyze(
        snap, config=AnalyzerConfig().with_overrides({"quality.skip_missing_volume_oi": False})
    )
    assert lenient.data_quality.total == 0
    assert len(lenient.market.expiries) == 2  # smiles still fitted
    assert lenient.gex.strikes == ()  # no OI, no GEX
    snap.open_interest[:] = -1.0  # negative is never kept
    assert analyze(
        snap, config=AnalyzerConfig().with_overrides({"quality.skip_missing_volume_oi": False})
    ).data_quality.counts == {"bad_volume": len(snap)}
