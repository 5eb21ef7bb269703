"""Fixtures for the detector tests: a fake TWS gateway and an ingest sink, both on
127.0.0.1 with a free port, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from detector_sink import IngestSink
from spy_dev.fake_tws import FakeTWS


@pytest.fixture
async def fake_tws() -> AsyncIterator[FakeTWS]:
    server = FakeTWS()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def ingest_sink() -> AsyncIterator[IngestSink]:
    sink = IngestSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()
