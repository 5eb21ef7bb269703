"""Fixtures for the operator's integration tests (helpers in tests/operator_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from k8s_support import Cluster
from operator_support import GateInvariantWatcher, OperatorProcess


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, tmp_path_factory.mktemp("operator-logs"))
    op.start()
    yield op
    op.stop()
    assert "reconcile crashed" not in op.log_text(), "the operator hit an unexpected error"


@pytest.fixture(scope="module")
def gate_watcher(cluster: Cluster) -> Iterator[GateInvariantWatcher]:
    watcher = GateInvariantWatcher(cluster.kubectl)
    watcher.start()
    yield watcher
    watcher.stop()
    assert watcher.samples > 10, "the invariant watcher barely ran"
    assert not watcher.violations, f"bot Deployments stayed above the gate: {watcher.violations}"
