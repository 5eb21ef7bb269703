"""Discrete cash dividends of the underlying and what they do to forwards and bounds.

Who calls this: `ChainSnapshot` carries a `DividendSchedule` (the detector's
``SPY_DIVIDENDS`` settings, or a snapshot file's header); `spy_analytics.frame` turns
it into each expiry's model forward and the American bounds of `spy_analytics.rules`;
the synthetic markets pay them.

Model (Hull, *Options, Futures, and Other Derivatives*, §15.12 and §21.3, the
"escrowed dividend" model; Haug, *Complete Guide*, §9.1). A dividend ``D_i`` with
ex-date ``t_i`` counts for an option expiring at ``T`` when ``now < t_i <= T``
(the stock opens ex-dividend at 09:30 New York on the ex-date, so an option expiring
that afternoon has lost it)::

    PV(D) = sum_i D_i e^{-r (t_i - now)}
    F     = (S - PV(D)) e^{rT}          (forward; a continuous yield q multiplies e^{-qT})

SPY pays quarterly; its ex-date is the third Friday of March, June, September and
December (the previous trading day when that is a holiday), about $1.70-$1.97 a share
in 2024-2025. `DividendSchedule.spy_projected` projects that calendar with one amount.

>>> s = DividendSchedule.parse("2026-12-18:1.85,2027-03-19:1.80")
>>> [(d.ex_date.isoformat(), d.amount) for d in s.dividends]
[('2026-12-18', 1.85), ('2027-03-19', 1.8)]
>>> s = DividendSchedule.spy_projected(date(2026, 11, 25), 1.85, 1)  # 2027-06-18: Juneteenth
>>> [d.ex_date.isoformat() for d in s.dividends]
['2026-12-18', '2027-03-19', '2027-06-17', '2027-09-17']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray

from .exchange_clock import exchange_tz
from .nyse_calendar import previous_trading_day, third_friday

FloatArray = NDArray[np.float64]
SECONDS_PER_YEAR = 365.0 * 86400.0
_OPEN = time(9, 30)


@dataclass(frozen=True, order=True)
class Dividend:
    """One cash dividend: ex-date and USD per share."""

    ex_date: date
    amount: float


@dataclass(frozen=True)
class DividendSchedule:
    """Cash dividends sorted by ex-date (empty: none known; a continuous yield may
    still be given with the snapshot)."""

    dividends: tuple[Dividend, ...] = ()

    def __post_init__(self) -> None:
        for d in self.dividends:
            if not (d.amount >= 0.0 and np.isfinite(d.amount)):
                raise ValueError(f"dividend {d.ex_date}: amount must be >= 0, got {d.amount}")
        object.__setattr__(self, "dividends", tuple(sorted(self.dividends)))

    def __bool__(self) -> bool:
        return bool(self.dividends)

    @classmethod
    def parse(cls, text: str) -> DividendSchedule:
        """``"YYYY-MM-DD:AMOUNT,..."`` (the ``SPY_DIVIDENDS`` format); ValueError names
        the entry that is wrong and why."""
        out = []
        for raw in (part.strip() for part in text.split(",")):
            if not raw:
                continue
            day, sep, amount = raw.partition(":")
            if not sep:
                raise ValueError(f"dividend {raw!r}: expected YYYY-MM-DD:AMOUNT")
            try:
                ex = date.fromisoformat(day.strip())
            except ValueError as exc:
                raise ValueError(f"dividend {raw!r}: bad ex-date ({exc})") from exc
            try:
                value = float(amount)
            except ValueError as exc:
                raise ValueError(f"dividend {raw!r}: amount is not a number") from exc
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"dividend {raw!r}: amount must be a finite number >= 0")
            out.append(Dividend(ex, value))
        return cls(tuple(out))

    @classmethod
    def spy_projected(cls, start: date, amount: float, years: float = 2.0) -> DividendSchedule:
        """SPY's quarterly calendar from ``start`` for ``years``, each paying ``amount``."""
        out = []
        end = start + timedelta(days=int(365 * years))
        for year in range(start.year, end.year + 1):
            for month in (3, 6, 9, 12):
                ex = previous_trading_day(third_friday(year, month))
                if start <= ex <= end and amount > 0.0:
                    out.append(Dividend(ex, amount))
        return cls(tuple(out))

    def merged(self, explicit: DividendSchedule) -> DividendSchedule:
        """``explicit`` dividends replace this schedule's in the same calendar month
        (a declared dividend overrides the projection of its quarter)."""
        months = {(d.ex_date.year, d.ex_date.month) for d in explicit.dividends}
        keep = [d for d in self.dividends if (d.ex_date.year, d.ex_date.month) not in months]
        return DividendSchedule(tuple(keep) + explicit.dividends)

    def to_json(self) -> list[dict[str, object]]:
        return [{"ex_date": d.ex_date.isoformat(), "amount": d.amount} for d in self.dividends]

    @classmethod
    def from_json(cls, items: object) -> DividendSchedule:
        if not isinstance(items, list):
            raise ValueError("dividends must be a list of {ex_date, amount}")
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("dividends must be a list of {ex_date, amount}")
            out.append(Dividend(date.fromisoformat(str(item["ex_date"])), float(item["amount"])))
        return cls(tuple(out))

    def ex_epochs(self) -> tuple[FloatArray, FloatArray]:
        """(ex-time as epoch seconds at the 09:30 New York open, amount) arrays."""
        ex = np.array([_open_epoch(d.ex_date) for d in self.dividends], dtype=np.float64)
        amt = np.array([d.amount for d in self.dividends], dtype=np.float64)
        return ex, amt


def pv_dividends(
    schedule: DividendSchedule, now: float, until: FloatArray, rate: float
) -> FloatArray:
    """``sum D_i e^{-r (t_i - now)}`` over ex-times ``now < t_i <= until`` (epochs)."""
    until = np.asarray(until, dtype=np.float64)
    if not schedule:
        return np.zeros(until.shape)
    ex, amt = schedule.ex_epochs()
    live = ex > now
    ex, amt = ex[live], amt[live]
    pv_each = amt * np.exp(-rate * (ex - now) / SECONDS_PER_YEAR)
    # cumulative PV up to each ex-time, looked up by how many ex-times precede `until`
    cum = np.concatenate([[0.0], np.cumsum(pv_each)])
    count = np.searchsorted(ex, until, side="right")
    out: FloatArray = cum[count]
    return out


def last_dividend(
    schedule: DividendSchedule, now: float, until: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each ``until``: (seconds from now to the last ex-time before it (NaN if
    none), that dividend's amount (0 if none), PV-free sum of the dividends before it).

    Black's pseudo-American call (Hull §15.12) compares exercising just before this
    ex-time with holding to expiry."""
    until = np.asarray(until, dtype=np.float64)
    nan = np.full(until.shape, np.nan)
    if not schedule:
        return nan, np.zeros(until.shape), np.zeros(until.shape)
    ex, amt = schedule.ex_epochs()
    live = ex > now
    ex, amt = ex[live], amt[live]
    count = np.searchsorted(ex, until, side="right")
    has = count > 0
    j = np.maximum(count - 1, 0)
    if ex.size == 0:
        return nan, np.zeros(until.shape), np.zeros(until.shape)
    cum = np.concatenate([[0.0], np.cumsum(amt)])
    t_last = np.where(has, ex[j] - now, np.nan)
    a_last = np.where(has, amt[j], 0.0)
    before = np.where(has, cum[j], 0.0)
    return t_last, a_last, before


@functools.lru_cache(maxsize=1024)
def _open_epoch(day: date) -> float:
    tz = exchange_tz()
    if tz is None:  # no tz database: 09:30 EST (14:30 UTC) - off by an hour in summer
        return datetime.combine(day, time(14, 30), tzinfo=UTC).timestamp()
    return datetime.combine(day, _OPEN, tzinfo=tz).timestamp()
