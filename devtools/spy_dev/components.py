"""Command lines of the local control plane's components, and the scheduler's configuration.

Called by spy_dev.devcluster.DevCluster, which keeps the result so that any single
component restarts with exactly the same flags (port, certificates, data directory).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from spy_dev.processes import free_port

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"

# Issue 8 #8: a pod the scheduler finds unschedulable (its PVC not yet in the
# scheduler's cache, no Ready node yet) is parked until an event it registered for
# moves it, or for --pod-max-in-unschedulable-pods-duration (5 min by default); a
# missed event left 1 fresh cluster in 4 with a Pending gateway. Here a parked pod is
# retried within seconds, with short backoffs, and the nodes exist before the scheduler
# starts.
SCHEDULER_CONFIG: dict[str, Any] = {
    "apiVersion": "kubescheduler.config.k8s.io/v1",
    "kind": "KubeSchedulerConfiguration",
    "leaderElection": {"leaderElect": False},
    "clientConnection": {"qps": 200, "burst": 400},
    "podInitialBackoffSeconds": 1,
    "podMaxBackoffSeconds": 2,
}
UNSCHEDULABLE_RETRY = "5s"


def command_lines(
    bin_path: Callable[[str], str],
    state_dir: Path,
    *,
    etcd_url: str,
    audit_log: Path,
    kubeconfig: Path,
    etcd_peer: int,
    api_port: int,
) -> dict[str, list[str]]:
    """argv per component; writes the scheduler's configuration file into state_dir.

    `kubeconfig` is what the controllers, the scheduler and kwok authenticate with.
    """
    scheduler_config = write_scheduler_config(state_dir, kubeconfig)
    return {
        "etcd": [bin_path("etcd"), *_etcd(state_dir, etcd_url, etcd_peer)],
        "kube-apiserver": [
            bin_path("kube-apiserver"),
            *_apiserver(state_dir, etcd_url, audit_log, api_port),
        ],
        "kube-controller-manager": [
            bin_path("kube-controller-manager"),
            *_controller_manager(state_dir / "pki", kubeconfig),
        ],
        "kube-scheduler": [bin_path("kube-scheduler"), *_scheduler(scheduler_config)],
        "kwok": [bin_path("kwok"), *_kwok(kubeconfig)],
    }


def write_scheduler_config(state_dir: Path, kubeconfig: Path) -> Path:
    path = state_dir / "kube-scheduler.yaml"
    connection = {**SCHEDULER_CONFIG["clientConnection"], "kubeconfig": str(kubeconfig)}
    path.write_text(yaml.safe_dump({**SCHEDULER_CONFIG, "clientConnection": connection}))
    return path


def _etcd(sd: Path, etcd_url: str, etcd_peer: int) -> list[str]:
    return [
        "--name=dev",
        f"--data-dir={sd / 'etcd-data'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=dev=http://127.0.0.1:{etcd_peer}",
        "--unsafe-no-fsync",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]


def _apiserver(sd: Path, etcd_url: str, audit_log: Path, api_port: int) -> list[str]:
    pki_dir = sd / "pki"
    return [
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        f"--secure-port={api_port}",
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
        f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        f"--token-auth-file={sd / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        f"--service-account-key-file={pki_dir / 'sa.pub'}",
        f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--api-audiences=https://kubernetes.default.svc",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--allow-privileged=true",
        f"--audit-policy-file={sd / 'audit-policy.yaml'}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxsize=500",
        "--profiling=false",
        # A SIGTERM otherwise waits for open watches up to --request-timeout
        # (60 s measured) before the process exits.
        "--shutdown-watch-termination-grace-period=2s",
        "--v=0",
    ]


def _controller_manager(pki_dir: Path, components: Path) -> list[str]:
    return [
        f"--kubeconfig={components}",
        "--secure-port=0",
        "--leader-elect=false",
        "--use-service-account-credentials=false",
        f"--service-account-private-key-file={pki_dir / 'sa.key'}",
        f"--root-ca-file={pki_dir / 'ca.crt'}",
        "--controllers=*",
        "--concurrent-deployment-syncs=10",
        "--concurrent-statefulset-syncs=10",
        "--concurrent-gc-syncs=20",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=0",
    ]


def _scheduler(scheduler_config: Path) -> list[str]:
    return [
        f"--config={scheduler_config}",
        "--secure-port=0",
        f"--pod-max-in-unschedulable-pods-duration={UNSCHEDULABLE_RETRY}",
        "--v=0",
    ]


def _kwok(components: Path) -> list[str]:
    return [
        f"--kubeconfig={components}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
        "--cidr=10.0.0.1/16",
        "--node-ip=10.0.0.1",
        "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{free_port()}",
    ]
