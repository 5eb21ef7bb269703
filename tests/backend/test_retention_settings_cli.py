"""Retention purge on Azurite, Settings refusing unsafe defaults, the CLI and devserver."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from spy_backend.__main__ import openapi_json
from spy_backend.models import AnomalyCreate, Resource
from spy_backend.retention import purge_cutoff, purge_once
from spy_backend.settings import DEV_INGEST_TOKEN, Settings
from spy_backend.storage import TableStore
from spy_dev.devserver import start_dev_stack

from ._support import anomaly
from .conftest import Backend, make_settings


def test_purge_cutoff_is_in_trading_days() -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 on the 24th in New York
    assert purge_cutoff(now, 30) == date(2026, 10, 25)


async def test_purge_deletes_only_partitions_older_than_retention(azurite: Any) -> None:
    settings = make_settings(azurite.connection_string)
    store = TableStore(settings.storage_connection_string.get_secret_value(), "purge1")
    now = datetime(2026, 11, 25, 18, tzinfo=UTC)
    try:
        await store.open()
        old = [anomaly(now - timedelta(days=40), strike=500.0 + i) for i in range(130)]
        keep = [anomaly(now - timedelta(days=d), strike=600.0) for d in (0, 29)]
        records = [AnomalyCreate.model_validate(a).public() for a in old + keep]
        outcome = await store.insert_new(Resource.ANOMALY, records)
        assert len(outcome.stored) == 132
        assert await purge_once(store, now, retention_days=30) == 130
        assert await purge_once(store, now, retention_days=30) == 0
        items, cursor = await store.query(
            Resource.ANOMALY, "SPY", now - timedelta(days=60), now, limit=1000
        )
        while cursor is not None:  # a page scans a few trading days at most
            more, cursor = await store.query(
                Resource.ANOMALY, "SPY", now - timedelta(days=60), now, limit=1000, cursor=cursor
            )
            items += more
        assert sorted(i.ts for i in items) == sorted(r.ts for r in records[130:])
    finally:
        await store.close()


@pytest.mark.parametrize("environment", ["test", "production"])
def test_settings_refuse_default_secrets_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="ingest_token"):
        Settings(environment=environment)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="local_hub_key"):
        Settings(environment=environment, ingest_token=SecretStr("x" * 32))  # type: ignore[arg-type]


def test_settings_accept_defaults_in_development_and_check_azure() -> None:
    assert Settings().ingest_token.get_secret_value() == DEV_INGEST_TOKEN
    with pytest.raises(ValidationError, match="webpubsub_connection_string"):
        Settings(realtime="azure")
    prod = {"ingest_token": SecretStr("x" * 32), "local_hub_key": SecretStr("k" * 32)}
    with pytest.raises(ValidationError, match="Azurite development key"):
        Settings(environment="production", **prod)  # type: ignore[arg-type]


def test_cli_help_lists_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spy_backend", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--port" in result.stdout and "SPY_BACKEND_INGEST_TOKEN" in result.stdout


def test_cli_refuses_unsafe_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spy_backend"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SPY_BACKEND_ENVIRONMENT": "production", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "unsafe settings" in result.stderr


def test_devserver_serves_dashboard_api_and_hub(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>SPY</title>")
    stack = start_dev_stack(dashboard_dir=tmp_path)
    try:
        with httpx.Client(base_url=stack.url) as client:
            assert "<title>SPY</title>" in client.get("/").text
            assert client.get("/readyz").status_code == 200
            assert client.get("/api/v1/negotiate").json()["url"].startswith("ws://")
            body = {"anomalies": [anomaly()]}
            headers = {"Authorization": f"Bearer {stack.ingest_token}"}
            assert client.post("/api/v1/ingest", json=body, headers=headers).status_code == 200
    finally:
        stack.stop()
    assert not stack.azurite.running


def test_metrics_and_probes(backend: Backend) -> None:
    assert backend.client.get("/healthz").json() == {"status": "ok", "storage": None}
    assert backend.client.get("/readyz").json() == {"status": "ready", "storage": True}
    backend.ingest({"anomalies": [anomaly()]})
    text = backend.client.get("/metrics").text
    assert 'spy_backend_ingested_records_total{resource="anomaly",result="stored"} 1.0' in text
    assert "spy_backend_http_request_seconds_bucket" in text
    assert 'route="/api/v1/ingest",status="200"' in text


def test_committed_openapi_matches_the_app() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    regenerate = ".venv/bin/python -m spy_backend --openapi docs/openapi.json"
    assert committed.read_text() == openapi_json(), f"stale docs/openapi.json: run {regenerate}"
