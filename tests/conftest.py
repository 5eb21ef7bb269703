"""Session fixtures shared by every test folder.

`cluster` starts the real local control plane once per session (spy_dev.devcluster)
or, when SPY_TEST_KUBECONFIG names a kubeconfig, uses that existing cluster instead
(kind, k3s, ...; like envtest's USE_EXISTING_CLUSTER). Nothing is started until a test
asks for it, so unit-only runs stay fast.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_support import Cluster, Kubectl
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT, DevCluster
from spy_dev.webhook import WebhookProcess


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    existing = os.environ.get("SPY_TEST_KUBECONFIG")
    if existing:
        kubeconfig = Path(existing)
        kubectl = Kubectl(kubeconfig)
        kubectl("apply", "-f", str(REPO_ROOT / "crds"))
        kubectl.run("create", "namespace", "spy-system", check=False)
        yield Cluster(kubeconfig, None, kubectl)
        return
    if not (DEFAULT_BIN / "kube-apiserver").exists():
        pytest.fail("the local control plane is not built: run `make tools` (make test does)")
    # Pre-made volumes are Retain (no provisioner runs here): one per gateway the
    # whole suite creates, with room to spare.
    dev = DevCluster(tmp_path_factory.mktemp("cluster"), persistent_volumes=300)
    state = dev.start()
    webhook = None
    try:
        kubectl = Kubectl(state.kubeconfig)
        kubectl("apply", "-f", str(REPO_ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
        # The approval webhook (two-person rule) as a cluster would run it; `admin`
        # stands for the GitOps identity, so tests that arm as admin keep working.
        webhook = WebhookProcess(state, Path(state.state_dir)).start()
        yield Cluster(state.kubeconfig, state, kubectl, webhook)
    finally:
        if webhook is not None:
            webhook.stop()
        dev.stop()


@pytest.fixture
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
