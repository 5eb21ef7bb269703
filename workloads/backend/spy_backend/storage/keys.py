"""Pure key design of the tables (documented in docs/backend.md).

PartitionKey = `<SYMBOL>_<YYYYMMDD>` of the New York trading day, so the dashboard's
queries (one symbol, recent hours) are single-partition range scans.
RowKey = `<inverted microseconds, 16 digits>_<record id>`: lexical order is newest
first, and the id makes the key unique and stable, which makes ingest idempotent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MICROS = 10**16 - 1  # year 2286: after every timestamp the models accept
# Used with fullmatch: `$` would also accept a trailing newline.
_PK = re.compile(r"[A-Z][A-Z0-9.]{0,9}_[0-9]{8}")
_RK = re.compile(r"[0-9]{16}_[0-9a-f]{40}")


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


def days_newest_first(start: datetime, end: datetime) -> list[date]:
    first, last = trading_day(start), trading_day(end)
    return [last - timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: the last returned (PartitionKey, RowKey)."""

    pk: str
    rk: str

    def encode(self) -> str:
        raw = json.dumps({"pk": self.pk, "rk": self.rk}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor from a query string; ValueError when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise ValueError("cursor is not valid") from exc
        if not isinstance(data, dict):
            raise ValueError("cursor is not valid")
        pk, rk = data.get("pk"), data.get("rk")
        if not (
            isinstance(pk, str) and isinstance(rk, str) and _PK.fullmatch(pk) and _RK.fullmatch(rk)
        ):
            raise ValueError("cursor is not valid")
        try:
            partition_day(pk)  # eight digits are not yet a date (SPY_20261399)
        except ValueError as exc:
            raise ValueError("cursor is not valid") from exc
        return cls(pk=pk, rk=rk)
