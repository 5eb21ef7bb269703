"""The bot-guard admission policies (deploy/admission/) on the real kube-apiserver.

Prevent, then revert (issue 8 #5): nobody but the operator's identities creates a
trading-bot Deployment, raises its replicas (main resource or /scale), or changes its
pod template, strategy or bot label. The dev cluster installs the policies with
spy-operator and spy-operator-2 exempt (spy_dev.admission); users are impersonated
through the admin kubeconfig (`kubectl --as`):

- alice: a namespace editor here (RoleBinding to the built-in `edit` ClusterRole), so
  RBAC lets her write Deployments and only the policy can refuse her;
- admin: system:masters, and still not exempt;
- spy-operator, spy-operator-2: the exempt operator identities.
"""

from __future__ import annotations

from typing import Any

import pytest
from admission_support import (
    allowed,
    as_,
    bot_deployment,
    create,
    patch,
    plain_deployment,
    refused,
    scale,
)
from k8s_support import Kubectl
from operator_support import deployment_replicas
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("local_cluster")


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_only_the_operator_creates_bot_deployments(kubectl: Kubectl, ns: str, who: str) -> None:
    refused(create(kubectl, who, bot_deployment("a", ns), ns), "create-bot-deployment", who)
    # A copy that carries the bot label on its pods only (finding 7's "copy with the
    # bot's labels") is a bot Deployment too.
    rogue = plain_deployment("rogue")
    rogue["spec"]["template"]["metadata"]["labels"][c.LABEL_COMPONENT] = "trading-bot"
    rogue["spec"]["selector"]["matchLabels"][c.LABEL_COMPONENT] = "trading-bot"
    refused(create(kubectl, who, rogue, ns), "create-bot-deployment", who)
    assert kubectl.get("deployments", None, ns)["items"] == []
    for operator in ("spy-operator", "spy-operator-2"):
        allowed(create(kubectl, operator, bot_deployment(f"by-{operator}", ns), ns))


def test_raising_replicas_is_refused_to_everyone_but_the_operator(
    kubectl: Kubectl, ns: str
) -> None:
    allowed(create(kubectl, "spy-operator", bot_deployment("r", ns), ns))
    for who in ("alice", "admin"):
        refused(scale(kubectl, who, ns, "r-bot", 1), "bot-scale", who)
        refused(patch(kubectl, who, ns, "r-bot", {"spec": {"replicas": 1}}), "bot-replicas", who)
        refused(
            patch(
                kubectl,
                who,
                ns,
                "r-bot",
                [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                kind="json",
            ),
            "bot-replicas",
            who,
        )
    assert deployment_replicas(kubectl, ns, "r") == 0
    # The operator arms it; then nobody else takes it above 1 ...
    allowed(scale(kubectl, "spy-operator", ns, "r-bot", 1))
    refused(scale(kubectl, "alice", ns, "r-bot", 2), "bot-scale", "alice")
    refused(
        patch(kubectl, "admin", ns, "r-bot", {"spec": {"replicas": 3}}), "bot-replicas", "admin"
    )
    # ... while anyone may lower it, as the gate itself would.
    allowed(scale(kubectl, "alice", ns, "r-bot", 0))
    assert deployment_replicas(kubectl, ns, "r") == 0
    allowed(patch(kubectl, "spy-operator-2", ns, "r-bot", {"spec": {"replicas": 1}}))
    allowed(patch(kubectl, "admin", ns, "r-bot", {"spec": {"replicas": 0}}))


CONTAINER_PATH = "/spec/template/spec/containers"


@pytest.mark.parametrize(
    ("rule", "ops"),
    [
        (
            "bot-pod-template",
            [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"a": "b"}}],
        ),
        (
            "bot-pod-template",
            [{"op": "add", "path": f"{CONTAINER_PATH}/0/command", "value": ["sh", "-c", "x"]}],
        ),
        (
            "bot-pod-template",
            [{"op": "add", "path": f"{CONTAINER_PATH}/-", "value": {"name": "s", "image": "s"}}],
        ),
        (
            "bot-strategy",
            [{"op": "replace", "path": "/spec/strategy", "value": {"type": "RollingUpdate"}}],
        ),
        (
            "bot-label",
            [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1component"}],
        ),
        (
            "bot-label",
            [
                {
                    "op": "replace",
                    "path": "/metadata/labels/app.kubernetes.io~1component",
                    "value": "x",
                }
            ],
        ),
    ],
)
def test_template_strategy_and_bot_label_belong_to_the_operator(
    kubectl: Kubectl, ns: str, rule: str, ops: list[dict[str, Any]]
) -> None:
    allowed(create(kubectl, "spy-operator", bot_deployment("t", ns), ns))
    before = kubectl.get("deployment", "t-bot", ns)
    for who in ("alice", "admin"):
        refused(patch(kubectl, who, ns, "t-bot", ops, kind="json"), rule, who)
    after = kubectl.get("deployment", "t-bot", ns)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # Other metadata stays editable (e.g. annotations for tooling) ...
    allowed(as_(kubectl, "alice", "annotate", "-n", ns, "deployment/t-bot", "note=checked"))
    # ... and the operator may change everything.
    allowed(patch(kubectl, "spy-operator", ns, "t-bot", ops, kind="json"))


# ------------------------------------------------------------------ allowed paths


def test_deployments_without_the_bot_label_are_untouched(kubectl: Kubectl, ns: str) -> None:
    for who in ("alice", "admin"):
        name = f"web-{who}"
        allowed(create(kubectl, who, plain_deployment(name), ns))
        allowed(scale(kubectl, who, ns, name, 3))
        allowed(patch(kubectl, who, ns, name, {"spec": {"replicas": 4}}))
        allowed(
            patch(
                kubectl,
                who,
                ns,
                name,
                {"spec": {"template": {"metadata": {"annotations": {"a": "b"}}}}},
            )
        )
        allowed(
            patch(
                kubectl,
                who,
                ns,
                name,
                {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}},
            )
        )
        assert kubectl.get("deployment", name, ns)["spec"]["replicas"] == 4
