"""Query endpoints against real Azurite: time range, filters, pagination, across days."""

from __future__ import annotations

import base64
import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableClient
from spy_backend.models import AnomalyKind
from spy_backend.storage.tables import FILTER_MAX_COMPARISONS
from spy_dev.samplefeed import sample_batch

from ._support import T0, anomaly, iso
from .conftest import Backend

DAY = {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}


def test_filters_by_kind_severity_expiry_and_time(backend: Backend) -> None:
    rows = [
        anomaly(T0, strike=600, kind="iv_residual", severity="HIGH"),
        anomaly(T0 + timedelta(minutes=1), strike=601, kind="parity", severity="LOW"),
        anomaly(T0 + timedelta(minutes=2), strike=602, kind="iv_residual", severity="MEDIUM",
                expiry="2027-01-15"),
        anomaly(T0 + timedelta(minutes=3), strike=603, kind="butterfly", severity="HIGH"),
    ]  # fmt: skip
    assert backend.ingest({"anomalies": rows}).json()["stored"] == 4

    def strikes(**params: object) -> list[float]:
        response = backend.client.get("/api/v1/anomalies", params={**DAY, **params})
        assert response.status_code == 200, response.text
        return [a["contract"]["strike"] for a in response.json()["items"]]

    assert strikes() == [603, 602, 601, 600]  # newest first
    assert strikes(kind="iv_residual") == [602, 600]
    assert strikes(kind=["parity", "butterfly"]) == [603, 601]
    assert strikes(severity="HIGH") == [603, 600]
    assert strikes(severity="HIGH", kind="iv_residual") == [600]
    assert strikes(expiry="2027-01-15") == [602]
    window = {"start": iso(T0 + timedelta(seconds=30)), "end": iso(T0 + timedelta(minutes=2))}
    response = backend.client.get("/api/v1/anomalies", params=window)
    assert [a["contract"]["strike"] for a in response.json()["items"]] == [602, 601]


def test_pagination_walks_every_row_once_across_days(backend: Backend) -> None:
    # 75 rows every 47 minutes: about 2.5 days, so pages cross partitions.
    rows = [anomaly(T0 - i * timedelta(minutes=47), strike=400 + i) for i in range(75)]
    assert backend.ingest({"anomalies": rows}).json()["stored"] == 75
    params = {"start": iso(T0 - timedelta(days=4)), "end": iso(T0), "limit": 20}
    seen: list[float] = []
    cursor = None
    pages = 0
    while True:
        response = backend.client.get(
            "/api/v1/anomalies", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [a["contract"]["strike"] for a in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == [400 + i for i in range(75)]  # newest first, no gap, no repeat


def test_default_window_is_the_last_24_hours(backend: Backend) -> None:
    now = datetime.now(UTC)
    old = anomaly(now - timedelta(hours=30), strike=500)
    new = anomaly(now - timedelta(minutes=5), strike=501)
    backend.ingest({"anomalies": [old, new]})
    items = backend.client.get("/api/v1/anomalies").json()["items"]
    assert [a["contract"]["strike"] for a in items] == [501]


def test_market_gex_flow_signals_latest_first(backend: Backend) -> None:
    rng = random.Random(7)
    for minute in range(3):
        body = sample_batch(T0 + timedelta(minutes=minute), rng, spot=600 + minute, anomalies=0)
        signal = {"ts": iso(T0 + timedelta(minutes=minute)), "name": "cluster"}
        signal.update(direction="neutral", strength=0.1 * minute, reason="r")
        body["signals"] = [signal]
        assert backend.ingest(body).status_code == 200
    for path in ("market", "gex", "flow", "signals"):
        page = backend.client.get(f"/api/v1/{path}", params={**DAY, "limit": 1}).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert page["items"][0]["ts"].startswith("2026-11-25T15:32:00")
    market = backend.client.get("/api/v1/market", params={**DAY, "limit": 1}).json()["items"][0]
    assert market["spot"] == 602 and len(market["expiries"]) == 3


def test_bad_query_parameters_are_422_naming_them(backend: Backend) -> None:
    cases = {
        "cursor": {"cursor": "garbage"},
        "start": {"start": "yesterday"},
        "end": {"end": "1764000000"},  # a Unix time is not RFC 3339
        "limit": {"limit": 0},
        "kind": {"kind": "nope"},
        "severity": {"severity": "low"},
        "symbol": {"symbol": "spy"},
    }
    for name, params in cases.items():
        response = backend.client.get("/api/v1/anomalies", params=params)
        assert response.status_code == 422, (name, response.text)
        assert name in [e["loc"][1] for e in response.json()["detail"]], response.text


def _old_cursor(pk: str, rk: str = "0" * 16 + "_" + "a" * 40) -> str:
    raw = json.dumps({"pk": pk, "rk": rk}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_an_impossible_cursor_is_422_on_every_endpoint(backend: Backend) -> None:
    rk = "0" * 16 + "_" + "a" * 40
    for cursor in (_old_cursor("SPY_20261125"), f"20261125_{rk}\n", f"2026112_{rk}", "garbage"):
        for path in ("anomalies", "signals", "market", "gex", "flow"):
            response = backend.client.get(f"/api/v1/{path}", params={**DAY, "cursor": cursor})
            assert response.status_code == 422, (cursor, path, response.text)
            assert ["query", "cursor"] in [e["loc"] for e in response.json()["detail"]]


def test_many_expiries_and_kinds_stay_within_the_filter_limit(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    filters: list[str] = []
    original = TableClient.query_entities

    def spy(self: TableClient, query_filter: str, **kwargs: Any) -> Any:
        filters.append(query_filter)
        return original(self, query_filter, **kwargs)

    monkeypatch.setattr(TableClient, "query_entities", spy)
    expiries = [f"2027-01-{d:02d}" for d in range(1, 13)]  # 12, the most allowed
    kinds = [k.value for k in AnomalyKind]
    rows = [
        anomaly(T0 - i * timedelta(minutes=1), strike=500 + i,
                expiry=expiries[i % 12] if i % 3 else "2026-12-19", kind=kinds[i % 9],
                severity="LOW" if i % 5 == 0 else "HIGH")
        for i in range(60)
    ]  # fmt: skip
    assert backend.ingest({"anomalies": rows}).json()["stored"] == 60
    want = [r["contract"]["strike"] for r in rows
            if r["contract"]["expiry"] in expiries and r["severity"] == "HIGH"]  # fmt: skip
    params: dict[str, Any] = {**DAY, "expiry": expiries, "kind": kinds}
    params.update(severity=["HIGH", "HIGH"], limit=7)
    got: list[float] = []
    cursor = None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = backend.client.get("/api/v1/anomalies", params=page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 7
        got += [a["contract"]["strike"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert got == want and len(want) == 32  # newest first
    anomaly_filters = [f for f in filters if "RowKey" in f]
    assert anomaly_filters
    for flt in anomaly_filters:
        comparisons = len(re.findall(r" (?:eq|ne|gt|ge|lt|le) ", f" {flt} "))
        assert comparisons <= FILTER_MAX_COMPARISONS, flt
