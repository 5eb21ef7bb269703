"""What test_chart_cluster.py (its only user) reads back from the installed release
(role namespaces, the operator's args, the approval key, the webhook certificate,
leftovers after uninstall) and the bot guard lifted for the operator's revert path.
The release itself is chart_release.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from chart_release import (
    BINDINGS,
    RELEASE,
    RELEASE_NS,
    WATCHED,
    WEBHOOK_CONFIG,
    WEBHOOK_SECRET,
)
from k8s_support import Kubectl
from spy_dev import admission
from spy_dev.devcluster import DEFAULT_BIN


@contextmanager
def chart_bot_guard_lifted(k: Kubectl) -> Iterator[None]:
    """The release's bot guard set to Audit only, for the operator's revert path: with
    it in place a hand scale-up never reaches the Deployment. Patched, never deleted
    (spy_dev.admission.suspend_bindings says why)."""
    argv = [str(DEFAULT_BIN / "kubectl"), f"--kubeconfig={k.kubeconfig}"]

    def actions(value: list[str]) -> None:
        patch = json.dumps({"spec": {"validationActions": value}})
        for name in BINDINGS:
            k("patch", "validatingadmissionpolicybinding", name, "--type=merge", "-p", patch)

    actions(["Audit"])
    admission.wait_enforced(argv, WATCHED, want=False, timeout=60)
    try:
        yield
    finally:
        actions(["Deny", "Audit"])
        admission.wait_enforced(argv, WATCHED, want=True, timeout=60)


def role_namespaces(k: Kubectl) -> set[str]:
    roles = json.loads(
        k("get", "roles", "-A", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json")
    )["items"]
    return {
        r["metadata"]["namespace"] for r in roles if r["metadata"]["name"].endswith("-operator")
    }


def operator_args(k: Kubectl) -> list[str]:
    dep = k.get("deployment", f"{RELEASE}-spy-options-operator", RELEASE_NS)
    return list(dep["spec"]["template"]["spec"]["containers"][0]["args"])


def approval_key(k: Kubectl) -> str:
    secret = k.get("secret", f"{RELEASE}-spy-options-approval-key", RELEASE_NS)
    return str(secret["data"]["key"])


def webhook_cert(k: Kubectl) -> tuple[str, str]:
    secret = k.get("secret", WEBHOOK_SECRET, RELEASE_NS)
    hook = k.get("mutatingwebhookconfiguration", WEBHOOK_CONFIG)["webhooks"][0]
    return secret["data"]["tls.crt"], hook["clientConfig"]["caBundle"]


RELEASE_KINDS = (
    "deployments,services,serviceaccounts,roles,rolebindings,networkpolicies,configmaps,"
    "poddisruptionbudgets,servicemonitors,prometheusrules,secrets"
)


def leftovers(k: Kubectl) -> list[str]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    names = k("get", RELEASE_KINDS, "-A", "-l", selector, "-o", "name").split()
    cluster_kinds = (
        "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,"
        "validatingadmissionpolicies,validatingadmissionpolicybindings"
    )
    names += k("get", cluster_kinds, "-l", selector, "-o", "name").split()
    return names
