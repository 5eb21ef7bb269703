"""Shared fixtures and helpers for the detector tests (tests/detector/)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_tws import FakeTWS
from ingest_sink import IngestSink


async def eventually(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` holds (checked every 10 ms), or fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


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
