"""The local Kubernetes control plane (DESIGN §6), started from binaries in .bin/.

etcd + kube-apiserver (RBAC, token users, audit log of writes) + kube-controller-manager
+ kube-scheduler + KWOK with simulated nodes, on free loopback ports, with certificates
made here (spy_dev.pki), command lines from spy_dev.components, start-up objects from
spy_dev.bootstrap, the state file and client options from spy_dev.clusterstate, and
the bot-guard admission policies of deploy/admission/ (spy_dev.admission). Used by the
pytest session fixture (tests/conftest.py), by `make cluster` (`python -m
spy_dev.devcluster up`, whose command line is spy_dev.cluster_cli), by the demo and by
the benches. A single component can be stopped, frozen, thawed and restarted on the
same port and certificates (DevCluster.stop_component & co.) for chaos tests. Nothing
here is imported by the operator itself.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from spy_dev import admission, bootstrap, components, pki
from spy_dev.clusterstate import (
    ADMISSION_DIR,
    DEFAULT_BIN,
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    OPERATOR_USERS,
    REPO_ROOT,
    USERS,
    ClusterState,
    admin_client,
    apiserver_ready,
    client_options,
    running,
)
from spy_dev.components import FAKE_NODE_ANNOTATION
from spy_dev.processes import (
    START_ORDER,
    ClusterError,
    free_port,
    log,
    signal_pid,
    spawn,
    stop_pids,
    wait,
)

__all__ = [
    "ADMISSION_DIR",
    "DEFAULT_BIN",
    "FAKE_NODE_ANNOTATION",
    "OPERATOR_NAMESPACE",
    "OPERATOR_USER",
    "OPERATOR_USERS",
    "REPO_ROOT",
    "USERS",
    "ClusterError",
    "ClusterState",
    "DevCluster",
    "admin_client",
    "apiserver_ready",
    "client_options",
    "free_port",
    "running",
]

BINARIES = (*START_ORDER, "kubectl")


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
        if self.crds is not None:
            bootstrap.install_crds(self.kubectl(), self.crds)

    def _bootstrap(self, state: ClusterState) -> None:
        """Objects every test and the demo expect: fake nodes, storage, namespaces,
        the admission policies."""
        with admin_client(state) as client:
            bootstrap.populate(client, self.nodes, self.persistent_volumes, OPERATOR_NAMESPACE)
            if self.admission_dir is not None:
                log(f"installing admission policies from {self.admission_dir}")
                admission.install(
                    self.kubectl(), self.admission_dir, OPERATOR_USERS, OPERATOR_NAMESPACE
                )
            wait(
                "kwok nodes Ready",
                lambda: bootstrap.nodes_ready(client, self.nodes),
                60,
                self.procs.get("kwok"),
                self.logs / "kwok.log",
            )
            wait(
                "default service account (controller-manager)",
                lambda: bootstrap.default_service_account(client),
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


if __name__ == "__main__":
    # The command line (`make cluster`, `make cluster-down`) lives in spy_dev.cluster_cli.
    from spy_dev.cluster_cli import main

    sys.exit(main())
