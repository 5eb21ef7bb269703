"""The local Kubernetes control plane (DESIGN §6), started from binaries in .bin/.

etcd + kube-apiserver (RBAC, token users, audit log of writes) + kube-controller-manager
+ kube-scheduler + KWOK with simulated nodes, on free loopback ports, with certificates
made here (spy_dev.pki), command lines from spy_dev.components, start-up objects
from spy_dev.bootstrap, and the bot-guard admission policies of deploy/admission/
(spy_dev.admission). Used by the pytest session fixture (tests/conftest.py), by `make
cluster` (`python -m spy_dev.devcluster up`), by the demo and by the benches. A single
component can be stopped, frozen, thawed and restarted on the same port and
certificates (DevCluster.stop_component & co.) for chaos tests. Nothing here is imported
by the operator itself.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from spy_dev import admission, bootstrap, components, pki
from spy_dev.components import FAKE_NODE_ANNOTATION
from spy_dev.processes import (
    START_ORDER,
    ClusterError,
    alive,
    free_port,
    log,
    signal_pid,
    spawn,
    stop_pids,
    wait,
)

__all__ = [
    "DEFAULT_BIN",
    "FAKE_NODE_ANNOTATION",
    "REPO_ROOT",
    "ClusterError",
    "ClusterState",
    "DevCluster",
    "admin_client",
    "client_options",
    "free_port",
    "running",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".bin"
ADMISSION_DIR = REPO_ROOT / "deploy" / "admission"
BINARIES = (*START_ORDER, "kubectl")
OPERATOR_NAMESPACE = "spy-system"
OPERATOR_USER = "spy-operator"
# The identities the bot-guard admission policy exempts here (two operator replicas).
OPERATOR_USERS = (OPERATOR_USER, "spy-operator-2")
# name -> groups. admin and the operator are cluster admins here (least-privilege RBAC
# for the operator ships with the Helm chart); alice and bob are plain users for RBAC
# and two-person-rule tests. Being a cluster admin does not exempt admin from the
# bot-guard admission policy: only OPERATOR_USERS are.
USERS: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    OPERATOR_USERS[0]: ("system:masters",),
    OPERATOR_USERS[1]: ("system:masters",),
    "alice": ("traders", "system:authenticated"),
    "bob": ("approvers", "system:authenticated"),
    "components": ("system:masters",),
}


@dataclass
class ClusterState:
    """What a running cluster is: persisted as state_dir/cluster.json."""

    state_dir: str
    server: str
    etcd_url: str
    tokens: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return Path(self.state_dir) / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return Path(self.state_dir) / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return Path(self.state_dir) / "logs" / "audit.log"

    def kubeconfig_for(self, user: str) -> Path:
        return Path(self.state_dir) / f"kubeconfig-{user}"

    def save(self) -> None:
        path = Path(self.state_dir) / "cluster.json"
        path.write_text(json.dumps(self.__dict__, indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        path = state_dir / "cluster.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def client_options(state: ClusterState, user: str = "admin") -> dict[str, Any]:
    """httpx client options for the apiserver as one of the token users (sync or async)."""
    return {
        "base_url": state.server,
        "headers": {"Authorization": f"Bearer {state.tokens[user]}"},
        "verify": ssl.create_default_context(cafile=str(state.ca_file)),
    }


def admin_client(state: ClusterState, user: str = "admin") -> httpx.Client:
    """A plain HTTP client to the apiserver as one of the token users."""
    return httpx.Client(**client_options(state, user), timeout=30)


def apiserver_ready(state: ClusterState) -> bool:
    with admin_client(state) as client:
        return client.get("/readyz", timeout=2).status_code == 200


class DevCluster:
    """Starts and stops the local control plane. Use as a context manager or via up/down.

    Start order: etcd, kube-apiserver, CRDs, kube-controller-manager and kwok, then the
    bootstrap objects (nodes, storage, namespaces, admission policies), and the
    scheduler last, once the nodes are Ready (see spy_dev.components.SCHEDULER_CONFIG).
    """

    def __init__(
        self,
        state_dir: Path,
        bin_dir: Path = DEFAULT_BIN,
        nodes: int = 2,
        persistent_volumes: int = 40,
        detach: bool = False,
        crds: Path | None = REPO_ROOT / "crds",
        admission_dir: Path | None = ADMISSION_DIR,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.bin_dir = bin_dir
        self.nodes = nodes
        self.persistent_volumes = persistent_volumes
        self.detach = detach
        self.crds = crds
        self.admission_dir = admission_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Each component's command line, kept so it restarts on the same port and certs.
        self.argv: dict[str, list[str]] = {}
        self.state: ClusterState | None = None

    def __enter__(self) -> ClusterState:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise ClusterError(f"{path} is missing: run `make tools` first")
        return str(path)

    def kubectl(self, user: str = "admin") -> list[str]:
        """kubectl's argv prefix as one of the token users."""
        assert self.state is not None, "the cluster is not started"
        return [self._bin("kubectl"), f"--kubeconfig={self.state.kubeconfig_for(user)}"]

    def start(self) -> ClusterState:
        for name in BINARIES:
            self._bin(name)
        started = time.monotonic()
        sd = self.state_dir
        for sub in ("pki", "logs", "etcd-data"):
            (sd / sub).mkdir(parents=True, exist_ok=True)
        for old in self.logs.glob("*.log"):
            old.unlink()
        pki.write_pki(sd / "pki")
        tokens = {user: secrets.token_hex(16) for user in USERS}
        pki.write_secret_file(
            sd / "tokens.csv",
            "".join(
                f'{tokens[u]},{u},uid-{u},"{",".join(groups)}"\n' for u, groups in USERS.items()
            ),
        )
        (sd / "audit-policy.yaml").write_text(yaml.safe_dump(pki.AUDIT_POLICY))
        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        server = f"https://127.0.0.1:{api_port}"
        state = ClusterState(state_dir=str(sd), server=server, etcd_url=etcd_url, tokens=tokens)
        self.state = state
        for user in USERS:
            pki.write_secret_file(
                state.kubeconfig_for(user),
                yaml.safe_dump(pki.kubeconfig(server, state.ca_file, {user: tokens[user]}, user)),
            )
        pki.write_secret_file(
            state.kubeconfig,
            yaml.safe_dump(pki.kubeconfig(server, state.ca_file, tokens, "admin")),
        )
        self._command_lines(state, etcd_peer, api_port)
        try:
            for name in ("etcd", "kube-apiserver"):
                self.start_component(name)
            self._install_crds()
            for name in ("kube-controller-manager", "kwok"):
                self.start_component(name)
            self._bootstrap(state)
            self.start_component("kube-scheduler")
        except BaseException:
            self.stop()
            raise
        log(f"control plane ready in {time.monotonic() - started:.1f} s at {server}")
        return state

    def _command_lines(self, state: ClusterState, etcd_peer: int, api_port: int) -> None:
        self.argv = components.command_lines(
            self._bin,
            self.state_dir,
            etcd_url=state.etcd_url,
            audit_log=state.audit_log,
            kubeconfig=state.kubeconfig_for("components"),
            etcd_peer=etcd_peer,
            api_port=api_port,
        )

    # ------------------------------------------------------------ single components

    def start_component(self, name: str, timeout: float = 90) -> None:
        """Start one component with its recorded command line and wait until it serves."""
        assert self.state is not None, "the cluster is not started"
        state = self.state
        current = self.procs.get(name)
        if current is not None and current.poll() is None:
            raise ClusterError(f"{name} is already running (pid {current.pid})")
        log(f"starting {name}")
        proc = spawn(name, self.argv[name], self.logs, self.detach)
        self.procs[name] = proc
        state.pids[name] = proc.pid
        state.save()
        logfile = self.logs / f"{name}.log"
        if name == "etcd":
            wait(
                "etcd",
                lambda: (
                    httpx.get(f"{state.etcd_url}/health", timeout=1).json().get("health") == "true"
                ),
                timeout,
                proc,
                logfile,
            )
        elif name == "kube-apiserver":
            wait("kube-apiserver", lambda: apiserver_ready(state), timeout, proc, logfile)
        else:
            # No health port (--secure-port=0): alive after a moment is all we can see.
            wait(name, lambda: proc.poll() is None, timeout, proc, logfile)

    def stop_component(
        self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 20
    ) -> int:
        """Stop one component (SIGTERM, or SIGKILL for a crash) and reap it; its exit code.

        Whatever has not exited `timeout` seconds after the signal is SIGKILLed (-9).
        """
        proc = self.procs.pop(name, None)
        if proc is None:
            raise ClusterError(f"{name} is not running under this DevCluster")
        signal_pid(proc.pid, sig)
        signal_pid(proc.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        if self.state is not None:
            self.state.pids.pop(name, None)
            self.state.save()
        return code

    def freeze(self, name: str) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a hung component)."""
        signal_pid(self.procs[name].pid, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        signal_pid(self.procs[name].pid, signal.SIGCONT)

    def restart_component(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop and start one component on the same port, certificates and data."""
        self.stop_component(name, sig)
        self.start_component(name)

    # ------------------------------------------------------------------- bootstrap

    def _install_crds(self) -> None:
        if self.crds is None:
            return
        # Before the controllers start: the garbage collector discovers resource
        # types at start-up and then only every 30 s, and it cannot collect the
        # children of an owner kind it does not know yet.
        log(f"installing CRDs from {self.crds}")
        for step in (
            ["apply", "-f", str(self.crds)],
            ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
        ):
            proc = subprocess.run(
                [*self.kubectl(), *step], capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise ClusterError(f"kubectl {' '.join(step)}: {proc.stderr.strip()}")

    def _bootstrap(self, state: ClusterState) -> None:
        """Objects every test and the demo expect: fake nodes, storage, namespaces,
        the admission policies."""
        with admin_client(state) as client:
            for idx in range(self.nodes):
                client.post(
                    "/api/v1/nodes", json=bootstrap.node(f"kwok-node-{idx}")
                ).raise_for_status()
            client.post(
                "/apis/storage.k8s.io/v1/storageclasses", json=bootstrap.STORAGE_CLASS
            ).raise_for_status()
            # No volume provisioner runs here; pre-made volumes let the PV binder (a
            # real controller) bind the gateways' settings PVCs.
            for idx in range(self.persistent_volumes):
                client.post(
                    "/api/v1/persistentvolumes", json=bootstrap.persistent_volume(idx)
                ).raise_for_status()
            client.post(
                "/api/v1/namespaces",
                json={
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": OPERATOR_NAMESPACE},
                },
            ).raise_for_status()
            if self.admission_dir is not None:
                log(f"installing admission policies from {self.admission_dir}")
                admission.install(
                    self.kubectl(), self.admission_dir, OPERATOR_USERS, OPERATOR_NAMESPACE
                )

            def nodes_ready() -> bool:
                items = client.get("/api/v1/nodes").json()["items"]
                ready = [
                    n
                    for n in items
                    for c in n.get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["status"] == "True"
                ]
                return len(ready) == self.nodes

            wait(
                "kwok nodes Ready", nodes_ready, 60, self.procs.get("kwok"), self.logs / "kwok.log"
            )
            wait(
                "default service account (controller-manager)",
                lambda: (
                    client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code
                    == 200
                ),
                60,
                self.procs.get("kube-controller-manager"),
                self.logs / "kube-controller-manager.log",
            )

    def stop(self) -> None:
        pids = {name: p.pid for name, p in self.procs.items()}
        if not pids and self.state is not None:
            pids = self.state.pids
        stop_pids(pids)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} did not exit")
        self.procs.clear()


def running(state_dir: Path) -> ClusterState | None:
    """The cluster recorded in state_dir if all its processes are alive and it answers."""
    state = ClusterState.load(state_dir)
    if state is None or not state.pids or not all(alive(p) for p in state.pids.values()):
        return None
    try:
        if apiserver_ready(state):
            return state
    except (httpx.HTTPError, OSError):
        return None
    return None


def _usage(state: ClusterState) -> str:
    return (
        f"\nLocal control plane is up at {state.server}\n"
        f"  export KUBECONFIG={state.kubeconfig}\n"
        f"  {DEFAULT_BIN / 'kubectl'} get nodes\n"
        f"  kubeconfigs per user: {Path(state.state_dir)}/kubeconfig-{{admin,alice,bob}}\n"
        f"  bot-guard admission policies: {ADMISSION_DIR} (exempt: {', '.join(OPERATOR_USERS)})\n"
        f"  stop it with: make cluster-down\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.devcluster",
        description="Start or stop the local control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok) built in .bin/.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".local",
        help="where certificates, logs, etcd data and the kubeconfig live",
    )
    parser.add_argument("--nodes", type=int, default=2, help="simulated KWOK nodes")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    current = running(state_dir)
    if args.command == "status":
        print("running" if current else "stopped")
        return 0 if current else 1
    if args.command == "down":
        state = ClusterState.load(state_dir)
        if state is None:
            log("no cluster recorded in " + str(state_dir))
            return 0
        stop_pids(state.pids)
        (state_dir / "cluster.json").unlink(missing_ok=True)
        log("stopped")
        return 0
    if current is not None:
        log("already running")
        print(_usage(current))
        return 0
    stale = ClusterState.load(state_dir)
    if stale is not None:
        stop_pids(stale.pids)
    for sub in ("etcd-data",):
        target = state_dir / sub
        if target.exists():
            subprocess.run(["rm", "-rf", str(target)], check=True)
    try:
        state = DevCluster(state_dir, nodes=args.nodes, detach=True).start()
    except ClusterError as err:
        log(f"failed: {err}")
        return 1
    print(_usage(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
