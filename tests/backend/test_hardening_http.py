"""What an outside attack on the HTTP API found (issue 12), each against a real backend
on real Azurite: work before auth (1), expensive public queries (5), spec conformance
(6), negotiate's URL and caching (7), slow ingest of many partitions (8)."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.data.tables.aio import TableClient
from spy_backend.storage import tables

from ._support import T0, anomaly
from .conftest import TOKEN, Backend

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
DAY = {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}


def raw_request(backend: Backend, head: bytes, wait: float = 5.0) -> bytes:
    """Send request headers only (no body) and return the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", backend.server.port), timeout=wait) as sock:
        sock.sendall(head)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""  # still waiting for the body: the answer never came


# ------------------------------------------------------------------ 1: auth before body


@pytest.mark.parametrize(
    ("auth", "status"), [(b"", b" 401 "), (b"Authorization: Bearer wrong-token\r\n", b" 403 ")]
)
def test_unauthenticated_ingest_is_refused_before_its_body_is_read(
    backend: Backend, auth: bytes, status: bytes
) -> None:
    """Finding 1: a 16 MB body was parsed before the token was checked. Here the body is
    never sent: the answer can only come from the headers."""
    head = (
        b"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 16000000\r\n" + auth + b"\r\n"
    )
    answer = raw_request(backend, head)
    assert status in answer.split(b"\r\n", 1)[0], answer[:200]


def test_declared_oversize_is_413_before_the_body(backend: Backend) -> None:
    head = (
        b"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n"
    )
    assert b" 413 " in raw_request(backend, head).split(b"\r\n", 1)[0]


# ------------------------------------------------------------------ 5: bounded queries


def test_more_filter_values_than_the_limit_is_422_naming_the_field(backend: Backend) -> None:
    """Finding 5: 50 expiries over 92 days made the backend filter every row itself."""
    expiries = [f"2027-01-{d:02d}" for d in range(1, 14)]  # 13, one over the limit
    response = backend.client.get("/api/v1/anomalies", params={**DAY, "expiry": expiries})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["query", "expiry"] and "12" in error["msg"]


def test_a_sparse_query_over_many_days_is_paged_a_few_days_at_a_time(backend: Backend) -> None:
    """Finding 5: one request scans at most PAGE_MAX_PARTITIONS trading days; the cursor
    carries the rest, so every row is still found, page by page."""
    days = 20
    rows = [anomaly(T0 - timedelta(days=d), strike=500.0 + d) for d in range(days)]
    assert backend.ingest({"anomalies": rows}).json()["stored"] == days
    params: dict[str, Any] = {
        "start": (T0 - timedelta(days=30)).isoformat(),
        "end": (T0 + timedelta(hours=1)).isoformat(),
        "kind": "iv_residual",
        "limit": 1000,
    }
    first = backend.client.get("/api/v1/anomalies", params=params).json()
    assert first["next_cursor"] is not None
    assert len(first["items"]) <= tables.PAGE_MAX_PARTITIONS
    strikes = [a["contract"]["strike"] for a in first["items"]]
    cursor = first["next_cursor"]
    pages = 1
    while cursor is not None:
        page = backend.client.get("/api/v1/anomalies", params={**params, "cursor": cursor}).json()
        strikes += [a["contract"]["strike"] for a in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
    assert strikes == [500.0 + d for d in range(days)]  # newest first, each once
    assert pages >= 30 // tables.PAGE_MAX_PARTITIONS


def test_public_queries_are_rate_limited_per_client_with_retry_after(
    start_backend: Any,
) -> None:
    """Finding 5: 429 with Retry-After once a client spent its burst; the ingest token
    has a bucket of its own and probes are never limited."""
    backend: Backend = start_backend(query_rate_per_second=0.5, query_burst=3)
    codes = [backend.client.get("/api/v1/flow", params=DAY).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = backend.client.get("/api/v1/anomalies", params=DAY)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "queries per second" in limited.json()["detail"]
    assert backend.client.get("/api/v1/negotiate").status_code == 429
    producer = {"Authorization": f"Bearer {TOKEN}"}
    assert backend.client.get("/api/v1/flow", params=DAY, headers=producer).status_code == 200
    forged = {"Authorization": "Bearer not-the-token"}  # no fresh bucket for a made-up token
    assert backend.client.get("/api/v1/flow", params=DAY, headers=forged).status_code == 429
    assert backend.client.get("/healthz").status_code == 200


def test_default_rate_limit_leaves_a_dashboard_and_the_tests_alone(backend: Backend) -> None:
    """A dashboard loads 4 queries at once, one more per reconnect, and polls every 15 s;
    a burst of 60 back-to-back queries stays well inside the default."""
    codes = {backend.client.get("/api/v1/market", params=DAY).status_code for _ in range(60)}
    assert codes == {200}


# ------------------------------------------------------------------ 6: spec conformance


def test_inputs_the_spec_allows_are_accepted(backend: Backend) -> None:
    """Finding 6: date-range rules and the cursor format were not in the spec, so
    inputs it allows got 422. Now the spec's rules are the whole rules."""
    cases: list[dict[str, Any]] = [
        {"start": "2026-11-26T00:00:00Z", "end": "2026-11-25T00:00:00Z"},  # inverted: empty
        {"start": "2026-01-01T00:00:00Z", "end": "2026-11-25T00:00:00Z"},  # > 92 days
        {"start": "1999-01-01T00:00:00Z", "end": "2000-01-02T00:00:00+05:00"},  # clipped
        {"end": "2150-01-01T00:00:00Z"},
        {"cursor": "20261399_" + "9" * 16 + "_" + "0" * 40},  # the pattern's shape
        {"expiry": "1999-12-31"},  # matches nothing, refused by nothing
    ]
    for params in cases:
        response = backend.client.get("/api/v1/anomalies", params=params)
        assert response.status_code == 200, (params, response.text)
    spec = backend.client.get("/openapi.json").json()
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/anomalies"]["get"]["parameters"]}
    assert parameters["cursor"]["schema"]["anyOf"][0]["pattern"].startswith("^[0-9]{8}_")


def test_api_paths_answer_other_methods_405_with_allow_even_under_the_dashboard(
    start_backend: Any,
) -> None:
    """Finding 6: with the dashboard mounted at /, GET /api/v1/ingest was a 404 and
    OPTIONS a 405 without Allow."""
    backend: Backend = start_backend(dashboard_dir=DASHBOARD)
    wrong = backend.client.get("/api/v1/ingest")
    assert (wrong.status_code, wrong.headers.get("allow")) == (405, "POST")
    options = backend.client.options("/api/v1/anomalies")
    assert (options.status_code, options.headers.get("allow")) == (405, "GET")
    assert backend.client.delete("/api/v1/negotiate").headers.get("allow") == "GET"
    assert backend.client.get("/").status_code == 200  # the dashboard is still served


def test_an_oversized_chunked_body_is_413_not_422(start_backend: Any) -> None:
    """Finding 6: a chunked body (no Content-Length) over the limit was parsed as far as
    it went and answered 422 json_invalid."""
    backend: Backend = start_backend(max_body_bytes=64 * 1024)

    def chunks() -> Any:
        yield b'{"anomalies": ['
        for _ in range(200):
            yield b" " * 1024

    response = backend.client.post(
        "/api/v1/ingest",
        content=chunks(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    small = backend.client.post(
        "/api/v1/ingest",
        content=iter([b'{"anomalies": ', b"[]}"]),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert small.status_code == 200, small.text  # a chunked body within the limit is read


# ------------------------------------------------------------------ 7: negotiate


def test_negotiate_never_takes_its_url_from_a_foreign_host_header(start_backend: Any) -> None:
    """Finding 7: the returned WebSocket URL copied the request's Host header."""
    backend: Backend = start_backend()
    spoofed = backend.client.get("/api/v1/negotiate", headers={"Host": "evil.example:443"})
    assert spoofed.status_code == 200
    url = spoofed.json()["url"]
    assert "evil.example" not in url
    assert url.startswith(f"ws://127.0.0.1:{backend.server.port}/client/hubs/spy?")
    assert spoofed.headers["cache-control"] == "no-store"  # it carries a token
    public: Backend = start_backend(public_url="https://spy.example.com")
    url = public.client.get("/api/v1/negotiate", headers={"Host": "evil.example"}).json()["url"]
    assert url.startswith("wss://spy.example.com/client/hubs/spy?access_token=")


# ------------------------------------------------------------------ 8: many partitions


def test_a_many_partition_batch_registers_its_partitions_in_a_few_transactions(
    start_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8: each new partition was registered in the index by its own request, one
    after the other (9.8 s for 1000). The index rows of a resource share a partition, so
    they go 100 to a transaction. Counted at the SDK's client methods (real calls);
    250 partitions keep the test short on a loaded machine (old code: 250 calls)."""
    index_calls: list[str] = []
    for name in ("upsert_entity", "submit_transaction"):
        original = getattr(TableClient, name)

        def counted(self: TableClient, *args: Any, _o: Any = original, _n: str = name) -> Any:
            if self.table_name.endswith(tables.INDEX_TABLE):
                index_calls.append(_n)
            return _o(self, *args)

        monkeypatch.setattr(TableClient, name, counted)
    backend: Backend = start_backend(storage_timeout_seconds=20)  # a loaded shared machine
    days = 250
    rows = [anomaly(T0 - timedelta(days=d), strike=500.0 + d % 200) for d in range(days)]
    response = backend.ingest({"anomalies": rows})
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == days
    assert len(index_calls) <= 3, index_calls[:5]
    settings = backend.settings
    with TableServiceClient.from_connection_string(
        settings.storage_connection_string.get_secret_value()
    ) as service:  # every day is in the index the purge reads
        index = service.get_table_client(settings.table_prefix + tables.INDEX_TABLE)
        registered = list(index.query_entities("PartitionKey eq 'anomaly'"))
    assert len(registered) == days
