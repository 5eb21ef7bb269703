"""The exchange's clock: options expire at the 16:00 America/New_York close.

`expiry_close_epoch` turns expiry dates into the epoch second of that close (20:00 UTC
under EDT, 21:00 UTC under EST), falling back to the US daylight-saving rule when the
machine has no timezone database. Used by `chain` (time to expiry), `contracts` (per
expiry group), `dividends` (the session open) and the synthetic markets.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Options stop trading at 16:00 America/New_York: 20:00 UTC under EDT, 21:00 UTC
#: under EST. `expiry_close_epoch` resolves it per expiry date; this is only the
#: fallback for dates outside what ``datetime`` can represent.
EXPIRY_CUTOFF_SECONDS = 20 * 3600
EXCHANGE_TZ = "America/New_York"
_CLOSE_HOUR = 16


@functools.cache
def exchange_tz() -> tzinfo | None:
    """America/New_York, or None when the machine has no timezone database."""
    try:
        return ZoneInfo(EXCHANGE_TZ)
    except ZoneInfoNotFoundError:
        return None


def expiry_close_epoch(expiry: NDArray[np.datetime64]) -> FloatArray:
    """Epoch seconds of 16:00 America/New_York on each expiry date (20:00 UTC in
    summer, 21:00 UTC in winter); computed once per distinct date."""
    days = np.asarray(expiry).astype("datetime64[D]").astype(np.int64)
    uniq, inv = np.unique(days, return_inverse=True)
    closes = np.array([_close_epoch(int(d)) for d in uniq], dtype=np.float64)
    out: FloatArray = closes[inv.reshape(days.shape)]
    return out


@functools.lru_cache(maxsize=4096)
def _close_epoch(day: int) -> float:
    try:
        d = date(1970, 1, 1) + timedelta(days=day)
    except (OverflowError, ValueError):
        return float(day) * 86400.0 + EXPIRY_CUTOFF_SECONDS
    tz = exchange_tz()
    if tz is not None:
        return datetime(d.year, d.month, d.day, _CLOSE_HOUR, tzinfo=tz).timestamp()
    # no timezone database: the US rule since 2007 (EDT from the second Sunday of
    # March to the first Sunday of November; the switch is at 02:00, before the close)
    offset_h = 4 if _us_dst(d) else 5
    return float(day) * 86400.0 + (_CLOSE_HOUR + offset_h) * 3600.0


def _us_dst(d: date) -> bool:
    def nth_sunday(month: int, n: int) -> date:
        first = date(d.year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))

    return nth_sunday(3, 2) <= d < nth_sunday(11, 1)
