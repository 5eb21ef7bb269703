"""Objects every dev cluster starts with: simulated nodes, a storage class, volumes.

Called by spy_dev.devcluster.DevCluster.start(): `install_crds` before the controllers
start, `populate` and the readiness checks after. KWOK manages the nodes that carry
FAKE_NODE_ANNOTATION; no volume provisioner runs, so volumes are made up front.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from spy_dev.components import FAKE_NODE_ANNOTATION
from spy_dev.processes import ClusterError, log

STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "kubernetes.io/no-provisioner",
    "volumeBindingMode": "Immediate",
    "reclaimPolicy": "Retain",
}


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        },
    }


def persistent_volume(idx: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"dev-pv-{idx:03d}"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "standard",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/spyoptions-dev-pv/{idx}"},
        },
    }


def install_crds(kubectl: list[str], crds: Path) -> None:
    # Before the controllers start: the garbage collector discovers resource
    # types at start-up and then only every 30 s, and it cannot collect the
    # children of an owner kind it does not know yet.
    log(f"installing CRDs from {crds}")
    for step in (
        ["apply", "-f", str(crds)],
        ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
    ):
        proc = subprocess.run([*kubectl, *step], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(step)}: {proc.stderr.strip()}")


def populate(client: httpx.Client, nodes: int, persistent_volumes: int, namespace: str) -> None:
    """Fake nodes, the default storage class, volumes and the operator's namespace."""
    for idx in range(nodes):
        client.post("/api/v1/nodes", json=node(f"kwok-node-{idx}")).raise_for_status()
    client.post("/apis/storage.k8s.io/v1/storageclasses", json=STORAGE_CLASS).raise_for_status()
    # No volume provisioner runs here; pre-made volumes let the PV binder (a
    # real controller) bind the gateways' settings PVCs.
    for idx in range(persistent_volumes):
        client.post("/api/v1/persistentvolumes", json=persistent_volume(idx)).raise_for_status()
    client.post(
        "/api/v1/namespaces",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    ).raise_for_status()


def nodes_ready(client: httpx.Client, nodes: int) -> bool:
    items = client.get("/api/v1/nodes").json()["items"]
    ready = [
        n
        for n in items
        for c in n.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    ]
    return len(ready) == nodes


def default_service_account(client: httpx.Client) -> bool:
    """The controller-manager has made the default namespace's service account."""
    return client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200
