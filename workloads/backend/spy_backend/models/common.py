"""Bounded field types shared by every wire model (docs/wire-format.md).

Each bound exists so that bad input is a 422 naming the field, never a 5xx deeper down:
floats are finite, prices non-negative, strikes inside a sane range, text free of
control characters and lone surrogates (they can not be encoded for Table Storage).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
)

MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2100, 1, 1, tzinfo=UTC)
MIN_EXPIRY = date(2000, 1, 1)
MAX_EXPIRY = date(2100, 1, 1)
TS_RANGE_ERROR = "timestamp must be in the years 2000-2099"
# The same rules, written into the spec (what the validators below enforce).
YEARS_TEXT = r"^20[0-9]{2}-"
DATE_TEXT = r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"
# Not a control character (tab and newline are fine); lone surrogates become U+FFFD.
CLEAN_TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"


_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _timestamp_text(value: object) -> object:
    # Lax pydantic would read numbers (and numeric strings) as Unix times.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value[:4].isdigit() or value[4:5] != "-":
        raise ValueError("must be an RFC 3339 date-time string")
    return value


def _date_text(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE_TEXT.match(value):
        raise ValueError("must be a YYYY-MM-DD date string")
    return value


def _utc_in_range(value: datetime) -> datetime:
    # The spec's pattern says "years 2000-2099 as written"; any UTC offset may move that
    # a day either way.
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999 shifted past the calendar's ends
        raise ValueError(TS_RANGE_ERROR) from exc
    if not MIN_TS - timedelta(days=1) <= value < MAX_TS + timedelta(days=1):
        raise ValueError(TS_RANGE_ERROR)
    return value


def _year_text(value: object) -> object:
    # The spec's pattern: the year as written is 2000-2099 (then any offset may apply).
    if isinstance(value, str) and not (value[:2] == "20" and value[2:4].isdigit()):
        raise ValueError(TS_RANGE_ERROR)
    return value


def _replace_surrogates(value: object) -> object:
    # A lone surrogate (from a `\ud800` JSON escape) can not be encoded for storage; it
    # is no character at all, so it becomes U+FFFD, as Unicode prescribes for ill-formed
    # text, instead of refusing a record the spec allows.
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def _clip_to_range(value: datetime) -> datetime:
    """Query bounds outside the stored years select nothing there: clip, never refuse."""
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
        return MIN_TS if value.year < MIN_TS.year else MAX_TS
    return min(max(value, MIN_TS), MAX_TS)


def _integral(value: object) -> object:
    # JSON Schema counts 514.0 as an integer; `true` is not one.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _expiry_in_range(value: date) -> date:
    if not MIN_EXPIRY <= value < MAX_EXPIRY:
        raise ValueError("expiry must be between 2000-01-01 and 2100-01-01")
    return value


def _clean_text(value: str) -> str:
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs" or (category == "Cc" and ch not in "\t\n"):
            raise ValueError("text must not contain control characters or lone surrogates")
    return value


# Strict: JSON `true` is not the number 1 (lax mode would coerce booleans).
UtcTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_year_text),
    BeforeValidator(_timestamp_text),
    AfterValidator(_utc_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": YEARS_TEXT}),
]
Expiry = Annotated[
    date,
    BeforeValidator(_date_text),
    AfterValidator(_expiry_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_TEXT}),
]
Count = Annotated[int, BeforeValidator(_integral), Strict()]
# Query parameters: any RFC 3339 time / calendar date the spec allows; out of range
# they match nothing instead of being refused.
QueryTimestamp = Annotated[
    AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_clip_to_range)
]
QueryExpiry = Annotated[date, BeforeValidator(_date_text)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-1e18, le=1e18)]
Price = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=1e7)]
Premium = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=1e15)]
Strike = Annotated[float, Strict(), Field(allow_inf_nan=False, gt=0, le=100_000)]
Vol = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0, le=10)]
LogMoneyness = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-10, le=10)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$", examples=["SPY"])]
RecordId = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$", description="sha1 hex")]
Reason = Annotated[
    str,
    Field(min_length=1, max_length=1000, json_schema_extra={"pattern": CLEAN_TEXT}),
    BeforeValidator(_replace_surrogates),
    AfterValidator(_clean_text),
]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def ts_text(ts: datetime) -> str:
    """Canonical RFC 3339 UTC text of a timestamp, as hashed into record ids."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_id(*parts: str) -> str:
    """sha1 hex of the parts joined by `|`: the idempotency key of a record."""
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()
