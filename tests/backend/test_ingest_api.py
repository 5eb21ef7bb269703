"""POST /api/v1/ingest against real Azurite: auth, 4xx naming the field, idempotency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from spy_backend.app import create_app
from spy_backend.storage import entities

from ._support import T0, HubClient, anomalies, anomaly, iso
from .conftest import TOKEN, Backend


def test_token_required_401_and_wrong_token_403(backend: Backend) -> None:
    body = {"anomalies": [anomaly()]}
    missing = backend.ingest(body, token=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert backend.ingest(body, token="wrong-token").status_code == 403
    basic = backend.client.post(
        "/api/v1/ingest", json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert basic.status_code == 401
    assert backend.ingest(body).status_code == 200


NAN, INF = "__NaN__", "__Infinity__"
FLOW = {"ts": "2026-11-25T15:30:00Z", "call_premium": 1, "put_premium": 1, "net_premium": 0}
GEX = {"ts": "2026-11-25T15:30:00Z", "spot": 600, "strikes": [600], "gex": [1], "net_gex": 1}
SIGNAL = {"ts": "2026-11-25T15:30:00Z", "name": "x", "direction": "bullish", "strength": 0.5,
          "reason": "r"}  # fmt: skip
BAD_STRIKE = {"expiry": "2026-12-19", "strike": 1e9, "right": "C"}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"anomalies": [anomaly(score=NAN)]}, ["body", "anomalies", 0, "score"]),
        ({"anomalies": [anomaly(iv=INF)]}, ["body", "anomalies", 0, "iv"]),
        ({"anomalies": [anomaly(contract=BAD_STRIKE)]},
         ["body", "anomalies", 0, "contract", "strike"]),
        ({"anomalies": [anomaly(), anomaly(unknown=1)]}, ["body", "anomalies", 1, "unknown"]),
        ({"anomalies": [], "extra": 1}, ["body", "extra"]),
        ({"gex": [{**GEX, "spot": -600}]}, ["body", "gex", 0, "spot"]),
        ({"gex": [{**GEX, "gex": [NAN]}]}, ["body", "gex", 0, "gex", 0]),
        ({"flow": [{**FLOW, "call_premium": -1}]}, ["body", "flow", 0, "call_premium"]),
        ({"signals": [{**SIGNAL, "direction": "up"}]}, ["body", "signals", 0, "direction"]),
        ({"signals": [{**SIGNAL, "strength": 2}]}, ["body", "signals", 0, "strength"]),
        ({"market": [{"ts": "2026-11-25T15:30:00Z", "spot": INF}]}, ["body", "market", 0, "spot"]),
    ],
)  # fmt: skip
def test_bad_input_is_422_naming_the_field(
    backend: Backend, body: dict[str, Any], loc: list[Any]
) -> None:
    raw = json.dumps(body).replace(f'"{NAN}"', "NaN").replace(f'"{INF}"', "Infinity")
    response = backend.client.post(
        "/api/v1/ingest",
        content=raw,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["detail"]], response.text


def test_oversized_batch_is_422_and_oversized_body_413(backend: Backend) -> None:
    response = backend.ingest({"anomalies": anomalies(1001)})
    assert response.status_code == 422
    assert ["body", "anomalies"] in [e["loc"] for e in response.json()["detail"]]
    mixed = backend.ingest({"anomalies": anomalies(600), "signals": [], "flow": [
        {"ts": "2026-11-25T15:30:00Z", "call_premium": 1, "put_premium": 1, "net_premium": 0}
    ] * 401})  # fmt: skip
    assert mixed.status_code == 422
    assert "at most 1000 in all" in mixed.text
    huge = backend.client.post(
        "/api/v1/ingest",
        content=b"{" + b" " * (backend.settings.max_body_bytes + 1) + b"}",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_not_json_and_wrong_shape_are_422(backend: Backend) -> None:
    token = TOKEN
    not_utf8, too_deep = b"\xe93O", b"[" * 100_000 + b"]" * 100_000  # FastAPI's 400s
    for content in (b"not json", b"[]", b'{"anomalies": {}}', b"\xff\xfe", not_utf8, too_deep):
        response = backend.client.post(
            "/api/v1/ingest",
            content=content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (content, response.text)
        assert response.json()["detail"][0]["loc"][0] == "body", response.text
    # The OpenAPI says what the service does: an undecodable body is a 422, never a 400.
    responses = create_app(run_purge=False).openapi()["paths"]["/api/v1/ingest"]["post"]
    assert "422" in responses["responses"] and "400" not in responses["responses"]


def _market(minute: int, expiries: int = 1) -> dict[str, Any]:
    curve = {"k": [i / 1000 for i in range(256)], "iv": [0.2 + i / 1e5 for i in range(256)]}
    return {
        "ts": (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        "spot": 600 + minute,
        "expiries": [
            {"expiry": f"2027-01-{d:02d}", "t": 0.1, "points": curve, "fit": curve}
            for d in range(1, expiries + 1)
        ],
    }


@pytest.mark.parametrize("alone", [False, True])
def test_a_record_storage_refuses_is_422_naming_it_and_the_rest_is_stored(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, alone: bool
) -> None:
    # Stand-in for a service limit the models do not anticipate: without compression a
    # large market snapshot is one string property over 32K characters, which the
    # service (Azurite too) refuses with 400 PropertyValueTooLarge.
    monkeypatch.setattr(entities, "BODY_MAX_CHARS", 10**9)
    market = [_market(3, expiries=20)] if alone else [_market(0), _market(1, 20), _market(2)]
    response = backend.ingest({"anomalies": [anomaly()], "market": market})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [["body", "market", 0 if alone else 1]]
    assert "PropertyValueTooLarge" in detail[0]["msg"]
    stored = backend.client.get(
        "/api/v1/market", params={"start": iso(T0), "end": iso(T0 + timedelta(hours=1))}
    ).json()["items"]
    assert [m["spot"] for m in stored] == ([] if alone else [602, 600])
    # A resend without the refused record is all duplicates (what was stored, stays).
    rest = [m for i, m in enumerate(market) if i != (0 if alone else 1)]
    result = backend.ingest({"anomalies": [anomaly()], "market": rest}).json()
    assert (result["stored"], result["duplicate"]) == (0, 1 + len(rest))


async def test_same_batch_twice_is_stored_once_and_broadcast_once(backend: Backend) -> None:
    hub = await HubClient.connect(backend.url)
    try:
        batch = {"anomalies": anomalies(120), "signals": [{
            "ts": "2026-11-25T15:30:00Z", "name": "iv_spike_cluster", "direction": "bullish",
            "strength": 0.7, "reason": "three HIGH iv_residual anomalies on calls",
        }]}  # fmt: skip
        first = backend.ingest(batch).json()
        assert (first["stored"], first["duplicate"]) == (121, 0)
        second = backend.ingest(batch).json()
        assert (second["stored"], second["duplicate"]) == (0, 121)
        assert second["kinds"]["anomaly"] == {"stored": 0, "duplicate": 120}
        # Broadcasts are ordered: once the sentinel arrives, nothing else is pending.
        sentinel = anomaly(T0 + timedelta(hours=1), strike=777.0)
        assert backend.ingest({"anomalies": [sentinel]}).json()["stored"] == 1
        got = await hub.messages(122)
        assert got[-1]["data"]["contract"]["strike"] == 777.0
        ids = [m["data"]["id"] for m in got]
        assert len(ids) == len(set(ids)) == 122
    finally:
        await hub.close()
    stored = backend.client.get(
        "/api/v1/anomalies",
        params={"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z", "limit": 1000},
    ).json()
    assert len(stored["items"]) == 121


def test_duplicate_inside_one_batch_counts_once(backend: Backend) -> None:
    result = backend.ingest({"anomalies": [anomaly(), anomaly()]}).json()
    assert (result["stored"], result["duplicate"]) == (1, 1)


def test_partial_duplicates_store_only_the_new_records(backend: Backend) -> None:
    rows = anomalies(10)
    assert backend.ingest({"anomalies": rows[:4]}).json()["stored"] == 4
    result = backend.ingest({"anomalies": rows}).json()
    assert (result["stored"], result["duplicate"]) == (6, 4)


async def test_concurrent_identical_batches_store_and_broadcast_once(backend: Backend) -> None:
    hub = await HubClient.connect(backend.url)
    try:
        batch = {"anomalies": anomalies(150, start=T0 + timedelta(hours=2))}
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: backend.ingest(batch).json(), range(4)))
        assert sum(r["stored"] for r in results) == 150
        assert sum(r["duplicate"] for r in results) == 450
        sentinel = anomaly(T0 + timedelta(hours=3), strike=777.0)
        backend.ingest({"anomalies": [sentinel]})
        got = await hub.messages(151)
        assert got[-1]["data"]["contract"]["strike"] == 777.0
        assert len({m["data"]["id"] for m in got}) == 151
    finally:
        await hub.close()
