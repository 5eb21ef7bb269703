"""Wire models: bounds give errors naming the field; ids are stable (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from spy_backend.models import AnomalyCreate, IngestBatch, MarketCreate, Resource, anomaly_id

from ._support import anomaly


def error_locs(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in exc.errors()]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"score": float("nan")}, ("score",)),
        ({"score": float("inf")}, ("score",)),
        ({"iv": -0.1}, ("iv",)),
        ({"iv": 50.0}, ("iv",)),
        (
            {"contract": {"expiry": "2026-12-19", "strike": -5.0, "right": "C"}},
            ("contract", "strike"),
        ),
        (
            {"contract": {"expiry": "2026-12-19", "strike": 1e12, "right": "C"}},
            ("contract", "strike"),
        ),
        (
            {"contract": {"expiry": "2026-12-19", "strike": 600.0, "right": "X"}},
            ("contract", "right"),
        ),
        (
            {"contract": {"expiry": "1900-01-01", "strike": 600.0, "right": "C"}},
            ("contract", "expiry"),
        ),
        ({"kind": "moon_phase"}, ("kind",)),
        ({"severity": "EXTREME"}, ("severity",)),
        ({"symbol": "spy; drop"}, ("symbol",)),
        ({"ts": "2026-11-25T15:30:00"}, ("ts",)),  # naive: no zone
        ({"ts": "1999-12-31T23:59:59Z"}, ("ts",)),
        ({"ts": "1764084600"}, ("ts",)),
        ({"ts": "0001-01-01T00:00:00+01:00"}, ("ts",)),  # overflows when moved to UTC
        ({"ts": "9999-12-31T23:59:59-01:00"}, ("ts",)),  # lax pydantic would read a Unix time
        (
            {"contract": {"expiry": "20261219", "strike": 600.0, "right": "C"}},
            ("contract", "expiry"),
        ),
        ({"reason": "bell\x07"}, ("reason",)),
        ({"reason": "x" * 1001}, ("reason",)),
        ({"id": "not-a-sha1"}, ("id",)),
        ({"surprise": 1}, ("surprise",)),
    ],
)
def test_bad_anomaly_fields_are_named(patch: dict[str, Any], field: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        AnomalyCreate.model_validate(anomaly(**patch))
    assert field in error_locs(info.value)


def test_a_lone_surrogate_in_text_becomes_the_replacement_character() -> None:
    """The spec's text pattern can not name surrogates (its regex engines refuse them);
    they are no characters, so they are replaced rather than refused."""
    a = AnomalyCreate.model_validate(anomaly(reason="lone \ud800 surrogate"))
    assert a.reason == "lone \ufffd surrogate"
    assert a.public().model_dump_json().encode("utf-8")


def test_market_rejects_mismatched_smile_and_negative_spot() -> None:
    body = {
        "ts": "2026-11-25T15:30:00Z",
        "spot": -1,
        "expiries": [{"expiry": "2026-12-19", "t": 0.07, "points": {"k": [0.0, 0.1], "iv": [0.2]}}],
    }
    with pytest.raises(ValidationError) as info:
        MarketCreate.model_validate(body)
    locs = error_locs(info.value)
    assert ("spot",) in locs
    assert ("expiries", 0, "points") in locs


def test_batch_total_is_bounded() -> None:
    body = {"anomalies": [anomaly()] * 600, "signals": []}
    body["flow"] = [
        {"ts": "2026-11-25T15:30:00Z", "call_premium": 1, "put_premium": 1, "net_premium": 0}
    ] * 401
    with pytest.raises(ValidationError, match="at most 1000 in all"):
        IngestBatch.model_validate(body)


def test_nan_in_json_text_is_refused() -> None:
    text = json.dumps({"anomalies": [anomaly()]}).replace('"score": 4.2', '"score": NaN')
    with pytest.raises(ValidationError) as info:
        IngestBatch.model_validate_json(text)
    assert ("anomalies", 0, "score") in error_locs(info.value)


def test_anomaly_id_is_stable_and_documented() -> None:
    a = AnomalyCreate.model_validate(anomaly())
    # sha1("iv_residual|SPY|2026-12-19|600.00|C|2026-11-25T15:30:00.000000Z")
    assert anomaly_id(a) == "b9c1ea38e25ee2561839e71db9eda69c4f2d1faa"
    same = AnomalyCreate.model_validate(anomaly(ts="2026-11-25T10:30:00-05:00"))
    assert anomaly_id(same) == anomaly_id(a)
    other = AnomalyCreate.model_validate(anomaly(strike=605.0))
    assert anomaly_id(other) != anomaly_id(a)


def test_given_id_is_kept_and_missing_id_is_computed() -> None:
    given = "a" * 40
    batch = IngestBatch.model_validate({"anomalies": [anomaly(id=given), anomaly(strike=601.0)]})
    ids = [r.id for r in batch.by_resource()[Resource.ANOMALY]]
    assert ids[0] == given
    assert len(ids[1]) == 40 and ids[1] != given
