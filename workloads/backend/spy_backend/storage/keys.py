"""Pure key design of the tables (documented in docs/backend.md).

PartitionKey = `<SYMBOL>_<YYYYMMDD>` of the New York trading day, so the dashboard's
queries (one symbol, recent hours) are single-partition range scans.
RowKey = `<inverted microseconds, 16 digits>_<record id>`: lexical order is newest
first, and the id makes the key unique and stable, which makes ingest idempotent.
A query cursor is `<YYYYMMDD>_<RowKey>`: the day and the last row a page looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MICROS = 10**16 - 1  # year 2286: after every timestamp the models accept


def trading_day(ts: datetime) -> date:
    """The New York calendar day of a timestamp (SPY's session day)."""
    return ts.astimezone(NEW_YORK).date()


def partition_key(symbol: str, day: date) -> str:
    return f"{symbol}_{day:%Y%m%d}"


def partition_day(pk: str) -> date:
    return datetime.strptime(pk.rsplit("_", 1)[1], "%Y%m%d").date()


def inverted(ts: datetime) -> str:
    """16-digit inverted microsecond timestamp: later times sort first."""
    micros = (ts - EPOCH) // timedelta(microseconds=1)
    return f"{MAX_MICROS - micros:016d}"


def row_key(ts: datetime, record_id: str) -> str:
    return f"{inverted(ts)}_{record_id}"


def row_range(start: datetime, end: datetime) -> tuple[str, str]:
    """RowKey bounds [low, high) selecting start <= ts <= end."""
    return inverted(end), inverted(start) + "~"  # '~' sorts after '_<id>'


CURSOR_PATTERN = r"^[0-9]{8}_[0-9]{16}_[0-9a-f]{40}$"
_CURSOR = re.compile(CURSOR_PATTERN[1:-1])
# Before every real RowKey of a day: a cursor at (day, FIRST_ROW) resumes at its start.
FIRST_ROW = "0" * 16 + "_" + "0" * 40


def day_text(day: date) -> str:
    return f"{day:%Y%m%d}"


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: the trading day (YYYYMMDD) and the last RowKey
    looked at in it; the next page starts strictly after it.

    Text form `<YYYYMMDD>_<RowKey>`, so the spec's pattern says exactly which cursors
    are accepted: any text of that shape positions a query (days are compared as text,
    never parsed), so none of them is refused.
    """

    day: str
    rk: str

    def encode(self) -> str:
        return f"{self.day}_{self.rk}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor from a query string; ValueError when it is not one of ours."""
        if not _CURSOR.fullmatch(text):
            raise ValueError("cursor is not valid")
        return cls(day=text[:8], rk=text[9:])
