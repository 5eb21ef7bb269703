"""Helpers for the operator's integration tests: manifest factories, waiting on the gate,
the operator as a real process, and (re-exported from gate_invariant.py) the gate
invariant watcher (fixtures in tests/operator/conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate_invariant import GateInvariantWatcher, Violation
from k8s_support import Cluster, Kubectl, wait_for
from spy_dev import admission
from spy_dev.devcluster import DEFAULT_BIN, free_port
from spy_dev.webhook import operator_env
from spy_operator import constants as c

REGISTRY = "spyoptions.azurecr.io"


# ----------------------------------------------------------------------- manifests


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_seconds(seconds: float) -> str:
    return rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def pull_secret(name: str = "acr-pull", registry: str = REGISTRY) -> dict[str, Any]:
    config = {"auths": {registry: {"auth": base64.b64encode(b"user:pass").decode()}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json.dumps(config)},
    }


def credentials(
    name: str = "ib-creds", keys: tuple[str, ...] = ("username", "password")
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": {k: "x" for k in keys},
    }


def gateway(
    name: str = "gw", mode: str = "paper", read_only: bool = False, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": "IBGateway",
        "metadata": {"name": name},
        "spec": {
            "tradingMode": mode,
            "readOnlyApi": read_only,
            "credentialsSecretRef": {"name": "ib-creds"},
            **spec,
        },
    }


def bot(
    name: str = "bot",
    gw: str = "gw",
    armed: bool = True,
    expires_in: float | None = 3600,
    mode: str = "paper",
    approved_by: str | None = "bob",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": f"{REGISTRY}/spy-bot:0.1.0",
        "imagePullSecrets": [{"name": "acr-pull"}],
        "gatewayRef": {"name": gw},
        "mode": mode,
        "armed": armed,
    }
    if approved_by is not None and expires_in is not None:
        body["approval"] = {
            "approvedBy": approved_by,
            "reason": "integration test",
            "expiresAt": in_seconds(expires_in),
        }
    body.update(spec)
    return {
        "apiVersion": c.API_VERSION,
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": body,
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in (obj or {}).get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            return dict(cond)
    return {}


def ready(kubectl: Kubectl, kind: str, name: str, namespace: str) -> bool:
    """The object's Ready condition is True."""
    return condition(kubectl.get(kind, name, namespace), "Ready").get("status") == "True"


def deployment_replicas(kubectl: Kubectl, namespace: str, bot_name: str) -> int | None:
    dep = kubectl.get("deployment", f"{bot_name}-bot", namespace)
    return None if dep is None else int(dep["spec"].get("replicas", 0))


def wait_bot(
    kubectl: Kubectl, namespace: str, name: str, replicas: int, reason: str, timeout: float = 30
) -> dict[str, Any]:
    """Wait until the bot's status and its Deployment both show the gate's decision."""

    def probe() -> dict[str, Any] | None:
        tb = kubectl.get("tradingbot", name, namespace)
        status = (tb or {}).get("status", {})
        if status.get("replicas") != replicas or status.get("reason") != reason:
            return None
        if status.get("observedGeneration") != tb["metadata"]["generation"]:
            return None
        if deployment_replicas(kubectl, namespace, name) != replicas:
            return None
        return tb  # type: ignore[no-any-return]

    return wait_for(f"bot {namespace}/{name} at {replicas} replicas ({reason})", probe, timeout)


@contextlib.contextmanager
def halted(kubectl: Kubectl, reason: str = "drill") -> Iterator[None]:
    """The global halt ConfigMap exists for the duration of the block."""
    ns = c.DEFAULT_OPERATOR_NAMESPACE
    kubectl("-n", ns, "create", "configmap", c.HALT_CONFIGMAP, f"--from-literal=reason={reason}")
    try:
        yield
    finally:
        kubectl("-n", ns, "delete", "configmap", c.HALT_CONFIGMAP)


def paper_world(kubectl: Kubectl, namespace: str, gw: str = "gw", **gw_spec: Any) -> None:
    """Secrets and a Ready paper gateway."""
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(credentials(), namespace)
    kubectl.apply(gateway(gw, **gw_spec), namespace)
    # 60 s: a gateway's first scheduling attempt always fails (its PVC is not bound
    # yet) and waits for a retry, which on a loaded CI machine took up to 31.5 s.
    wait_for(
        f"gateway {gw} Ready",
        lambda: condition(kubectl.get("ibgateway", gw, namespace), "Ready").get("status") == "True",
        60,
    )


# ------------------------------------------------------------------------ operator


@dataclass
class OperatorProcess:
    """`python -m spy_operator` as the operator user, with a short resync for tests."""

    cluster: Cluster
    log_dir: Path
    user: str = c.MANAGED_BY
    resync_seconds: float = 3.0
    # A short Lease so a SIGKILLed leader is replaced within seconds in tests.
    lease_seconds: float = 5.0
    renew_seconds: float = 1.0
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.user}.log"

    def start(self) -> None:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            KUBECONFIG=str(self.cluster.kubeconfig_for(self.user)),
            SPY_RESYNC_SECONDS=str(self.resync_seconds),
            SPY_VPN_PROBE_TTL="0.5",
            SPY_VPN_RECHECK_SECONDS="1",
            SPY_METRICS_ADDR="127.0.0.1",
            SPY_LEASE_SECONDS=str(self.lease_seconds),
            SPY_LEASE_RENEW_SECONDS=str(self.renew_seconds),
        )
        if self.cluster.state is not None:
            env.update(operator_env(Path(self.cluster.state.state_dir)))
        self.starts += 1
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spy_operator", "--metrics-port", str(self.metrics_port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no Lease release."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# ------------------------------------------------------------- invariant watcher
# The watcher and its oracle live in gate_invariant.py and gate_allowance.py, shared
# with the chaos suite; the fixtures here and in conftest.py import them from here.
__all__ = ["GateInvariantWatcher", "Violation"]


@contextlib.contextmanager
def tcp_listener() -> Iterator[tuple[socket.socket, int]]:
    """A loopback TCP server standing in for a host across the VPN tunnel."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = srv.accept()
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield srv, srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


@contextlib.contextmanager
def admission_suspended(kubectl: Kubectl) -> Iterator[None]:
    """Lift the bot-guard admission bindings (deploy/admission/) for the block (Audit
    only: spy_dev.admission.suspend_bindings says why they are never deleted).

    For tests of the operator's revert path only: with the bindings in place a hand
    scale-up or a rogue bot Deployment is refused before the operator could see it
    (tests/operator/test_admission_*_cluster.py). Restored, and waited for, after.
    """
    argv = [str(DEFAULT_BIN / "kubectl"), f"--kubeconfig={kubectl.kubeconfig}"]
    saved = admission.suspend_bindings(argv, c.DEFAULT_OPERATOR_NAMESPACE)
    try:
        yield
    finally:
        admission.resume_bindings(argv, c.DEFAULT_OPERATOR_NAMESPACE, saved)
