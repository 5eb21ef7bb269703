"""Key design and entity mapping (pure): newest-first order, cursors, big bodies."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableTransactionError
from hypothesis import given
from hypothesis import strategies as st
from spy_backend.models import AnomalyKind, IngestBatch, MarketCreate, Resource
from spy_backend.storage.entities import BODY_MAX_CHARS, from_entity, to_entity
from spy_backend.storage.errors import rejection_reason
from spy_backend.storage.filters import FILTER_MAX_COMPARISONS, KEY_COMPARISONS, build_equals_filter
from spy_backend.storage.keys import (
    Cursor,
    day_text,
    inverted,
    partition_key,
    row_key,
    row_range,
    trading_day,
)
from spy_backend.storage.writes import chunks, entity_weight
from spy_dev.samplefeed import sample_batch

timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@given(timestamps, timestamps)
def test_row_keys_sort_newest_first(a: datetime, b: datetime) -> None:
    if a != b:
        assert (inverted(a) < inverted(b)) == (a > b)
    assert len(inverted(a)) == 16


@given(timestamps, timestamps, timestamps)
def test_row_range_selects_exactly_the_window(start: datetime, end: datetime, ts: datetime) -> None:
    start, end = min(start, end), max(start, end)
    low, high = row_range(start, end)
    key = row_key(ts, "f" * 40)
    assert (low <= key < high) == (start <= ts <= end)


@pytest.mark.parametrize(
    ("ts", "day"),
    [
        (datetime(2026, 11, 25, 4, 59, tzinfo=UTC), date(2026, 11, 24)),  # 23:59 New York
        (datetime(2026, 11, 25, 5, 0, tzinfo=UTC), date(2026, 11, 25)),
        (datetime(2026, 7, 1, 3, 59, tzinfo=UTC), date(2026, 6, 30)),  # EDT: UTC-4
    ],
)
def test_partition_is_the_new_york_trading_day(ts: datetime, day: date) -> None:
    assert trading_day(ts) == day
    assert partition_key("SPY", day) == f"SPY_{day:%Y%m%d}"


def test_day_text_sorts_like_the_day() -> None:
    days = [date(2026, 11, 25), date(2026, 1, 2), date(2001, 12, 31)]
    assert sorted(days) == sorted(days, key=day_text)
    assert day_text(date(2026, 11, 5)) == "20261105"


def test_cursor_round_trip_and_rejection() -> None:
    cursor = Cursor(day="20261125", rk=row_key(datetime.now(UTC), "0" * 40))
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ["", "!!!", "e30", Cursor(day="x", rk="y").encode(), "W10"]:
        with pytest.raises(ValueError, match="cursor"):
            Cursor.decode(bad)


@pytest.mark.parametrize(
    ("day", "rk"),
    [
        ("20261125\n", "0" * 16 + "_" + "a" * 40),  # `$` matches before a newline
        ("20261125", "0" * 16 + "_" + "a" * 40 + "\n"),
        ("2026112\u0665", "0" * 16 + "_" + "a" * 40),  # a non-ASCII digit
        ("20261125", "0" * 16 + "_" + "A" * 40),  # ids are lower-case hex
    ],
)
def test_cursor_with_an_impossible_key_is_rejected(day: str, rk: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        Cursor.decode(Cursor(day=day, rk=rk).encode())


def test_any_cursor_of_the_documented_shape_is_accepted() -> None:
    """The spec's pattern is the whole rule: eight digits need not be a date."""
    assert Cursor.decode("20261399_" + "9" * 16 + "_" + "0" * 40).day == "20261399"


def test_filter_stays_within_the_service_comparison_limit() -> None:
    kinds = [k.value for k in AnomalyKind]
    expiries = [f"2027-{m:02d}-{d:02d}" for m in (1, 2) for d in range(1, 26)]
    assert len(expiries) == 50 and len(kinds) == 9
    flt = build_equals_filter({"expiry": expiries, "kind": kinds * 2, "severity": ["LOW"] * 3})
    assert flt.comparisons == KEY_COMPARISONS + 9 + 1 <= FILTER_MAX_COMPARISONS
    assert flt.text.count(" eq @") == flt.comparisons - KEY_COMPARISONS
    assert len(flt.params) == 10  # de-duplicated
    assert flt.client_side == {"expiry": frozenset(expiries)}
    assert flt.matches({"expiry": expiries[7]}) and not flt.matches({"expiry": "2027-03-01"})

    small = build_equals_filter({"expiry": expiries[:3] * 4, "kind": ["parity"], "severity": []})
    assert small.comparisons == KEY_COMPARISONS + 4 and not small.client_side
    assert build_equals_filter(None).comparisons == KEY_COMPARISONS

    # Whatever is asked, the $filter never exceeds the limit and the rest is client-side.
    many = {"expiry": expiries[:12], "kind": kinds, "severity": ["LOW", "MEDIUM", "HIGH"]}
    flt = build_equals_filter(many)
    assert flt.comparisons <= FILTER_MAX_COMPARISONS
    assert flt.text.count(" eq @") + sum(map(len, flt.client_side.values())) == 24


def test_entities_round_trip_small_and_compressed() -> None:
    batch = IngestBatch.model_validate(sample_batch(datetime.now(UTC), random.Random(3)))
    for resource, records in batch.by_resource().items():
        for record in records:
            assert from_entity(resource, to_entity(record)) == record
    big = sample_batch(datetime.now(UTC), random.Random(4))["market"][0]
    curve = {"k": [i / 1000 for i in range(256)], "iv": [0.2 + i / 1e5 for i in range(256)]}
    big["expiries"] = [
        {"expiry": f"2027-01-{d:02d}", "t": 0.1, "points": curve, "fit": curve}
        for d in range(1, 32)
    ]
    record = MarketCreate.model_validate(big).public()
    assert len(record.model_dump_json()) > BODY_MAX_CHARS
    entity = to_entity(record)
    assert "body" not in entity and entity["bodyzn"] >= 1
    assert from_entity(Resource.MARKET, entity) == record


def test_transactions_hold_at_most_100_entities_and_3_mb() -> None:
    small = [{"PartitionKey": "p", "RowKey": str(i), "body": "x"} for i in range(250)]
    assert [len(c) for c in chunks(small, entity_weight)] == [100, 100, 50]
    big = [{"PartitionKey": "p", "RowKey": str(i), "body": "x" * 1_000_000} for i in range(7)]
    sizes = [len(c) for c in chunks(big, entity_weight)]
    assert sum(sizes) == 7 and max(sizes) <= 2


def _service_error(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    exc = cls(message=f"0:{code}")
    exc.status_code, exc.error_code = status, code
    return exc


@pytest.mark.parametrize("cls", [HttpResponseError, TableTransactionError])
def test_only_errors_about_the_entity_reject_the_record(cls: type[HttpResponseError]) -> None:
    for status, code in [(400, "EntityTooLarge"), (400, "PropertyValueTooLarge"),
                         (413, "RequestBodyTooLarge")]:  # fmt: skip
        reason = rejection_reason(_service_error(cls, status, code))
        assert reason is not None and code in reason
    # Deployment faults and outages are not the record's: never a reason to drop it.
    faults = [(403, "AuthenticationFailed"), (404, "TableNotFound"),
              (409, "EntityAlreadyExists"), (429, "Throttled"), (500, "Internal")]  # fmt: skip
    for status, code in faults:
        assert rejection_reason(_service_error(cls, status, code)) is None
    assert rejection_reason(ValueError("x")) is None
