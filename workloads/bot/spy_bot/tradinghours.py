"""NYSE regular sessions (holidays, half days) from exchange-calendars' XNYS calendar.

``service.Bot`` asks ``is_open(now)`` and hands the answer to the pure risk engine.
A time outside the calendar's data range counts as closed (fail closed).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from functools import lru_cache
from typing import Any

import exchange_calendars as xcals  # type: ignore[import-untyped]
import pandas as pd  # type: ignore[import-untyped]


@lru_cache(maxsize=1)
def _calendar() -> Any:
    # exchange-calendars builds its sessions with pandas APIs that pandas 3 deprecates;
    # the warnings are the library's, not ours, and say nothing about the answers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        return xcals.get_calendar("XNYS")


def is_open(now: datetime) -> bool:
    """True inside a regular NYSE session (09:30-16:00 New York, 13:00 on half days)."""
    cal = _calendar()
    minute = pd.Timestamp(now).tz_convert("UTC").floor("min")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        if minute < cal.first_minute or minute > cal.last_minute:
            return False
        return bool(cal.is_open_on_minute(minute))
