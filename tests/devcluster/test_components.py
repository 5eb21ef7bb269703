"""Single-component stop, freeze, thaw and restart of the dev cluster (for chaos tests).

One control plane for the module (spy_dev.devcluster, real binaries). kube-apiserver
is frozen (SIGSTOP: it keeps its socket and answers nothing), thawed, stopped and
restarted alone on the same port and certificates; then every component is restarted
in turn and the cluster still runs a Deployment's pod end to end.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from k8s_support import Kubectl, wait_for
from spy_dev.devcluster import DEFAULT_BIN, ClusterState, DevCluster, client_options
from spy_dev.processes import START_ORDER

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not (DEFAULT_BIN / "kube-apiserver").exists(), reason="control plane not built"
    ),
]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = DevCluster(tmp_path_factory.mktemp("components"), nodes=1, persistent_volumes=0)
    cluster.start()
    yield cluster
    cluster.stop()


def state_of(dev: DevCluster) -> ClusterState:
    assert dev.state is not None
    return dev.state


def readyz(state: ClusterState, timeout: float = 2) -> int:
    with httpx.Client(**client_options(state), timeout=timeout) as client:
        return client.get("/readyz").status_code


def test_apiserver_frozen_answers_nothing_then_thaws(dev: DevCluster) -> None:
    state = state_of(dev)
    assert readyz(state) == 200
    dev.freeze("kube-apiserver")
    try:
        with pytest.raises(httpx.TimeoutException):
            readyz(state, timeout=1)
    finally:
        dev.thaw("kube-apiserver")
    wait_for("apiserver answers after thaw", lambda: readyz(state) == 200, 30)


def test_apiserver_restarts_alone_on_the_same_port_and_certs(dev: DevCluster) -> None:
    state = state_of(dev)
    kubectl = Kubectl(state.kubeconfig)
    kubectl("create", "configmap", "before-restart", "--from-literal=k=v")
    others = {name: dev.procs[name].pid for name in START_ORDER if name != "kube-apiserver"}
    old_pid = dev.procs["kube-apiserver"].pid
    try:
        code = dev.stop_component("kube-apiserver")
        with pytest.raises(httpx.ConnectError):
            readyz(state)
    finally:
        dev.start_component("kube-apiserver")
    assert code == 0, "kube-apiserver did not exit on SIGTERM within 20 s"
    assert dev.procs["kube-apiserver"].pid != old_pid
    assert state_of(dev).pids["kube-apiserver"] == dev.procs["kube-apiserver"].pid
    assert json.loads(Path(state.state_dir, "cluster.json").read_text())["server"] == state.server
    # The same kubeconfig (server URL, CA, token) works, and etcd kept the data.
    assert kubectl.get("configmap", "before-restart", "default")["data"] == {"k": "v"}
    # Nothing else was restarted.
    assert {name: dev.procs[name].pid for name in others} == others


def test_a_crashed_apiserver_restarts(dev: DevCluster) -> None:
    dev.restart_component("kube-apiserver", signal.SIGKILL)
    assert readyz(state_of(dev)) == 200


def deployment(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/c"}]},
            },
        },
    }


@pytest.mark.parametrize("component", START_ORDER)
def test_each_component_restarts_and_the_cluster_still_runs_pods(
    dev: DevCluster, component: str
) -> None:
    """After a restart of `component` a new Deployment still gets a Ready pod: the
    apiserver, the deployment and ReplicaSet controllers, the scheduler and kwok all
    took part."""
    dev.restart_component(component)
    kubectl = Kubectl(state_of(dev).kubeconfig)
    name = f"after-{component}"
    kubectl.apply(deployment(name))
    wait_for(
        f"deployment {name} ready after restarting {component}",
        lambda: (
            (kubectl.get("deployment", name, "default") or {})
            .get("status", {})
            .get("readyReplicas")
            == 1
        ),
        60,
    )
