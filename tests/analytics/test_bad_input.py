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


IB_UNSET = 1.7976931348623157e308  # IB's UNSET_DOUBLE


def test_ib_unset_sentinels_are_bad_quotes_and_the_wire_stays_finite():
    import json

    from analytics_chains import later

    prev = clean_chain()
    snap = clean_chain(ts=later(TS, 1), volume=150.0)  # 100 contracts traded everywhere
    bad = {
        "bad_price": [(EXPIRIES[0], 100.0, "P"), (EXPIRIES[0], 101.0, "P")],
        "bad_volume": [(EXPIRIES[0], 102.0, "P"), (EXPIRIES[0], 103.0, "C")],
    }
    last_inf = row(snap, *bad["bad_price"][0])
    last_unset = row(snap, *bad["bad_price"][1])
    oi_unset = row(snap, *bad["bad_volume"][0])
    vol_huge = row(snap, *bad["bad_volume"][1])
    snap.last[last_inf] = math.inf
    snap.last[last_unset] = IB_UNSET
    snap.open_interest[oi_unset] = IB_UNSET
    snap.volume[vol_huge] = 2e8
    result = analyze(snap, previous=prev)
    assert dict(result.data_quality.counts) == {"bad_price": 2, "bad_volume": 2}
    flow, gex = result.flow, result.gex
    for v in (flow.call_premium, flow.put_premium, flow.net_premium, gex.net_gex):
        assert math.isfinite(v)
    assert flow.put_call_volume_ratio is not None
    assert math.isfinite(flow.put_call_volume_ratio)
    assert all(math.isfinite(g) for g in gex.gex)
    json.dumps(result.to_wire(), allow_nan=False)  # strict JSON, as httpx sends it
    # a NaN last is "no trade yet", not a bad quote
    snap2 = clean_chain(ts=later(TS, 1))
    snap2.last[:] = math.nan
    assert analyze(snap2, previous=prev).data_quality.counts == {}


def test_wire_is_finite_even_if_the_numbers_are_not():
    import dataclasses
    import json

    result = analyze(clean_chain())
    broken = dataclasses.replace(
        result,
        flow=dataclasses.replace(
            result.flow, call_premium=math.inf, put_premium=math.nan, net_premium=-math.inf
        ),
        gex=dataclasses.replace(
            result.gex, gex=(math.inf, -math.inf, math.nan, 1.0), net_gex=math.nan, flip=math.inf
        ),
    )
    wire = broken.to_wire()
    json.dumps(wire, allow_nan=False)
    (f,) = wire["flow"]
    assert (f["call_premium"], f["put_premium"], f["net_premium"]) == (0.0, 0.0, 0.0)
    (g,) = wire["gex"]
    assert g["gex"][:3] == [0.0, 0.0, 0.0] and g["net_gex"] == 0.0 and g["flip"] is None
