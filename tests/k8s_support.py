"""Helpers for tests that talk to a Kubernetes cluster: kubectl, waiting, the cluster handle.

Imported by tests/conftest.py and by test modules (tests/ is on pytest's pythonpath).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spy_dev.devcluster import DEFAULT_BIN, ClusterState

T = TypeVar("T")
KUBECTL = str(DEFAULT_BIN / "kubectl")


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def loopback_text(url: str, timeout: float = 2.0) -> str | None:
    """The body of a plain-http loopback URL, or None when nothing answers yet.

    For polling loops: urllib builds no TLS context for http://, while every
    `httpx.get` loads the system CA bundle again (one of those loads, polling an
    operator's metrics 10 times a second, failed with `ssl.SSLError: [X509] PEM lib`
    in a CI run, failing a test that never used TLS)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback_text is for http://127.0.0.1 URLs only, not {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass
class Kubectl:
    """kubectl bound to one kubeconfig (and optionally a user context)."""

    kubeconfig: Path
    context: str | None = None

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [KUBECTL, f"--kubeconfig={self.kubeconfig}"]
        if self.context:
            argv.append(f"--context={self.context}")
        proc = subprocess.run(
            [*argv, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def apply(self, manifest: str | dict[str, Any], namespace: str | None = None) -> str:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        ns = ["-n", namespace] if namespace else []
        return self("apply", *ns, "-f", "-", stdin=text)

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> Any:
        args = ["get", kind] + ([name] if name else []) + ["-o", "json"]
        if namespace:
            args += ["-n", namespace]
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)


@dataclass
class Cluster:
    kubeconfig: Path
    state: ClusterState | None  # None for an existing cluster
    kubectl: Kubectl
    webhook: Any = None  # spy_dev.webhook.WebhookProcess on the local control plane

    @property
    def local(self) -> bool:
        return self.state is not None

    def kubeconfig_for(self, user: str) -> Path:
        if self.state is None:
            return self.kubeconfig
        return self.state.kubeconfig_for(user)
