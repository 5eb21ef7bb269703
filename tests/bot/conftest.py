"""Fixtures of the bot tests: a fake TWS per test (a chain whose verticals have a price)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bot_support import bot_chain
from spy_dev.fake_tws import FakeTWS


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    server = FakeTWS(bot_chain())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
