"""Paths and small helpers shared by the delivery tests (chart, images, Argo CD,
monitoring, workflows). The tools come from tools/build-delivery.sh (make
delivery-tools, which `make test` runs); a missing tool fails the test with the
command that builds it.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT

CHART = REPO_ROOT / "helm" / "spy-options"
KUBE_VERSION = "1.34.2"
SCHEMAS = DEFAULT_BIN / "kubeconform-schemas"
THIRD_PARTY_CRDS = DEFAULT_BIN / "delivery-crds"


def tool(name: str) -> str:
    """Absolute path of a delivery tool in .bin/ (or a Debian one on PATH)."""
    local = DEFAULT_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is missing: run `make delivery-tools` (make test does)")


def run(
    *argv: str,
    stdin: str | None = None,
    timeout: float = 300,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and proc.returncode != 0:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return proc


def helm_template(*args: str, namespace: str = "spy-system") -> list[dict[str, Any]]:
    """The chart rendered for Kubernetes KUBE_VERSION, as a list of objects."""
    out = run(
        tool("helm"),
        "template",
        "t",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *args,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def kubeconform(manifests: str) -> subprocess.CompletedProcess[str]:
    """kubeconform -strict against the schemas generated offline (no download)."""
    return run(
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-output",
        "text",
        "-kubernetes-version",
        KUBE_VERSION,
        "-schema-location",
        f"{SCHEMAS}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        "-",
        stdin=manifests,
        check=False,
    )


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]
