"""Installs the bot-guard admission policies of deploy/admission/ into a dev cluster.

Called by spy_dev.devcluster.DevCluster (so `make cluster` and the pytest session
fixture get them) and by tests that suspend a binding for a moment. The YAML in
deploy/admission/ is the one source (the Helm chart copies it); only the parameter
ConfigMap's `operators` list is replaced here with the dev cluster's token users.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from spy_dev.processes import ClusterError

PARAM_CONFIGMAP = "spyoptions-admission"
# In apply order (the file names sort the same way). The enforcement probe exercises
# the last one, so when it answers, the earlier ones are in the apiserver's cache too.
BINDINGS = ("spyoptions-bot-scale", "spyoptions-bot-deployments")
# The rule name in the refusal that proves the policy is enforced (see probe_manifest).
PROBE_RULE = "create-bot-deployment"


def manifests(source: Path, operators: Sequence[str]) -> list[dict[str, Any]]:
    """Every document of source/*.yaml, the parameter ConfigMap naming `operators`."""
    docs: list[dict[str, Any]] = []
    for path in sorted(source.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == PARAM_CONFIGMAP:
                doc["data"]["operators"] = ",".join(operators)
            docs.append(doc)
    # The parameter first: a binding whose ConfigMap is missing refuses every
    # Deployment write (parameterNotFoundAction: Deny).
    docs.sort(key=lambda d: d["kind"] != "ConfigMap")  # stable: file order otherwise
    return docs


def probe_manifest(namespace: str) -> dict[str, Any]:
    """A bot-labelled Deployment; creating it (dry run) must be refused by the policy."""
    labels = {"app.kubernetes.io/component": "trading-bot", "app": "admission-probe"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "admission-probe", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "probe", "image": "probe.invalid/none"}]},
            },
        },
    }


def _kubectl(kubectl: Sequence[str], *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def enforced(kubectl: Sequence[str], namespace: str) -> bool:
    """True when a non-operator's server-side dry-run create of a bot Deployment is refused.

    The apiserver loads policies, bindings and their parameter through informers, so a
    freshly applied policy takes effect a moment later; this asks the apiserver itself.
    """
    proc = subprocess.run(
        [*kubectl, "create", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump(probe_manifest(namespace)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode != 0 and PROBE_RULE in proc.stderr


def wait_enforced(kubectl: Sequence[str], namespace: str, want: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if enforced(kubectl, namespace) == want:
            return
        time.sleep(0.1)
    state = "enforced" if want else "lifted"
    raise ClusterError(f"bot-guard admission policy not {state} after {timeout:.0f} s")


def install(kubectl: Sequence[str], source: Path, operators: Sequence[str], namespace: str) -> None:
    """Apply the policies with `operators` exempt and wait until the apiserver enforces them.

    `kubectl` must act as a non-operator identity (the dev cluster's admin), or the
    enforcement probe would be let through.
    """
    docs = manifests(source, operators)
    if not docs:
        raise ClusterError(f"no admission manifests in {source}")
    _kubectl(kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    wait_enforced(kubectl, namespace, want=True)


def suspend_bindings(kubectl: Sequence[str], namespace: str) -> list[tuple[str, list[str]]]:
    """Switch the bindings to Audit only (tests of the operator's revert path); returns
    their validationActions for resume_bindings. A cluster without them
    (SPY_TEST_KUBECONFIG) returns [].

    Patched, never deleted: once no binding names ConfigMap parameters, even for a
    moment, kube-apiserver stops its informer of them for the rest of its life
    (kubernetes/kubernetes#130887): parameter changes are never seen again and a binding
    created later finds no parameter (with parameterNotFoundAction Deny: refuses all).
    """
    saved = []
    for name in BINDINGS:  # the probed one last, as in install()
        proc = subprocess.run(
            [*kubectl, "get", "validatingadmissionpolicybinding", name, "-o", "yaml"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 and "NotFound" in proc.stderr:
            continue
        if proc.returncode != 0:
            raise ClusterError(f"kubectl get validatingadmissionpolicybinding: {proc.stderr}")
        actions = list(yaml.safe_load(proc.stdout)["spec"]["validationActions"])
        _set_actions(kubectl, name, ["Audit"])
        saved.append((name, actions))
    if saved:
        wait_enforced(kubectl, namespace, want=False)
    return saved


def resume_bindings(
    kubectl: Sequence[str], namespace: str, saved: list[tuple[str, list[str]]]
) -> None:
    if not saved:
        return
    for name, actions in saved:
        _set_actions(kubectl, name, actions)
    wait_enforced(kubectl, namespace, want=True)


def _set_actions(kubectl: Sequence[str], binding: str, actions: list[str]) -> None:
    patch = json.dumps({"spec": {"validationActions": actions}})
    _kubectl(
        kubectl, "patch", "validatingadmissionpolicybinding", binding, "--type=merge", "-p", patch
    )
