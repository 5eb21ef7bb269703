"""SPY-like listing: the expiry calendar and strike grids of the synthetic market.

Who calls this: `spy_analytics.synthetic.market`; tests.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def listed_expiries(today: date, max_dte: int = 365) -> list[date]:
    """SPY-like expiry calendar: dailies to 45 DTE, Friday weeklies to 120, third-Friday
    monthlies and quarter-end business days to ``max_dte``."""
    out: set[date] = set()
    for d in range(max_dte + 1):
        day = today + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        if (
            d <= 45
            or (d <= 120 and day.weekday() == 4)
            or (day.weekday() == 4 and 15 <= day.day <= 21)
        ):
            out.add(day)
    for year in (today.year, today.year + 1):
        for month in (3, 6, 9, 12):
            last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
            while last.weekday() >= 5:
                last -= timedelta(days=1)
            if 0 <= (last - today).days <= max_dte:
                out.add(last)
    return sorted(out)


def strike_grid(spot: float, dte: int) -> FloatArray:
    """Strikes like the SPY listing: $1 near the money, $5 then $10 further out."""
    bands: tuple[tuple[float, float], ...]
    if dte <= 14:
        bands = ((0.12, 1.0), (0.35, 5.0))
    elif dte <= 60:
        bands = ((0.08, 1.0), (0.35, 5.0), (0.50, 10.0))
    elif dte <= 180:
        bands = ((0.05, 1.0), (0.40, 5.0), (0.60, 10.0))
    else:
        bands = ((0.03, 1.0), (0.45, 5.0), (0.70, 10.0))
    strikes: set[float] = set()
    for width, step in bands:
        lo = math.ceil(spot * (1 - width) / step) * step
        hi = math.floor(spot * (1 + width) / step) * step
        strikes.update(np.arange(lo, hi + step / 2, step).tolist())
    return np.array(sorted(strikes), dtype=np.float64)
