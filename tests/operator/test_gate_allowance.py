"""The invariant watcher's oracle (tests/gate_allowance.py), table-driven: each way a
bot Deployment or its pods can be above the gate is seen, and a world where the gate
is open is not flagged. Pure: no cluster."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from gate_allowance import (
    WorldView,
    bot_allowance,
    deployment_allowance,
    excesses,
    foreign_template_managers,
)
from operator_support import bot, credentials, gateway, pull_secret
from spy_operator import constants as c
from spy_operator.pullsecrets import secret_facts

NS = "ns"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
World = dict[str, Any]


def _meta(body: dict[str, Any], uid: str) -> dict[str, Any]:
    body["metadata"].update(namespace=NS, uid=uid)
    return body


def _secret(body: dict[str, Any]) -> Any:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}
    return secret_facts({"type": body["type"], "data": data})


def _pod(name: str, labels: dict[str, str], env: dict[str, str] | None = None) -> dict[str, Any]:
    container = {
        "name": "ib-gateway" if env else "bot",
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels, "uid": f"uid-{name}"},
        "spec": {"containers": [container]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def _labels(kind: str, name: str) -> dict[str, str]:
    return {c.LABEL_COMPONENT: c.COMPONENT[kind], c.LABEL_INSTANCE: name}


def base_world() -> World:
    """A paper gateway running paper, and an armed, approved paper bot at 1 replica."""
    b = _meta(bot("b", expires_in=None), "uid-b")
    b["spec"]["approval"] = {"approvedBy": "bob", "expiresAt": "2026-12-02T13:00:00Z"}
    dep = {
        "metadata": {
            "name": "b-bot",
            "namespace": NS,
            "labels": _labels(c.KIND_BOT, "b"),
            "ownerReferences": [{"kind": "TradingBot", "uid": "uid-b", "controller": True}],
            "managedFields": [
                {"manager": c.FIELD_MANAGER, "fieldsV1": {"f:spec": {"f:template": {}}}},
                {"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}},
            ],
        },
        "spec": {"replicas": 1},
    }
    gw_env = {"TRADING_MODE": "paper", "READ_ONLY_API": "no"}
    return {
        "bots": {(NS, "b"): b},
        "gateways": {(NS, "gw"): _meta(gateway("gw", read_only=False), "uid-gw")},
        "deployments": {(NS, "b-bot"): dep},
        "pods": {
            (NS, "gw-0"): _pod("gw-0", _labels(c.KIND_GATEWAY, "gw"), gw_env),
            (NS, "b-bot-x"): _pod("b-bot-x", _labels(c.KIND_BOT, "b")),
        },
        "secrets": {
            (NS, "acr-pull"): _secret(pull_secret()),
            (NS, "ib-creds"): _secret(credentials()),
        },
        "halted": False,
        "now": NOW,
        "vpn": {},
    }


def view(world: World) -> WorldView:
    return WorldView(**world)


def test_open_gate_is_not_flagged() -> None:
    world = view(base_world())
    assert bot_allowance(world.bots[(NS, "b")], world).replicas == 1
    assert excesses(world) == []


def _set(path: str, value: Any) -> Callable[[World], None]:
    def edit(world: World) -> None:
        *head, last = path.split(".")
        target: Any = world
        for part in head:
            target = target[(NS, part)] if (NS, part) in target else target[part]
        target[last] = value

    return edit


def _del(group: str, name: str) -> Callable[[World], None]:
    return lambda world: world[group].pop((NS, name))


def _foreign(world: World) -> None:
    fields = {"manager": "kubectl-patch", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {}}}}}
    world["deployments"][(NS, "b-bot")]["metadata"]["managedFields"].append(fields)


def _orphan(world: World) -> None:
    world["deployments"][(NS, "b-bot")]["metadata"]["ownerReferences"] = []


def _stale_gateway_pod(world: World) -> None:
    world["gateways"][(NS, "gw")]["spec"]["tradingMode"] = "live"
    world["bots"][(NS, "b")]["spec"]["mode"] = "live"  # the spec matches; the pod does not


def _vpn_down(world: World) -> None:
    world["bots"][(NS, "b")]["spec"]["vpn"] = {"host": "127.0.0.1", "port": 9, "timeoutSeconds": 1}
    world["vpn"] = {("127.0.0.1", 9): False}


CLOSED: list[tuple[str, Callable[[World], None], str]] = [
    ("halt", _set("halted", True), "GlobalHalt"),
    ("disarmed", _set("bots.b.spec.armed", False), "NotArmed"),
    ("expired", _set("now", NOW + dt.timedelta(hours=2)), "ApprovalExpired"),
    ("deleting", _set("bots.b.metadata.deletionTimestamp", "2026-12-02T12:00:00Z"), "BotDeleting"),
    ("gateway gone", _del("gateways", "gw"), "GatewayNotFound"),
    ("mode mismatch", _set("bots.b.spec.mode", "live"), "GatewayModeMismatch"),
    ("gateway pod runs the old mode", _stale_gateway_pod, "GatewayNotRunningItsSpec"),
    ("gateway pod gone", _del("pods", "gw-0"), "GatewayNotRunningItsSpec"),
    ("credentials gone", _del("secrets", "ib-creds"), "GatewayCredentialsMissing"),
    ("pull secret gone", _del("secrets", "acr-pull"), "PullSecretNotFound"),
    ("vpn down", _vpn_down, "VPNUnreachable"),
    ("foreign template field", _foreign, "ForeignChange"),
    ("orphaned Deployment", _orphan, "NoOwningBot"),
    ("bot deleted, Deployment left", _del("bots", "b"), "NoOwningBot"),
]


@pytest.mark.parametrize(("edit", "reason"), [c[1:] for c in CLOSED], ids=[c[0] for c in CLOSED])
def test_each_closed_gate_flags_the_deployment_and_its_pods(
    edit: Callable[[World], None], reason: str
) -> None:
    world = base_world()
    edit(world)
    found = {ex.key: ex for ex in excesses(view(world))}
    assert set(found) == {f"{NS}/b-bot", f"{NS}/b[pods]"}
    assert {ex.allowance.reason for ex in found.values()} == {reason}
    assert found[f"{NS}/b[pods]"].pod_uids == ("uid-b-bot-x",)


def test_a_gateway_pod_not_ready_but_running_its_spec_keeps_the_gate_open() -> None:
    world = base_world()
    world["pods"][(NS, "gw-0")]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert excesses(view(world)) == []
    world["pods"][(NS, "gw-0")]["status"]["phase"] = "Pending"
    assert {ex.allowance.reason for ex in excesses(view(world))} == {"GatewayNotRunningItsSpec"}


def test_pods_lagging_behind_a_lowered_deployment_are_flagged_as_such() -> None:
    world = base_world()
    world["halted"] = True
    world["deployments"][(NS, "b-bot")]["spec"]["replicas"] = 0
    (ex,) = excesses(view(world))
    assert (ex.kind, ex.found, ex.deployment_replicas) == ("pods", 1, 0)


def test_terminating_pods_and_other_namespaces_do_not_count() -> None:
    world = base_world()
    world["halted"] = True
    world["deployments"][(NS, "b-bot")]["spec"]["replicas"] = 0
    world["pods"][(NS, "b-bot-x")]["metadata"]["deletionTimestamp"] = "2026-12-02T12:00:00Z"
    assert excesses(view(world)) == []
    world = base_world()
    world["halted"] = True
    assert excesses(view(world), namespace_ok=lambda ns: ns != NS) == []


def test_a_second_pod_above_an_open_gate_is_flagged() -> None:
    world = base_world()
    world["pods"][(NS, "b-bot-y")] = _pod("b-bot-y", _labels(c.KIND_BOT, "b"))
    world["deployments"][(NS, "b-bot")]["spec"]["replicas"] = 2
    assert sorted(ex.found for ex in excesses(view(world))) == [2, 2]


def test_only_other_managers_of_the_template_are_foreign() -> None:
    world = base_world()
    dep = world["deployments"][(NS, "b-bot")]
    assert foreign_template_managers(dep) == []
    scaled = copy.deepcopy(dep)
    scaled["metadata"]["managedFields"].append(
        {"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    )
    assert foreign_template_managers(scaled) == []
    assert deployment_allowance(scaled, view(world)).replicas == 1
