"""Fixtures for the operator's integration tests (helpers in tests/operator_support.py;
the admission policy tests' in admission_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from k8s_support import Cluster, Kubectl
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


# ------------------------------------------------ the bot-guard admission policy tests


@pytest.fixture
def local_cluster(cluster: Cluster) -> None:
    """Skips a test on a cluster the dev cluster did not start (SPY_TEST_KUBECONFIG)."""
    if not cluster.local:
        pytest.skip("the admission policies are installed by the dev cluster only")


@pytest.fixture
def ns(kubectl: Kubectl, namespace: str) -> str:
    """The test namespace, where alice may edit (RBAC) but not bypass the policy."""
    kubectl(
        "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", namespace
    )
    return namespace
