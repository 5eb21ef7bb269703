"""Fixtures of the bot tests: a fake TWS per test (a chain whose verticals have a price)
one backend (Azurite, local hub) per session, the real operator per e2e test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from bot_support import bot_chain
from k8s_support import Cluster
from operator_support import OperatorProcess
from spy_dev.azurite import AzuriteError
from spy_dev.devcluster import free_port
from spy_dev.devserver import DevStack, start_dev_stack
from spy_dev.fake_tws import FakeTWS
from spy_dev.webhook import operator_env


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


class NamespacedOperator(OperatorProcess):
    """The real operator, watching one namespace, without leader election: the bot's
    other tests write TradingBot status by hand and must not see it reconciled."""

    def __init__(self, cluster: Cluster, log_dir: Path, namespace: str) -> None:
        super().__init__(cluster, log_dir)
        self.namespace = namespace

    def start(self) -> None:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            KUBECONFIG=str(self.cluster.kubeconfig_for(self.user)),
            SPY_RESYNC_SECONDS=str(self.resync_seconds),
            SPY_METRICS_ADDR="127.0.0.1",
        )
        if self.cluster.state is not None:  # verify approvals the webhook recorded
            env.update(operator_env(Path(self.cluster.state.state_dir)))
        argv = [sys.executable, "-m", "spy_operator", "--metrics-port", str(self.metrics_port)]
        argv += ["--namespace", self.namespace, "--no-leader-election"]
        self.starts += 1
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT
        )


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The real operator (python -m spy_operator) for this test's namespace only."""
    op = NamespacedOperator(cluster, tmp_path, namespace)
    op.start()
    yield op
    op.stop()
    assert "reconcile crashed" not in op.log_text(), "the operator hit an unexpected error"
