"""Clean chains of the independent American tape (spy_analytics.synthetic.tape) in the
issue-11 stress regimes: no HIGH finding and at most one of any severity per chain.

On the pre-dividend-model code the ex-dividend week raised thousands of HIGH parity and
early-exercise findings per chain and the lagged spot tens of bound and static-
arbitrage findings (see the report of issue 11)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spy_analytics import AnomalyKind, Severity, analyze
from spy_analytics.dividends import DividendSchedule
from spy_analytics.synthetic.tape import TapeConfig, TapeMarket


def _chains(regime: str, seed: int, n: int, **kw: object):
    market = TapeMarket(seed, TapeConfig(regime=regime, dte_max=30, **kw))  # type: ignore[arg-type]
    state = prev = None
    out = []
    for _ in range(n):
        snap = market.next_snapshot().snapshot
        result = analyze(snap, prev, state)
        state, prev = result.baseline, snap
        out.append(result)
    return out


@pytest.mark.parametrize("regime", ["ex_dividend", "spot_lag", "open", "normal"])
def test_clean_tape_chain_is_quiet(regime: str) -> None:
    for result in _chains(regime, 5, 2):
        assert [a.reason for a in result.anomalies if a.severity is Severity.HIGH] == []
        assert len(result.anomalies) <= 1, [a.reason for a in result.anomalies]


def test_lagged_quotes_without_a_spot_history_widen_the_bounds() -> None:
    """A source that keeps no ticks: the bounds widen by the move since the previous
    snapshot (and 3 sigma over each quote's age), so stale-by-a-second quotes do not
    break them; the second chain has a previous snapshot."""
    results = _chains("spot_lag", 6, 2, spot_history=False)
    assert [a for a in results[1].anomalies if a.severity is Severity.HIGH] == []
    assert len(results[1].anomalies) <= 1


def test_itm_iv_outlier_is_found() -> None:
    """An in-the-money put repriced 8 vol points up (on the tape's own tree): the IV of
    its mid less the estimated early-exercise premium stands out from the smile."""
    market = TapeMarket(8, TapeConfig(dte_max=30))
    snap = market.next_snapshot().snapshot
    now = snap.ts_epoch
    t = snap.time_to_expiry()
    i = int(
        np.flatnonzero(~snap.is_call & (snap.strike == 610.0) & (t * 365 > 10) & (t * 365 < 20))[0]
    )
    j = int(np.flatnonzero(market.keys == snap.contract_keys()[i])[0])
    price = float(market.fair(snap.spot, now, np.array([j]), vol_bump=0.08)[0][0])
    half = 0.5 * (snap.ask[i] - snap.bid[i])
    snap.bid[i], snap.ask[i] = round(price - half, 2), round(price + half, 2)
    snap.quote_ts[i] = now - 0.05
    hits = [
        a
        for a in analyze(snap).anomalies
        if a.kind is AnomalyKind.IV_RESIDUAL and a.contract.strike == 610.0
    ]
    assert hits and hits[0].contract.right == "P"
    assert hits[0].iv - hits[0].fitted_iv == pytest.approx(0.08, abs=0.02)


def test_single_snapshot_spread_blowout_on_penny_quotes() -> None:
    """No baseline yet (the first snapshot of the day): a penny-wide contract quoted
    $0.30 wide is a blow-out against its strike neighbours; the open's market-wide
    widening (every spread x3) is not."""
    snap = _first("normal")
    t = snap.time_to_expiry()
    cand = np.flatnonzero(
        snap.is_call & (snap.ask - snap.bid <= 0.03) & (snap.bid > 0.3) & (t * 365 > 3)
    )
    i = int(cand[len(cand) // 2])
    mid = 0.5 * (snap.bid[i] + snap.ask[i])
    snap.bid[i], snap.ask[i] = round(mid - 0.15, 2), round(mid + 0.15, 2)
    hits = [a for a in analyze(snap).anomalies if a.kind is AnomalyKind.SPREAD_BLOWOUT]
    assert [(a.contract.strike, a.contract.expiry) for a in hits] == [
        (float(snap.strike[i]), str(snap.expiry[i]))
    ]
    wide = _first("normal")
    mids = 0.5 * (wide.bid + wide.ask)
    halves = 1.5 * (wide.ask - wide.bid)
    wide = dataclasses.replace(
        wide, bid=np.round(np.maximum(mids - halves, 0.0), 2), ask=np.round(mids + halves, 2)
    )
    assert [a for a in analyze(wide).anomalies if a.kind is AnomalyKind.SPREAD_BLOWOUT] == []


def _first(regime: str):
    return TapeMarket(9, TapeConfig(regime=regime, dte_max=30)).next_snapshot().snapshot


def test_misstated_dividend_is_absorbed_by_the_implied_forward() -> None:
    """The schedule says $1.50 while $1.90 is paid: the parity-implied forward (with the
    early-exercise correction) absorbs the difference. (Without any schedule the
    detector cannot know that calls across the ex-date are exercised the night before;
    that is why SPY_DIVIDEND_QUARTERLY defaults to SPY's projection.)"""
    snap = TapeMarket(4, TapeConfig(regime="ex_dividend", dte_max=30)).next_snapshot().snapshot
    low = DividendSchedule.spy_projected(snap.ts.date(), 1.50, 1.0)
    result = analyze(dataclasses.replace(snap, dividends=low))
    assert [a for a in result.anomalies if a.severity is Severity.HIGH] == []
    assert len(result.anomalies) <= 2, [a.reason for a in result.anomalies]
