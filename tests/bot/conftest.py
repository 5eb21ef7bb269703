"""Fixtures of the bot tests: a fake TWS per test (a chain whose verticals have a price)
one backend (Azurite, local hub) and the real operator per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from bot_support import bot_chain
from k8s_support import Cluster
from operator_support import OperatorProcess
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


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The real operator (python -m spy_operator) on the local control plane."""
    op = OperatorProcess(cluster, tmp_path_factory.mktemp("bot-operator-logs"))
    op.start()
    yield op
    op.stop()
    assert "reconcile crashed" not in op.log_text(), "the operator hit an unexpected error"
