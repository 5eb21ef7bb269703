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


class _UnderlyingTicker:
    """Stand-in for ib_async's Ticker of the underlying: no live price, a close."""

    def __init__(self, live: float, close: float) -> None:
        self._live = live
        self.close = close

    def marketPrice(self) -> float:  # ib_async naming
        return self._live


def test_snapshot_spot_never_falls_back_to_the_close() -> None:
    import math
    from datetime import UTC, datetime

    from spy_detector.metrics import DetectorMetrics
    from spy_detector.settings import IBSettings
    from spy_detector.sharding import ShardSpec
    from spy_detector.sources.ibkr import IBKRSource

    src = IBKRSource(
        IBSettings(host="127.0.0.1", port=1, client_id=1),
        ShardSpec(0, 1),
        DetectorMetrics(),
        clock=lambda: datetime(2026, 11, 25, 15, 30, tzinfo=UTC),
    )
    src._und_ticker = _UnderlyingTicker(math.nan, 600.0)  # type: ignore[assignment]
    assert src._spot() is None
    # the snapshot is then skipped as bad spot, not priced against yesterday's close
    snap = src._snapshot({})
    assert math.isnan(snap.spot)
    # strike-window discovery may still centre on the close
    assert src._spot(allow_close=True) == 600.0
    src._und_ticker = _UnderlyingTicker(601.5, 600.0)  # type: ignore[assignment]
    assert src._spot() == 601.5
