"""The whole pipeline's output: wire shapes, stable ids, smiles, GEX, flow, baselines."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from analytics_chains import EXPIRIES, TS, clean_chain, later, row
from spy_analytics import analyze


def test_wire_shapes_match_docs_wire_format():
    snap = clean_chain()
    i = row(snap, EXPIRIES[0], 100.0, "C")
    snap.volume[i], snap.open_interest[i] = 600.0, 101.0
    wire = analyze(snap).to_wire()
    assert set(wire) == {"anomalies", "market", "gex", "flow"}
    json.dumps(wire, allow_nan=False)  # plain JSON, no NaN
    (a,) = wire["anomalies"]
    assert set(a) == {
        "id",
        "ts",
        "symbol",
        "kind",
        "severity",
        "score",
        "reason",
        "contract",
        "iv",
        "fitted_iv",
        "k",
    }
    assert a["ts"] == "2026-11-25T15:00:00Z"
    assert a["contract"] == {"expiry": EXPIRIES[0], "strike": 100.0, "right": "C"}
    key = f"vol_oi|SPY|{EXPIRIES[0]}|100.00|C|2026-11-25T15:00:00.000000Z"
    assert a["id"] == hashlib.sha1(key.encode()).hexdigest()
    (m,) = wire["market"]
    assert set(m) == {"ts", "symbol", "spot", "bad_quotes", "expiries"}
    e = m["expiries"][0]
    assert set(e) == {"expiry", "t", "atm_iv", "points", "fit"}
    assert len(e["points"]["k"]) == len(e["points"]["iv"]) > 5
    assert e["atm_iv"] == pytest.approx(0.22, abs=0.01)
    (g,) = wire["gex"]
    assert set(g) == {"ts", "symbol", "spot", "strikes", "gex", "net_gex", "flip"}
    assert len(g["strikes"]) == len(g["gex"]) == 21
    (f,) = wire["flow"]
    assert set(f) == {
        "ts",
        "symbol",
        "call_premium",
        "put_premium",
        "net_premium",
        "put_call_volume_ratio",
    }


def test_ids_are_stable_across_runs():
    snap = clean_chain()
    snap.volume[row(snap, EXPIRIES[0], 100.0, "C")] = 5000.0
    first = [a.id for a in analyze(snap).anomalies]
    second = [a.id for a in analyze(snap).anomalies]
    assert first == second and first


def test_smile_fit_recovers_the_generating_smile():
    result = analyze(clean_chain())
    for curve in result.market.expiries:
        k = np.array(curve.fit_k)
        truth = 0.22 - 0.3 * k + 1.5 * k * k
        assert np.max(np.abs(np.array(curve.fit_iv) - truth)) < 0.005


def test_gex_signs_and_flip():
    snap = clean_chain()
    snap.open_interest[~snap.is_call] = 1.0  # almost only calls: dealers long gamma
    result = analyze(snap)
    assert result.gex.net_gex > 0
    assert all(v > 0 for v in result.gex.gex)
    assert result.gex.flip is None  # no sign change anywhere on the grid
    # puts OI above spot and calls OI below: net GEX changes sign near spot
    snap = clean_chain()
    snap.open_interest[:] = 1.0
    snap.open_interest[snap.is_call & (snap.strike <= 98)] = 5000.0
    snap.open_interest[~snap.is_call & (snap.strike >= 102)] = 5000.0
    flip = analyze(snap).gex.flip
    assert flip is not None and 97.0 < flip < 103.0


def test_premium_flow_gross_and_signed():
    prev = clean_chain()
    snap = clean_chain(later(TS, 1))
    c = row(snap, EXPIRIES[0], 101.0, "C")
    p = row(snap, EXPIRIES[0], 99.0, "P")
    snap.volume[c] += 100.0
    snap.last[c] = snap.ask[c]  # calls bought at the ask: bullish
    snap.volume[p] += 10.0
    snap.last[p] = snap.bid[p]  # puts sold at the bid: bullish too
    flow = analyze(snap, previous=prev).flow
    assert flow.call_premium == pytest.approx(100 * snap.ask[c] * 100)  # gross, >= 0
    assert flow.put_premium == pytest.approx(10 * snap.bid[p] * 100)
    assert flow.call_signed == pytest.approx(flow.call_premium)
    assert flow.put_signed == pytest.approx(-flow.put_premium)
    assert flow.net_premium == pytest.approx(flow.call_premium + flow.put_premium)
    assert flow.put_call_volume_ratio == pytest.approx(
        snap.volume[~snap.is_call].sum() / snap.volume[snap.is_call].sum()
    )
    # the opposite trades flip the sign of the net flow, not of the gross premiums
    snap.last[c] = snap.bid[c]
    snap.last[p] = snap.ask[p]
    flow = analyze(snap, previous=prev).flow
    assert flow.call_premium > 0 and flow.put_premium > 0
    assert flow.net_premium == pytest.approx(-(flow.call_premium + flow.put_premium))


def test_market_record_respects_backend_limits():
    from spy_analytics.synthetic import SyntheticMarket

    snap = SyntheticMarket(4).next_snapshot().snapshot
    (market,) = analyze(snap).to_wire()["market"]
    assert len(market["expiries"]) == 32
    dates = [e["expiry"] for e in market["expiries"]]
    assert dates == sorted(dates) and dates[-1] > "2027-09-01"  # spans the term structure
    for e in market["expiries"]:
        assert len(e["points"]["k"]) == len(e["points"]["iv"]) <= 256
        assert all(0 <= v <= 10 for v in e["points"]["iv"] + e["fit"]["iv"])


def test_baseline_carries_over_and_counts_samples():
    state = None
    prev = None
    for j in range(3):
        snap = clean_chain(later(TS, j), volume=10.0 * j)
        result = analyze(snap, prev, state)
        state, prev = result.baseline, snap
    assert len(state) == len(snap)
    assert np.all(state.inc_n == 2)
    assert np.allclose(state.inc_mean, 10.0)
    assert np.all(state.spread_n == 3)
    # a contract missing from one snapshot keeps its baseline
    partial = snap.take(np.arange(len(snap)) != 0)
    state2 = analyze(partial, None, state).baseline
    assert len(state2) == len(snap)


def test_expired_contracts_leave_the_baseline():
    from datetime import timedelta

    state = analyze(clean_chain()).baseline
    assert len(state) == 84
    # a month later the first expiry is gone from the chain and from the state
    later_ts = TS + timedelta(days=31)
    snap = clean_chain(later_ts)
    live = snap.take(snap.expiry > np.datetime64(later_ts.date().isoformat()))
    state2 = analyze(live, None, state).baseline
    assert len(state2) == 42


def test_parity_implied_forward_absorbs_a_misstated_dividend_yield():
    from spy_analytics import AnalyzerConfig, ChainSnapshot
    from spy_analytics.frame import build_frame

    good = clean_chain()
    # the feed claims no dividend while the quotes carry the true 1% yield
    wrong = ChainSnapshot.from_arrays(
        **{
            name: getattr(good, name)
            for name in (
                "ts",
                "symbol",
                "spot",
                "rate",
                "expiry",
                "strike",
                "is_call",
                "bid",
                "ask",
                "last",
                "volume",
                "open_interest",
                "quote_ts",
            )
        },
        div_yield=0.0,
    )
    t = good.time_to_expiry()
    true_fwd = good.spot * np.exp((good.rate - good.div_yield) * t)
    implied = build_frame(wrong, AnalyzerConfig())
    # within quote rounding ($0.005 per leg) of the true forward ...
    np.testing.assert_allclose(implied.fwd, true_fwd, rtol=5e-5)
    naive = build_frame(
        wrong, AnalyzerConfig().with_overrides({"forward.implied_from_parity": False})
    )
    np.testing.assert_allclose(naive.fwd, good.spot * np.exp(good.rate * t))
    # ... where the feed's carry is off by q T (0.08% and 0.16%: > 15x more)
    assert np.min(np.abs(naive.fwd / true_fwd - 1.0)) > 7.5e-4
    # with the implied forward the smile is the generating one; without, ATM is off
    fitted = analyze(wrong).market.expiries
    for curve in fitted:
        k = np.array(curve.fit_k)
        assert np.max(np.abs(np.array(curve.fit_iv) - (0.22 - 0.3 * k + 1.5 * k * k))) < 0.005


def test_gex_matches_the_formula_for_a_single_contract():
    from spy_analytics import bsm_greeks
    from spy_analytics.frame import build_frame

    snap = clean_chain()
    snap.open_interest[:] = 1e-9  # effectively nothing ...
    i = row(snap, EXPIRIES[0], 102.0, "C")
    snap.open_interest[i] = 1000.0  # ... except one call
    result = analyze(snap)
    f = build_frame(snap, __import__("spy_analytics").AnalyzerConfig())
    t = float(snap.time_to_expiry()[i])
    gamma = float(
        bsm_greeks(100.0, 102.0, t, snap.rate, float(f.carry[i]), float(f.fit_iv[i]), True).gamma
    )
    expected = gamma * 1000.0 * 100.0 * 100.0**2 * 0.01
    j = result.gex.strikes.index(102.0)
    assert result.gex.gex[j] == pytest.approx(expected, rel=1e-6)
    assert result.gex.net_gex == pytest.approx(expected, rel=1e-3)
