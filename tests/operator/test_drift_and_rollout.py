"""Pure policies behind issue 8's fixes: foreign fields in a bot's Deployment
(drift.py) and a gateway rollout judged by what runs (pods.py)."""

from __future__ import annotations

from typing import Any

import pytest
from spy_operator import builders
from spy_operator import constants as c
from spy_operator.api import view
from spy_operator.drift import check_foreign_change, foreign_spec_owners, template_drift
from spy_operator.pods import GatewayPod, check_gateway_rollout, gateway_pod_facts

BOT = {
    "apiVersion": c.API_VERSION,
    "kind": "TradingBot",
    "metadata": {"name": "b", "namespace": "ns", "uid": "u"},
    "spec": {"image": "i", "gatewayRef": {"name": "gw"}},
}


def desired() -> dict[str, Any]:
    return builders.build_bot_deployment(view(BOT), 1, 1, 4002)  # type: ignore[arg-type]


def managed(manager: str, spec_fields: dict[str, Any], subresource: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": "Update",
        "fieldsV1": {"f:spec": spec_fields},
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


@pytest.mark.parametrize(
    ("entries", "foreign"),
    [
        ([managed(c.FIELD_MANAGER, {"f:template": {}})], []),
        ([managed("kubectl", {"f:replicas": {}}, "scale")], []),
        ([managed("kubectl-patch", {"f:replicas": {}})], []),
        ([managed("kube-controller-manager", {"f:x": {}}, "status")], []),
        ([managed("kubectl-edit", {"f:template": {}})], ["kubectl-edit: spec.template"]),
        (
            [managed("argo", {"f:strategy": {}, "f:replicas": {}})],
            ["argo: spec.strategy"],
        ),
    ],
)
def test_foreign_spec_owners(entries: list[dict[str, Any]], foreign: list[str]) -> None:
    dep = {"metadata": {"managedFields": entries}}
    assert foreign_spec_owners(dep, c.FIELD_MANAGER) == foreign


def test_template_drift_without_managed_fields() -> None:
    want = desired()
    assert template_drift(want, want) == []
    sidecar = desired()
    sidecar["spec"]["template"]["spec"]["containers"].append({"name": "s", "image": "x"})
    assert template_drift(want, sidecar) == ["container 's' is not the operator's"]
    command = desired()
    command["spec"]["template"]["spec"]["containers"][0]["command"] = ["/bin/sh"]
    assert "has a command" in template_drift(want, command)[0]
    rolling = desired()
    rolling["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert template_drift(want, rolling) == ["strategy is RollingUpdate, not Recreate"]


def test_check_foreign_change() -> None:
    assert check_foreign_change(desired(), None, c.FIELD_MANAGER).ok
    observed = desired()
    observed["metadata"]["managedFields"] = [managed("kubectl-edit", {"f:template": {}})]
    check = check_foreign_change(desired(), observed, c.FIELD_MANAGER)
    assert (check.ok, check.reason) == (False, "ForeignChange")
    assert "kubectl-edit" in check.message


def sts(update: str = "r2", current: str = "r2", updated: int = 1, ready: int = 1) -> Any:
    return {
        "metadata": {"name": "gw", "generation": 3},
        "status": {
            "observedGeneration": 3,
            "updateRevision": update,
            "currentRevision": current,
            "updatedReplicas": updated,
            "readyReplicas": ready,
        },
    }


def pod(
    mode: str = "paper", revision: str = "r2", ready: bool = True, deleting: bool = False
) -> GatewayPod:
    return GatewayPod("gw-0", "gw", revision, mode, ready, deleting)


@pytest.mark.parametrize(
    ("sts_", "pods", "reason"),
    [
        (sts(), [pod()], "GatewayRunning"),
        (sts(current="r1"), [pod()], "GatewayRollingOut"),
        (sts(updated=0), [pod()], "GatewayRollingOut"),
        (sts(), [pod(mode="live")], "GatewayPodOutdated"),
        (sts(), [pod(revision="r1")], "GatewayPodOutdated"),
        # a terminating pod still runs: its mode counts until it is gone
        (sts(), [pod(), pod(mode="live", deleting=True)], "GatewayPodOutdated"),
        (sts(ready=0), [pod(ready=False)], "GatewayStarting"),
        (sts(), [], "GatewayStarting"),
    ],
)
def test_gateway_rollout(sts_: Any, pods: list[GatewayPod], reason: str) -> None:
    check, _ = check_gateway_rollout(sts_, pods, "paper")
    assert check.reason == reason
    assert check.ok == (reason == "GatewayRunning")


def test_gateway_pod_facts() -> None:
    facts = gateway_pod_facts(
        {
            "metadata": {
                "name": "gw-0",
                "labels": {c.LABEL_INSTANCE: "gw", "controller-revision-hash": "gw-abc"},
            },
            "spec": {
                "containers": [
                    {"name": "ib-gateway", "env": [{"name": "TRADING_MODE", "value": "live"}]}
                ]
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    assert facts == GatewayPod("gw-0", "gw", "gw-abc", "live", True, False)
