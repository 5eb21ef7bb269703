"""NYSE trading calendar: full-day holidays and business-day arithmetic.

Who calls this: `spy_analytics.dividends` (a projected ex-date that falls on a holiday
moves to the previous trading day) and the synthetic markets (no expiry is listed on
a holiday: the Good Friday monthly expires on the Thursday, as the OCC does).

Rules (NYSE Rule 7.2, the holidays observed since 2022): New Year's Day, Martin
Luther King Jr. Day (3rd Monday of January), Washington's Birthday (3rd Monday of
February), Good Friday, Memorial Day (last Monday of May), Juneteenth (June 19),
Independence Day, Labor Day (1st Monday of September), Thanksgiving (4th Thursday of
November), Christmas. A holiday on a Saturday is observed on the Friday before, on a
Sunday on the Monday after, except that New Year's Day on a Saturday is not moved
into the previous year. Early closes (13:00) are not modelled.

>>> sorted(d.isoformat() for d in nyse_holidays(2026))[:4]
['2026-01-01', '2026-01-19', '2026-02-16', '2026-04-03']
>>> previous_trading_day(date(2026, 4, 3)).isoformat()  # Good Friday
'2026-04-02'
"""

from __future__ import annotations

import functools
from datetime import date, timedelta


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month = (h + m - 7 * n + 114) // 31
    day = (h + m - 7 * n + 114) % 31 + 1
    return date(year, month, day)


def _observed(d: date) -> date:
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


@functools.cache
def nyse_holidays(year: int) -> frozenset[date]:
    """Full-day NYSE holidays of ``year`` (rules in the module docstring)."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 6, 19)),  # Juneteenth
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not observed
        days.add(_observed(new_year))
    return frozenset(days)


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in nyse_holidays(d.year)


def previous_trading_day(d: date) -> date:
    """``d`` itself when it is a trading day, else the trading day before it."""
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def third_friday(year: int, month: int) -> date:
    return _nth_weekday(year, month, 4, 3)
