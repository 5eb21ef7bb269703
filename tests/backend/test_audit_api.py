"""The bots' audit API (docs/bot.md "Audit log") on a real backend and real Azurite:
bearer token, body cap, validation naming the field, append-only storage that is
idempotent on (bot, run, seq), and the newest-first trail with filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from .conftest import TOKEN, Backend

AUDIT_TOKEN = "test-audit-token-0123456789abcdef"
T0 = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)


def line(seq: int, event: str = "decision", run: str = "1764689400000000-42", **extra: Any) -> Any:
    return {
        "ts": (T0 + timedelta(seconds=seq)).isoformat(timespec="microseconds"),
        "seq": seq,
        "run": run,
        "bot": "spy-paper/mean-reversion",
        "event": event,
        **extra,
    }


def without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


def post(backend: Backend, body: Any, token: str | None = AUDIT_TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return backend.client.post("/api/v1/audit", json=body, headers=headers)


def get(backend: Backend, token: str = AUDIT_TOKEN, **params: Any) -> Any:
    params.setdefault("bot", "spy-paper/mean-reversion")
    return backend.client.get(
        "/api/v1/audit", params=params, headers={"Authorization": f"Bearer {token}"}
    )


def test_records_are_stored_once_and_read_newest_first(start_backend: Any) -> None:
    backend: Backend = start_backend(audit_token=SecretStr(AUDIT_TOKEN))
    records = [
        line(1, "signal", signal={"id": "a1", "kind": "iv_residual", "score": 3.2}),
        line(2, "decision", signal_id="a1", decision="order", reason="Accepted"),
        line(3, "order", signal_id="a1", order_ref="spy-abc", limit=1.25, legs=[{"strike": 600}]),
    ]
    reply = post(backend, {"records": records})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"stored": 3, "duplicate": 0}
    # A retried batch (the bot's buffer after a lost reply) changes nothing.
    again = post(backend, {"records": [*records, records[0]]})
    assert again.json() == {"stored": 0, "duplicate": 4}
    # Append-only: the same id with other content does not overwrite the first.
    post(backend, {"records": [{**records[2], "order_ref": "spy-forged"}]})

    page = get(backend)
    assert page.status_code == 200, page.text
    assert [r["seq"] for r in page.json()["items"]] == [3, 2, 1]
    assert page.json()["items"][0] == records[2]  # every field as sent
    assert page.json()["next_cursor"] is None

    orders = get(backend, event="order").json()["items"]
    assert [r["order_ref"] for r in orders] == ["spy-abc"]
    window = get(backend, start=(T0 + timedelta(seconds=2)).isoformat()).json()["items"]
    assert [r["seq"] for r in window] == [3, 2]
    window = get(backend, end=(T0 + timedelta(seconds=2)).isoformat()).json()["items"]
    assert [r["seq"] for r in window] == [2, 1]
    assert get(backend, bot="spy-paper/other").json()["items"] == []


def test_paging_and_runs(start_backend: Any) -> None:
    backend: Backend = start_backend(audit_token=SecretStr(AUDIT_TOKEN))
    first = [line(i, run="run-a") for i in range(1, 6)]
    second = [line(i, run="run-b") for i in range(1, 3)]  # a restarted bot: seq again from 1
    assert post(backend, {"records": first + second}).json() == {"stored": 7, "duplicate": 0}
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = get(backend, **params).json()
        seen += [(r["run"], r["seq"]) for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    assert [s for _, s in seen] == sorted((s for _, s in seen), reverse=True)


def test_token_is_required_and_distinct(start_backend: Any) -> None:
    backend: Backend = start_backend(audit_token=SecretStr(AUDIT_TOKEN))
    body = {"records": [line(1)]}
    assert post(backend, body, token=None).status_code == 401
    assert post(backend, body, token=TOKEN).status_code == 403  # the ingest token
    assert get(backend, token=TOKEN).status_code == 403
    assert backend.client.get("/api/v1/audit", params={"bot": "a/b"}).status_code == 401
    # No token configured outside development: nobody may write or read.
    closed: Backend = start_backend()
    assert post(closed, body, token="").status_code == 401
    assert post(closed, body, token="anything-at-all-0123456789").status_code == 403
    assert get(closed, token="anything-at-all-0123456789").status_code == 403


def test_bad_records_are_422_naming_the_field(start_backend: Any) -> None:
    backend: Backend = start_backend(audit_token=SecretStr(AUDIT_TOKEN))
    cases = [
        ({"records": [line(1), {**line(2), "bot": "Not A Bot"}]}, ["body", "records", 1, "bot"]),
        ({"records": [{**line(1), "seq": 0}]}, ["body", "records", 0, "seq"]),
        ({"records": [{**line(1), "seq": "7"}]}, ["body", "records", 0, "seq"]),
        ({"records": [{**line(1), "event": "trade"}]}, ["body", "records", 0, "event"]),
        ({"records": [without(line(1), "run")]}, ["body", "records", 0, "run"]),
        ({"records": [{**line(1), "ts": "yesterday"}]}, ["body", "records", 0, "ts"]),
        ({"records": []}, ["body", "records"]),
        ({"records": [line(i) for i in range(1, 1002)]}, ["body", "records"]),
        ({"records": [line(1)], "extra": 1}, ["body", "extra"]),
    ]  # fmt: skip
    for body, loc in cases:
        reply = post(backend, body)
        assert reply.status_code == 422, (loc, reply.text)
        assert loc in [e["loc"] for e in reply.json()["detail"]], (loc, reply.json())
    deep: Any = {"x": 1}
    for _ in range(10):
        deep = {"d": deep}
    for extra in ({"nested": deep}, {"blob": "x" * 20_000}):
        reply = post(backend, {"records": [line(1, **extra)]})
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"][:3] == [
            "body",
            "records",
            0,
        ], reply.text
    bad_json = backend.client.post(
        "/api/v1/audit",
        content=b'{"records": [',
        headers={"Authorization": f"Bearer {AUDIT_TOKEN}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422
    # nothing of a refused batch was stored
    assert get(backend).json()["items"] == []


def test_body_cap_is_413(start_backend: Any) -> None:
    backend: Backend = start_backend(audit_token=SecretStr(AUDIT_TOKEN))
    big = {"records": [line(i, note="y" * 3000) for i in range(1, 800)]}  # ~2.4 MB
    reply = post(backend, big)
    assert reply.status_code == 413, reply.text


def test_storage_outage_is_503_with_retry_after(start_backend: Any) -> None:
    from spy_backend.settings import azurite_connection_string
    from spy_dev.devcluster import free_port

    backend: Backend = start_backend(
        azurite_connection_string(free_port()), audit_token=SecretStr(AUDIT_TOKEN)
    )
    reply = post(backend, {"records": [line(1)]})
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "1", reply.text
