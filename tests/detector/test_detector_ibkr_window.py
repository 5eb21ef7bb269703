"""Pure helpers of the IBKR source: DTE window, strike window, rotation batches."""

from __future__ import annotations

from datetime import date

import pytest
from spy_detector.sources.ibkr import (
    expiries_in_window,
    ib_expiry_to_iso,
    rotation_batches,
    strikes_in_window,
)


def test_expiries_in_window_by_dte() -> None:
    today = date(2026, 11, 25)
    exps = ["20261219", "20261125", "20261124", "20270115", "20261126"]
    assert expiries_in_window(exps, today, 0, 30) == ["20261125", "20261126", "20261219"]
    assert expiries_in_window(exps, today, 1, 60) == ["20261126", "20261219", "20270115"]


def test_strikes_in_window() -> None:
    strikes = [500.0, 540.0, 595.0, 600.0, 605.0, 660.0, 661.0, 600.0]
    assert strikes_in_window(strikes, 600.0, 0.10) == [540.0, 595.0, 600.0, 605.0, 660.0]


@pytest.mark.parametrize(("n", "lines", "sizes"), [(0, 5, []), (5, 5, [5]), (12, 5, [5, 5, 2])])
def test_rotation_batches(n: int, lines: int, sizes: list[int]) -> None:
    batches = rotation_batches(list(range(n)), lines)
    assert [len(b) for b in batches] == sizes
    assert [x for b in batches for x in b] == list(range(n))


def test_iso_expiry() -> None:
    assert ib_expiry_to_iso("20261219") == "2026-12-19"
