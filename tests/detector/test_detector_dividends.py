"""Dividends end to end in the detector: ``SPY_DIVIDENDS`` / ``SPY_DIVIDEND_QUARTERLY``
settings, the analyzer filling a schedule into snapshots that carry none, and
``python -m spy_detector scan`` of an ex-dividend-week American chain (issue 11: the
old continuous-yield bounds raised over a thousand HIGH parity and early-exercise
findings on such a chain)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from spy_analytics import write_snapshot
from spy_analytics.dividends import Dividend, DividendSchedule
from spy_analytics.synthetic.tape import TapeConfig, TapeMarket
from spy_detector.analysis import ChainAnalyzer
from spy_detector.settings import Settings, SettingsError
from spy_detector.spot_history import SpotHistory

BASE = {"SPY_SOURCE": "synthetic"}


def test_dividend_settings_default_to_spy_quarterly_projection() -> None:
    s = Settings.from_env(BASE)
    assert s.dividend_quarterly == 1.85 and not s.dividends
    sched = s.dividend_schedule(date(2026, 12, 11))
    assert sched.dividends[0] == Dividend(date(2026, 12, 18), 1.85)
    assert [d.ex_date.month for d in sched.dividends] == [12, 3, 6, 9]
    assert Settings.from_env({**BASE, "SPY_SYMBOL": "QQQ"}).dividend_quarterly == 0.0


def test_declared_dividend_replaces_its_quarter() -> None:
    env = {**BASE, "SPY_DIVIDENDS": "2026-12-18:1.97, 2027-03-19:1.80"}
    s = Settings.from_env(env)
    sched = s.dividend_schedule(date(2026, 11, 25))
    dec = [d for d in sched.dividends if d.ex_date.month == 12]
    assert dec == [Dividend(date(2026, 12, 18), 1.97)]
    assert Dividend(date(2027, 3, 19), 1.80) in sched.dividends
    none = Settings.from_env({**BASE, "SPY_DIVIDEND_QUARTERLY": "0"})
    assert none.dividend_schedule(date(2026, 11, 25)).dividends == ()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SPY_DIVIDENDS": "2026-12-18"}, "SPY_DIVIDENDS: dividend '2026-12-18'"),
        ({"SPY_DIVIDENDS": "2026-13-18:1.8"}, "bad ex-date"),
        ({"SPY_DIVIDENDS": "2026-12-18:abc"}, "amount is not a number"),
        ({"SPY_DIVIDENDS": "2026-12-18:-1"}, "amount must be a finite number >= 0"),
        ({"SPY_DIVIDEND_QUARTERLY": "-2"}, "SPY_DIVIDEND_QUARTERLY must be a number >= 0"),
        ({"SPY_DIVIDEND_QUARTERLY": "x"}, "SPY_DIVIDEND_QUARTERLY must be a number"),
    ],
)
def test_bad_dividend_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, **env})
    assert needle in str(err.value)


def test_analyzer_fills_in_a_schedule_only_where_the_snapshot_has_none() -> None:
    seen: list[DividendSchedule] = []
    declared = DividendSchedule((Dividend(date(2026, 12, 18), 1.5),))

    def schedule(today: date) -> DividendSchedule:
        return declared

    snap = TapeMarket(1, TapeConfig(regime="ex_dividend", dte_max=10)).next_snapshot().snapshot
    analyzer = ChainAnalyzer(dividends=schedule)
    import spy_detector.analysis as analysis

    real = analysis.analyze

    def spy(s, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(s.dividends)
        return real(s, *a, **kw)

    analysis.analyze = spy  # type: ignore[assignment]
    try:
        analyzer(snap)  # the header's schedule wins
        analyzer(dataclasses.replace(snap, dividends=DividendSchedule()))
        # a stated continuous yield is a dividend model too (the demo feed's): kept
        analyzer(dataclasses.replace(snap, dividends=DividendSchedule(), div_yield=0.013))
    finally:
        analysis.analyze = real
    assert seen == [snap.dividends, declared, DividendSchedule()]


def test_spot_history_keeps_the_tick_in_force_at_the_window_start() -> None:
    h = SpotHistory(keep_s=10.0)
    for when, px in [(0.0, 600.0), (5.0, 600.0), (8.0, 600.1), (7.0, 650.0), (15.0, 600.2)]:
        h.add(when, px)
    times, prices = h.arrays(now=20.0)
    # window [10, 20]: 8.0 is the tick in force at its start; the repeated price and
    # the out-of-order tick were dropped
    assert times.tolist() == [8.0, 15.0]
    assert prices.tolist() == [600.1, 600.2]
    times, _ = h.arrays(now=30.0)
    assert times.tolist() == [15.0]


def _ex_dividend_file(path: Path, with_header_dividends: bool) -> Path:
    market = TapeMarket(3, TapeConfig(regime="ex_dividend"))
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(3):
            snap = market.next_snapshot().snapshot
            if not with_header_dividends:  # as the live gateway records it
                snap = dataclasses.replace(snap, dividends=DividendSchedule())
            write_snapshot(fh, snap)
    return path


@pytest.mark.parametrize("with_header_dividends", [True, False])
def test_scan_of_an_ex_dividend_week_chain_prints_no_high(
    tmp_path: Path, with_header_dividends: bool
) -> None:
    """One week before SPY's December ex-date ($1.90 paid; the header, or the scan's
    default projection, says $1.85), on an American chain priced on a tree: no HIGH
    finding, at most a handful of any severity."""
    path = _ex_dividend_file(tmp_path / "exdiv.jsonl", with_header_dividends)
    out = subprocess.run(
        [sys.executable, "-m", "spy_detector", "scan", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    summary = json.loads(out.stderr.strip().splitlines()[-1])
    assert summary["snapshots"] == 3
    assert [a for a in lines if a["severity"] == "HIGH"] == []
    assert len(lines) <= 3, [a["reason"] for a in lines]
