"""Helpers for the operator's integration tests: manifest factories, waiting on the gate,
the operator as a real process, and the gate invariant watcher (fixtures in
tests/operator/conftest.py)."""

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8s_support import Cluster, Kubectl, wait_for
from spy_dev.devcluster import free_port
from spy_dev.webhook import operator_env
from spy_operator import constants as c
from spy_operator.gate import GatewayView, Mode, check_approval, check_gateway, parse_approval

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


def paper_world(kubectl: Kubectl, namespace: str, gw: str = "gw", **gw_spec: Any) -> None:
    """Secrets and a Ready paper gateway."""
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(credentials(), namespace)
    kubectl.apply(gateway(gw, **gw_spec), namespace)
    wait_for(
        f"gateway {gw} Ready",
        lambda: condition(kubectl.get("ibgateway", gw, namespace), "Ready").get("status") == "True",
        30,
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


@dataclass
class Violation:
    deployment: str
    replicas: int
    allowed: int
    seconds: float


class GateInvariantWatcher(threading.Thread):
    """Polls the cluster and fails the module if a bot Deployment stays above the gate.

    The oracle is independent of the operator's status: a bot may run only while its
    spec is armed with an unexpired approval, no halt ConfigMap exists, and its gateway
    exists, is Ready and suits the bot (gate.check_approval / gate.check_gateway). Above
    that for longer than `revert_window` seconds is a violation.
    """

    def __init__(self, kubectl: Kubectl, revert_window: float = 2.0) -> None:
        super().__init__(daemon=True, name="gate-invariant-watcher")
        self.kubectl = kubectl
        self.revert_window = revert_window
        self.violations: list[Violation] = []
        self.samples = 0
        self.max_excess_seconds = 0.0
        self._since: dict[str, float] = {}
        self._stopping = threading.Event()
        self._outage = False

    def _allowed(
        self, tb: dict[str, Any], gateways: dict[tuple[str, str], Any], halted: bool
    ) -> int:
        spec = tb.get("spec", {})
        if halted or spec.get("armed") is not True:
            return 0
        if not check_approval(parse_approval(spec), dt.datetime.now(dt.UTC)).ok:
            return 0
        gw = gateways.get((tb["metadata"]["namespace"], spec["gatewayRef"]["name"]))
        ready = gw is not None and condition(gw, "Ready").get("status") == "True"
        view = GatewayView(
            name=spec["gatewayRef"]["name"],
            exists=gw is not None,
            ready=ready,
            trading_mode=Mode((gw or {}).get("spec", {}).get("tradingMode", "paper")),
            read_only=bool((gw or {}).get("spec", {}).get("readOnlyApi", True)),
        )
        return 1 if check_gateway(view, Mode(spec.get("mode", "paper"))).ok else 0

    def sample(self) -> None:
        deps = json.loads(
            self.kubectl(
                "get", "deployments", "-A", "-l", f"{c.LABEL_COMPONENT}=trading-bot", "-o", "json"
            )
        )
        tbs = json.loads(self.kubectl("get", "tradingbots", "-A", "-o", "json"))
        gws = json.loads(self.kubectl("get", "ibgateways", "-A", "-o", "json"))
        halted = (
            self.kubectl.get("configmap", c.HALT_CONFIGMAP, c.DEFAULT_OPERATOR_NAMESPACE)
            is not None
        )
        bots = {(t["metadata"]["namespace"], t["metadata"]["name"]): t for t in tbs["items"]}
        gateways = {(g["metadata"]["namespace"], g["metadata"]["name"]): g for g in gws["items"]}
        now = time.monotonic()
        self.samples += 1
        for dep in deps["items"]:
            ns = dep["metadata"]["namespace"]
            key = f"{ns}/{dep['metadata']['name']}"
            owner = dep["metadata"]["labels"].get(c.LABEL_INSTANCE, "")
            tb = bots.get((ns, owner))
            replicas = int(dep["spec"].get("replicas", 0))
            allowed = 0 if tb is None else self._allowed(tb, gateways, halted)
            if replicas <= allowed or self._outage:
                self._since.pop(key, None)
                continue
            since = self._since.setdefault(key, now)
            excess = now - since
            self.max_excess_seconds = max(self.max_excess_seconds, excess)
            if excess > self.revert_window and not any(
                v.deployment == key for v in self.violations
            ):
                self.violations.append(Violation(key, replicas, allowed, excess))

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """While the operator is down nothing can act; the revert clock restarts after."""
        self._outage = True
        try:
            yield
        finally:
            self._since.clear()
            self._outage = False

    def run(self) -> None:
        while not self._stopping.is_set():
            # A failed poll (API briefly busy) is not evidence either way.
            with contextlib.suppress(
                AssertionError, json.JSONDecodeError, subprocess.TimeoutExpired
            ):
                self.sample()
            self._stopping.wait(0.1)

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


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
