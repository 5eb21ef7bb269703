"""Fixtures of the bot tests: a fake TWS per test (a chain whose verticals have a price)
and one backend (Azurite, local hub) per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from bot_support import bot_chain
from spy_dev.azurite import AzuriteError
from spy_dev.devserver import DevStack, start_dev_stack
from spy_dev.fake_tws import FakeTWS


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    server = FakeTWS(bot_chain())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# Symbols the backend lets realtime clients join; each test uses its own so tests that
# share the session's backend never see each other's records.
FEED_SYMBOLS = ("SPY", "FEEDA", "FEEDB", "FEEDC", "FEEDD", "E2E")


@pytest.fixture(scope="session")
def backend() -> Iterator[DevStack]:
    """Azurite + the backend with its local realtime hub (json.webpubsub.azure.v1)."""
    try:
        stack = start_dev_stack(dashboard_dir=None, realtime_groups=FEED_SYMBOLS)
    except AzuriteError as exc:
        pytest.fail(f"Azurite could not start: {exc}", pytrace=False)
    yield stack
    stack.stop()
