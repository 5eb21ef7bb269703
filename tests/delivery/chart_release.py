"""One Helm release of the chart on the session's control plane, and the operator
process run exactly as the chart's Deployment runs it (its args and env, with the
mounted Secrets copied to local files) but authenticated as the chart's
ServiceAccount and serving the chart's approval webhook on loopback.

Used by test_chart_cluster.py. KWOK pods run no containers, so the apiserver cannot
reach an in-cluster webhook; the release registers its webhook with
admission.approvalWebhook.url=https://127.0.0.1:<port>/mutate-tradingbot and
certIPs={127.0.0.1}, and the process serves that port with the chart-generated
certificate, so the apiserver checks the chart's own caBundle against it.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from delivery_support import CHART, run, tool
from k8s_support import Cluster, Kubectl
from spy_dev import admission
from spy_dev.devcluster import DEFAULT_BIN, free_port
from spy_dev.webhook import Material, register, unregister, wait_serving
from spy_operator import constants as c

SUFFIX = uuid.uuid4().hex[:6]
RELEASE = f"spy-{SUFFIX}"
RELEASE_NS = f"spy-sys-{SUFFIX}"  # the operator namespace: halt ConfigMap and Lease
WATCHED = f"spy-paper-{SUFFIX}"
ADDED = f"spy-live-{SUFFIX}"  # added by the upgrade
OUTSIDE = f"spy-other-{SUFFIX}"  # never watched
FULLNAME = f"{RELEASE}-spy-options"
SA = f"{FULLNAME}-operator"
SA_USER = f"system:serviceaccount:{RELEASE_NS}:{SA}"
WEBHOOK_PORT = free_port()
WEBHOOK_SECRET = f"{SA}-webhook-tls"
WEBHOOK_CONFIG = f"{FULLNAME}-approval"
BINDINGS = (f"{FULLNAME}-bot-scale", f"{FULLNAME}-bot-deployments")
# The dev cluster's `admin` stands for the GitOps identity (it applies bots approved
# by bob), as in the session's own webhook (spy_dev.webhook).
INSTALL_VALUES = (
    f"operator.watchNamespaces={{{WATCHED}}}",
    "backend.existingSecret=spy-backend-azure",
    "approval.gitopsIdentities={admin}",
    f"admission.approvalWebhook.url=https://127.0.0.1:{WEBHOOK_PORT}/mutate-tradingbot",
    "admission.approvalWebhook.certIPs={127.0.0.1}",
)


@dataclass
class DevAdmission:
    """The session's approval webhook (dev key) and bot-guard bindings (exempting the
    dev operator users) would fight the release's own: two mutating webhooks rewriting
    one record, the ServiceAccount refused. Lifted while the release is installed (the
    bindings set to Audit only, never deleted: spy_dev.admission.suspend_bindings)."""

    cluster: Cluster
    saved: list[tuple[str, list[str]]] | None = None

    def _argv(self) -> list[str]:
        return [str(DEFAULT_BIN / "kubectl"), f"--kubeconfig={self.cluster.kubeconfig}"]

    def lift(self) -> None:
        if self.cluster.state is not None:
            unregister(self.cluster.state)
        self.saved = admission.suspend_bindings(self._argv(), c.DEFAULT_OPERATOR_NAMESPACE)

    def restore(self) -> None:
        if self.saved is None:
            return
        admission.resume_bindings(self._argv(), c.DEFAULT_OPERATOR_NAMESPACE, self.saved)
        self.saved = None
        if self.cluster.state is not None and self.cluster.webhook is not None:
            register(self.cluster.state, self.cluster.webhook.port)


@dataclass
class Release:
    cluster: Cluster
    kubectl: Kubectl
    sa_kubectl: Kubectl
    sa_kubeconfig: Path
    log_dir: Path
    dev_admission: DevAdmission | None = None

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            tool("helm"),
            "--kubeconfig",
            str(self.cluster.kubeconfig),
            "--namespace",
            RELEASE_NS,
            *args,
            check=check,
            timeout=300,
        )

    def install(self) -> subprocess.CompletedProcess[str]:
        sets = [arg for value in INSTALL_VALUES for arg in ("--set", value)]
        return self.helm("install", RELEASE, str(CHART), "--wait", "--timeout", "180s", *sets)


def sa_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A kubeconfig that authenticates with the ServiceAccount's token only."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator-sa", "user": {"token": token}}],
        "contexts": [
            {"name": "operator-sa", "context": {"cluster": cluster["name"], "user": "operator-sa"}}
        ],
        "current-context": "operator-sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class SaOperator:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _secret_files(k: Kubectl, name: str, keys: dict[str, Path]) -> None:
    data = k.get("secret", name, RELEASE_NS)["data"]
    for key, path in keys.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data[key]))
        path.chmod(0o600)


def copy_mounted_secrets(k: Kubectl, mounts: Path) -> Material:
    """The Secrets the chart's Deployment mounts, copied under `mounts` (for
    /etc/spyoptions), as the webhook material the operator will serve with."""
    approval_key = mounts / "approval" / "key"
    webhook = mounts / "webhook"
    _secret_files(k, f"{FULLNAME}-approval-key", {"key": approval_key})
    _secret_files(
        k,
        WEBHOOK_SECRET,
        {
            "tls.crt": webhook / "tls.crt",
            "tls.key": webhook / "tls.key",
            "ca.crt": webhook / "ca.crt",
        },
    )
    return Material(
        approval_key,
        webhook / "tls.crt",
        webhook / "tls.key",
        (webhook / "ca.crt").read_bytes(),
    )


def deployment_command(
    container: dict[str, Any], mounts: Path, sa_kubeconfig: Path
) -> tuple[list[str], dict[str, str]]:
    """(args, env) of the chart's operator container, mount paths mapped under
    `mounts`, for a process on loopback authenticated by `sa_kubeconfig`."""

    def local(value: str) -> str:
        return value.replace("/etc/spyoptions", str(mounts))

    args = [local(a) for a in container["args"]]
    env = dict(os.environ)
    env.update({e["name"]: local(e["value"]) for e in container["env"] if "value" in e})
    env.update(
        KUBECONFIG=str(sa_kubeconfig),
        SPY_METRICS_ADDR="127.0.0.1",
        SPY_VPN_PROBE_TTL="0.5",
        SPY_LEASE_SECONDS="5",
        SPY_LEASE_RENEW_SECONDS="1",
    )
    # Only what cannot be the same on a shared loopback: ports, the faster resync.
    args += [
        f"--metrics-port={free_port()}",
        "--health-port=0",
        "--resync-seconds=3",
        "--webhook-host=127.0.0.1",
        f"--webhook-port={WEBHOOK_PORT}",
    ]
    return args, env


def start_sa_operator(release: Release) -> SaOperator:
    """`python -m spy_operator` with the chart Deployment's own args and env (mount
    paths mapped to local copies of the Secrets), as the ServiceAccount."""
    k = release.kubectl
    dep = k.get("deployment", SA, RELEASE_NS)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    mounts = release.log_dir / "mounts"
    material = copy_mounted_secrets(k, mounts)
    args, env = deployment_command(container, mounts, release.sa_kubeconfig)
    log = release.log_dir / "operator-sa.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spy_operator", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    op = SaOperator(proc, log)
    try:
        # Verified against the chart's CA: the same check the apiserver makes.
        wait_serving(WEBHOOK_PORT, material, proc, timeout=60)
    except RuntimeError as err:
        op.stop()
        raise AssertionError(f"{err}:\n{op.text()[-3000:]}") from err
    return op


def running_sa_operator(release: Release) -> Iterator[SaOperator]:
    op = start_sa_operator(release)
    try:
        yield op
    finally:
        op.stop()
