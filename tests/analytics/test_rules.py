"""Every anomaly rule on constructed chains: fires at its documented magnitude, silent on
clean input, switchable by configuration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analytics_chains import DIV, EXPIRIES, RATE, SPOT, TS, clean_chain, later, row
from spy_analytics import AnalyzerConfig, AnomalyKind, Severity, analyze, bsm_price
from spy_analytics.config import SeverityBands
from spy_analytics.rules import severity_of


def _findings(result, kind):
    return [a for a in result.anomalies if a.kind == kind]


def _only(result, kind, snap, i):
    hits = _findings(result, kind)
    assert hits, f"{kind} did not fire"
    right = "C" if snap.is_call[i] else "P"
    match = [
        a
        for a in hits
        if a.contract.strike == snap.strike[i]
        and a.contract.right == right
        and a.contract.expiry == str(snap.expiry[i])
    ]
    assert match, f"{kind} fired on other contracts: {[a.reason for a in hits]}"
    return match[0]


def test_clean_chain_is_silent():
    result = analyze(clean_chain())
    assert result.anomalies == ()
    assert result.data_quality.total == 0


def test_severity_bands():
    bands = SeverityBands(low=1.0, medium=3.0, high=6.0)
    assert severity_of(0.99, bands) is None
    assert severity_of(1.0, bands) is Severity.LOW
    assert severity_of(3.0, bands) is Severity.MEDIUM
    assert severity_of(6.0, bands) is Severity.HIGH
    assert severity_of(math.nan, bands) is None


def test_iv_residual_fires_on_a_repriced_quote():
    snap = clean_chain()
    i = row(snap, EXPIRIES[1], 104.0, "C")
    t = float(snap.time_to_expiry()[i])
    k = snap.strike[i]
    vol = float(0.22 - 0.3 * np.log(k / SPOT) + 1.5 * np.log(k / SPOT) ** 2) + 0.08
    price = float(bsm_price(SPOT, k, t, RATE, DIV, vol, True))
    snap.bid[i], snap.ask[i] = round(price - 0.05, 2), round(price + 0.05, 2)
    a = _only(analyze(snap), AnomalyKind.IV_RESIDUAL, snap, i)
    assert a.severity is Severity.HIGH
    assert a.iv == pytest.approx(vol, abs=0.01)
    assert a.iv - a.fitted_iv == pytest.approx(0.08, abs=0.01)
    assert "sigma above the fitted smile" in a.reason
    # k = ln(K/F) against the parity-implied forward (within quote rounding of the model's)
    assert a.k == pytest.approx(math.log(k / (SPOT * math.exp((RATE - DIV) * t))), abs=1e-4)


@pytest.mark.parametrize(
    ("volume", "oi", "severity"),
    [
        (600.0, 101.0, Severity.HIGH),  # 5.9x
        (600.0, 200.0, Severity.MEDIUM),  # 3x
        (626.0, 500.0, Severity.LOW),  # 1.252x
        (500.0, 101.0, None),  # volume must exceed 500
        (600.0, 100.0, None),  # OI must exceed 100
        (600.0, 500.0, None),  # 1.2x < 1.25
    ],
)
def test_vol_oi_barchart_thresholds(volume, oi, severity):
    snap = clean_chain()
    i = row(snap, EXPIRIES[0], 100.0, "C")
    snap.volume[i], snap.open_interest[i] = volume, oi
    hits = _findings(analyze(snap), AnomalyKind.VOL_OI)
    if severity is None:
        assert hits == []
    else:
        assert [a.severity for a in hits] == [severity]
        assert hits[0].score == pytest.approx(volume / oi, rel=1e-3)


def test_vol_oi_price_floor():
    snap = clean_chain()
    i = row(snap, EXPIRIES[0], 110.0, "C")  # worth a few cents
    snap.volume[i], snap.open_interest[i] = 900.0, 101.0
    snap.bid[i], snap.ask[i], snap.last[i] = 0.05, 0.08, 0.07
    assert _findings(analyze(snap), AnomalyKind.VOL_OI) == []


def _warm(n_steps, volume_step=100.0, spread=None, last_step=None):
    """Run n_steps snapshots with a steady per-snapshot volume, then one more."""
    state = None
    prev = None
    for j in range(n_steps):
        snap = clean_chain(later(TS, j), volume=50.0 + volume_step * j)
        result = analyze(snap, prev, state)
        assert result.anomalies == ()
        state, prev = result.baseline, snap
    final = clean_chain(later(TS, n_steps), volume=50.0 + volume_step * n_steps)
    if last_step is not None:
        last_step(final)
    return final, analyze(final, prev, state)


def test_volume_z_fires_on_a_burst_and_not_on_steady_volume():
    _, steady = _warm(7)
    assert _findings(steady, AnomalyKind.VOLUME_Z) == []
    i_box = {}

    def burst(snap):
        i = row(snap, EXPIRIES[0], 99.0, "P")
        i_box["i"] = i
        # baseline 100 per snapshot, sd floor sqrt(101): +13 sd
        snap.volume[i] += 13.0 * math.sqrt(101.0)

    snap, result = _warm(7, last_step=burst)
    a = _only(result, AnomalyKind.VOLUME_Z, snap, i_box["i"])
    assert a.severity is Severity.HIGH
    assert a.score == pytest.approx(13.0, abs=0.3)


def test_volume_z_needs_a_warm_baseline():
    def burst(snap):
        snap.volume[row(snap, EXPIRIES[0], 99.0, "P")] += 5000.0

    _, result = _warm(3, last_step=burst)
    assert _findings(result, AnomalyKind.VOLUME_Z) == []


def test_spread_blowout_vs_own_baseline():
    box = {}

    def widen(snap):
        i = row(snap, EXPIRIES[1], 95.0, "P")
        box["i"] = i
        mid = 0.5 * (snap.bid[i] + snap.ask[i])
        base = snap.ask[i] - snap.bid[i]
        snap.bid[i], snap.ask[i] = mid - 5 * base, mid + 5 * base  # 10x

    snap, result = _warm(6, last_step=widen)
    a = _only(result, AnomalyKind.SPREAD_BLOWOUT, snap, box["i"])
    assert a.severity is Severity.HIGH
    assert a.score == pytest.approx(10.0, rel=0.1)

    def mild(snap):
        i = row(snap, EXPIRIES[1], 95.0, "P")
        snap.ask[i] += 0.1  # 2x: below the 3x threshold
        box["i"] = i

    _, result = _warm(6, last_step=mild)
    assert _findings(result, AnomalyKind.SPREAD_BLOWOUT) == []


def test_parity_upper_bound_break_attributed_to_the_moved_leg():
    snap = clean_chain()
    c = row(snap, EXPIRIES[0], 95.0, "C")
    p = row(snap, EXPIRIES[0], 95.0, "P")
    t = float(snap.time_to_expiry()[c])
    upper = SPOT - 95.0 * math.exp(-RATE * t)
    shift = upper + 0.40 - (snap.bid[c] - snap.ask[p])
    snap.bid[c] += shift
    snap.ask[c] += shift
    a = _only(analyze(snap), AnomalyKind.PARITY, snap, c)
    assert a.score == pytest.approx(8.0, abs=1e-3)
    assert a.severity is Severity.HIGH
    assert "S - K e^(-rT)" in a.reason


def test_parity_lower_bound_break():
    snap = clean_chain()
    c = row(snap, EXPIRIES[0], 105.0, "C")
    p = row(snap, EXPIRIES[0], 105.0, "P")
    t = float(snap.time_to_expiry()[c])
    lower = SPOT * math.exp(-DIV * t) - 105.0
    brk = lower - (snap.ask[c] - snap.bid[p])
    shift = 0.20 - brk  # $0.20 break -> score 4 -> MEDIUM
    snap.bid[p] += shift
    snap.ask[p] += shift
    a = _only(analyze(snap), AnomalyKind.PARITY, snap, p)
    assert a.severity is Severity.MEDIUM
    # S - PV(D) comes from the parity-implied forward of penny-rounded quotes
    assert a.score == pytest.approx(4.0, abs=0.05)  # within $0.0025


def test_early_exercise_ask_below_intrinsic():
    snap = clean_chain()
    i = row(snap, EXPIRIES[1], 108.0, "P")
    spread = snap.ask[i] - snap.bid[i]
    snap.ask[i] = 8.0 - 0.40  # intrinsic K - S = 8
    snap.bid[i] = snap.ask[i] - spread
    a = _only(analyze(snap), AnomalyKind.EARLY_EXERCISE, snap, i)
    assert a.score == pytest.approx(8.0, abs=1e-3)
    assert a.severity is Severity.HIGH


def test_call_spread_monotonicity_break():
    snap = clean_chain()
    lo = row(snap, EXPIRIES[0], 101.0, "C")
    hi = row(snap, EXPIRIES[0], 102.0, "C")
    shift = snap.ask[lo] + 0.40 - snap.bid[hi]
    snap.bid[hi] += shift
    snap.ask[hi] += shift
    a = _only(analyze(snap), AnomalyKind.CALL_SPREAD, snap, hi)
    assert a.score == pytest.approx(0.40 / 0.03, abs=1e-3)
    assert a.severity is Severity.HIGH
    assert "not monotone" in a.reason


def test_butterfly_convexity_break():
    snap = clean_chain()
    a_, b, c = (row(snap, EXPIRIES[1], k, "P") for k in (96.0, 97.0, 98.0))
    shift = 0.5 * snap.ask[a_] + 0.5 * snap.ask[c] + 0.20 - snap.bid[b]
    snap.bid[b] += shift
    snap.ask[b] += shift
    result = analyze(snap)
    hit = _only(result, AnomalyKind.BUTTERFLY, snap, b)
    assert hit.score == pytest.approx(0.20 / 0.03, abs=1e-3)
    assert hit.severity is Severity.HIGH


def test_calendar_inversion():
    snap = clean_chain()
    near = row(snap, EXPIRIES[0], 100.0, "P")
    far = row(snap, EXPIRIES[1], 100.0, "P")
    spread = snap.ask[far] - snap.bid[far]
    snap.ask[far] = snap.bid[near] - 0.15
    snap.bid[far] = snap.ask[far] - spread
    a = _only(analyze(snap), AnomalyKind.CALENDAR, snap, far)
    assert a.score == pytest.approx(5.0, abs=1e-3)
    assert a.severity is Severity.MEDIUM


def test_rules_can_be_switched_off_and_thresholds_overridden():
    snap = clean_chain()
    i = row(snap, EXPIRIES[0], 100.0, "C")
    snap.volume[i], snap.open_interest[i] = 600.0, 101.0
    assert _findings(analyze(snap), AnomalyKind.VOL_OI)
    off = AnalyzerConfig().with_overrides({"vol_oi.enabled": False})
    assert _findings(analyze(snap, config=off), AnomalyKind.VOL_OI) == []
    strict = AnalyzerConfig().with_overrides({"vol_oi.min_volume": 1000})
    assert _findings(analyze(snap, config=strict), AnomalyKind.VOL_OI) == []
    with pytest.raises(KeyError):
        AnalyzerConfig().with_overrides({"vol_oi.min_volum": 1})


def _bound_hits(result):
    return [
        a for a in result.anomalies if a.kind in (AnomalyKind.PARITY, AnomalyKind.EARLY_EXERCISE)
    ]


def _spot_moved(snap, move):
    import dataclasses

    # the underlying has been at the new level all along (its history says so), so
    # quotes of the old level are genuinely off it
    spot = snap.spot * (1.0 + move)
    return dataclasses.replace(snap, spot=spot, spot_px=np.full(snap.spot_px.shape, spot))


def test_bound_rules_skip_quotes_older_than_the_spot():
    """Spot moved 1% since the option quotes: with quotes 30 s old (inside the 300 s
    stale screen) the spot-dependent bounds must not fire; with fresh quotes a
    genuine break still does."""
    moved = _spot_moved(clean_chain(), 0.01)
    assert _bound_hits(analyze(moved)), "the moved spot breaks bounds on fresh quotes"
    old = _spot_moved(clean_chain(), 0.01)
    old.quote_ts[:] = TS.timestamp() - 30.0
    result = analyze(old)
    assert _bound_hits(result) == []
    assert "stale" not in result.data_quality.counts, "30 s is not stale, only not fresh"
    # one leg old is enough to skip a put-call pair; a fresh contract is still tested
    snap = clean_chain()
    i = row(snap, EXPIRIES[1], 108.0, "P")
    spread = snap.ask[i] - snap.bid[i]
    snap.ask[i] = 8.0 - 0.40
    snap.bid[i] = snap.ask[i] - spread
    snap.quote_ts[:] = TS.timestamp() - 30.0
    snap.quote_ts[i] = TS.timestamp() - 2.0
    a = _only(analyze(snap), AnomalyKind.EARLY_EXERCISE, snap, i)
    assert a.severity is Severity.HIGH
    cfg = AnalyzerConfig().with_overrides({"bounds.max_quote_age_s": 60.0})
    assert _bound_hits(analyze(old, config=cfg)), "the window is configurable"


def test_bound_rules_without_quote_times():
    # no quote times at all (synthetic/replay files): every contract is tested
    none = _spot_moved(clean_chain(), 0.01)
    none.quote_ts[:] = math.nan
    assert _bound_hits(analyze(none))
    # some quote times: a contract without one is not tested
    some = _spot_moved(clean_chain(), 0.01)
    some.quote_ts[:] = math.nan
    some.quote_ts[0] = TS.timestamp() - 60.0
    assert _bound_hits(analyze(some)) == []
