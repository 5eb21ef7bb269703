"""Fixtures of the backend tests: one Azurite per session, a backend per test.

Azurite is the pinned npm package (`make azurite`); when it can not start, every test
that needs it fails with the reason and the install hint. Each test gets its own table
prefix, so tests share Azurite without seeing each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from spy_backend.app import create_app
from spy_backend.server import BackgroundServer
from spy_backend.settings import Settings
from spy_dev.azurite import Azurite, AzuriteError

TOKEN = "test-ingest-token-0123456789abcdef"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = Azurite()
    try:
        instance.start()
    except AzuriteError as exc:
        pytest.fail(f"Azurite could not start: {exc}", pytrace=False)
    yield instance
    instance.stop()


def make_settings(connection_string: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "ingest_token": SecretStr(TOKEN),
        "local_hub_key": SecretStr("test-hub-key-" + uuid.uuid4().hex),
        "storage_connection_string": SecretStr(connection_string),
        "table_prefix": "t" + uuid.uuid4().hex[:12],
        "storage_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Backend:
    server: BackgroundServer
    settings: Settings
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def ingest(self, body: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post("/api/v1/ingest", json=body, headers=headers)


@pytest.fixture
def start_backend(azurite: Azurite) -> Iterator[Any]:
    """Factory: start a backend (own tables) with settings overrides; stopped at teardown."""
    started: list[Backend] = []

    def start(connection_string: str | None = None, **overrides: Any) -> Backend:
        settings = make_settings(connection_string or azurite.connection_string, **overrides)
        app = create_app(settings, run_purge=False)
        server = BackgroundServer(app).start()
        backend = Backend(server, settings, httpx.Client(base_url=server.url, timeout=30))
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.client.close()
        backend.server.stop()


@pytest.fixture
def backend(start_backend: Any) -> Backend:
    b: Backend = start_backend()
    return b
