"""Helpers of the bot-guard admission policy tests (test_admission_*_cluster.py): act
as a user through the admin kubeconfig (`kubectl --as`), the Deployments they write,
and the checks that a write was allowed or refused by the policy (not RBAC). The
fixtures `local_cluster` and `ns` are in conftest.py.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from k8s_support import Kubectl
from operator_support import bot
from spy_operator import builders
from spy_operator import constants as c
from spy_operator.api import view

IDENTITIES = {
    "admin": (),
    "alice": ("--as=alice", "--as-group=system:authenticated"),
    "spy-operator": ("--as=spy-operator", "--as-group=system:masters"),
    "spy-operator-2": ("--as=spy-operator-2", "--as-group=system:masters"),
}


PARAM = ("configmap", "spyoptions-admission", "-n", c.DEFAULT_OPERATOR_NAMESPACE)


def as_(
    kubectl: Kubectl, who: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return kubectl.run(*IDENTITIES[who], *args, stdin=stdin, check=False)


def allowed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"refused: {proc.stderr.strip()}"


def refused(proc: subprocess.CompletedProcess[str], rule: str, who: str) -> None:
    """403 from the policy (not RBAC), naming the rule and the user."""
    assert proc.returncode != 0, f"{who} was let through: {proc.stdout.strip()}"
    err = proc.stderr
    assert "Forbidden" in err and "ValidatingAdmissionPolicy" in err, err
    assert f"spyoptions bot-guard rule {rule}: {who} may not" in err, err


def bot_deployment(name: str, namespace: str, replicas: int = 0) -> dict[str, Any]:
    """What build_bot_deployment makes for a TradingBot `name`, minus the owner (none here)."""
    tb = bot(name)
    tb["metadata"].update(namespace=namespace, uid="u-1", generation=1)
    dep = builders.build_bot_deployment(view(tb), replicas, 1, 4002)
    del dep["metadata"]["ownerReferences"]
    return dep


def plain_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/c"}]},
            },
        },
    }


Proc = subprocess.CompletedProcess[str]


def create(
    kubectl: Kubectl, who: str, manifest: dict[str, Any], namespace: str, *extra: str
) -> Proc:
    return as_(
        kubectl, who, "create", "-n", namespace, *extra, "-f", "-", stdin=json.dumps(manifest)
    )


def patch(
    kubectl: Kubectl, who: str, namespace: str, name: str, body: Any, kind: str = "merge"
) -> Proc:
    return as_(
        kubectl,
        who,
        "patch",
        "-n",
        namespace,
        f"deployment/{name}",
        f"--type={kind}",
        "-p",
        json.dumps(body),
    )


def scale(kubectl: Kubectl, who: str, namespace: str, name: str, replicas: int) -> Proc:
    return as_(
        kubectl, who, "scale", "-n", namespace, f"deployment/{name}", f"--replicas={replicas}"
    )
