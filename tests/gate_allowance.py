"""What the safety gate allows, decided from the world as the gate would: the oracle.

Used by the gate invariant watcher (gate_invariant.py), which the operator's cluster
tests and the chaos suite (chaos_*.py, bench/chaos.py) run. It is independent of the
operator's status: it reads the objects themselves, and trusts what runs, not specs.

    allowance(bot) = 1  only if  no global halt ConfigMap exists
                              and the bot exists, is not being deleted, has a valid spec
                              and spec.armed with an unexpired approval (approvedBy)
                              and its gateway exists, is not being deleted, has the
                                  bot's mode, is writable when the bot is live, has its
                                  credentials Secret (username, password) and valid pull
                                  secrets, and runs: at least one gateway pod is Running
                                  and every gateway pod not being deleted runs the spec's
                                  TRADING_MODE and READ_ONLY_API (not an older revision)
                              and every pull secret of the bot is valid
                              and its required VPN target answers (loopback targets are
                                  probed by the watcher; others count as reachable)
                     else 0.

    allowance(Deployment labelled as a bot's) = allowance(bot) only if the Deployment is
        the bot's own (named <bot>-bot, controller owner the bot's uid) and no field of
        its pod template is owned by a field manager other than the operator's
        (a foreign change); else 0.

    allowance(running pods of a bot) = allowance of its own Deployment (else of the bot).

The pure policies of spy_operator (gate, pullsecrets) decide each check, so the oracle
and the gate share definitions but not facts. Pure: the caller passes the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spy_operator import constants as c
from spy_operator.api import IBGateway, SpecError, TradingBot
from spy_operator.gate import GatewayView, check_approval, check_gateway
from spy_operator.pullsecrets import SecretFacts, check_pull_secrets

Body = Mapping[str, Any]
Key = tuple[str, str]  # (namespace, name)
BOT = c.COMPONENT[c.KIND_BOT]
GATEWAY = c.COMPONENT[c.KIND_GATEWAY]


@dataclass(frozen=True)
class Allowance:
    replicas: int
    reason: str


@dataclass(frozen=True)
class WorldView:
    """One sample of the cluster: what the oracle needs, keyed by (namespace, name)."""

    bots: Mapping[Key, Body]
    gateways: Mapping[Key, Body]
    deployments: Mapping[Key, Body]  # labelled as bot Deployments
    pods: Mapping[Key, Body]  # bot and gateway pods
    secrets: Mapping[Key, SecretFacts]
    halted: bool
    now: dt.datetime
    # (host, port) -> did a TCP connect succeed; absent means not probed (reachable).
    vpn: Mapping[tuple[str, int], bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Excess:
    """Something above the gate: `found` replicas (or running pods) over `allowance`."""

    key: str  # "ns/deployment" or "ns/bot[pods]"
    kind: str  # "deployment" or "pods"
    found: int
    allowance: Allowance
    pod_uids: tuple[str, ...] = ()
    # For pods: the replicas of the bot's own Deployment, when it exists. At or under
    # the allowance means the gate has acted and the ReplicaSet controller has not.
    deployment_replicas: int | None = None


def _label(body: Body, key: str) -> str:
    return str((body.get("metadata", {}).get("labels") or {}).get(key, ""))


def _deleting(body: Body) -> bool:
    return bool(body.get("metadata", {}).get("deletionTimestamp"))


def _env(pod: Body, container: str) -> dict[str, str]:
    for ctr in pod.get("spec", {}).get("containers") or []:
        if ctr.get("name") == container:
            return {e["name"]: str(e.get("value", "")) for e in ctr.get("env") or [] if "name" in e}
    return {}


def running(pod: Body) -> bool:
    """A pod that runs and has not been told to stop (no deletionTimestamp)."""
    return pod.get("status", {}).get("phase") == "Running" and not _deleting(pod)


def gateway_runs_spec(gw: IBGateway, pods: list[Body]) -> tuple[bool, str]:
    """Does what runs match the IBGateway's spec? (Trust what runs, not the spec.)"""
    live = [p for p in pods if not _deleting(p)]
    want = {
        "TRADING_MODE": gw.trading_mode.value,
        "READ_ONLY_API": "yes" if gw.read_only_api else "no",
    }
    for pod in live:
        env = _env(pod, "ib-gateway")
        stale = {k: env.get(k) for k, v in want.items() if env.get(k) != v}
        if stale:
            return False, f"pod {pod['metadata']['name']} runs {stale}, spec says {want}"
    # Running, not Ready: readiness flaps with the node and reaches the gate only
    # through the StatefulSet's status; what matters here is what a pod runs.
    if not any(p.get("status", {}).get("phase") == "Running" for p in live):
        return False, "no gateway pod is running"
    return True, "runs its spec"


def _gateway_check(bot: TradingBot, world: WorldView) -> Allowance | None:
    ns = bot.meta.namespace
    body = world.gateways.get((ns, bot.gateway))
    if body is None or _deleting(body):
        return Allowance(0, "GatewayNotFound")
    try:
        gw = IBGateway.from_body(body)
    except SpecError:
        return Allowance(0, "GatewayInvalidSpec")
    creds = world.secrets.get((ns, gw.credentials_secret))
    if creds is None or not all(k in creds.keys for k in c.CREDENTIAL_KEYS):
        return Allowance(0, "GatewayCredentialsMissing")
    facts = {n: f for n in gw.pull_secrets if (f := world.secrets.get((ns, n))) is not None}
    if not check_pull_secrets(gw.image, list(gw.pull_secrets), facts).ok:
        return Allowance(0, "GatewayPullSecretInvalid")
    pods = [
        p
        for (pns, _), p in world.pods.items()
        if pns == ns
        and _label(p, c.LABEL_COMPONENT) == GATEWAY
        and _label(p, c.LABEL_INSTANCE) == gw.meta.name
    ]
    runs, _ = gateway_runs_spec(gw, pods)
    view = GatewayView(
        name=gw.meta.name,
        exists=True,
        ready=runs,
        trading_mode=gw.trading_mode,
        read_only=gw.read_only_api,
    )
    check = check_gateway(view, bot.mode)
    if not check.ok:
        not_running = check.reason == "GatewayNotReady"
        return Allowance(0, "GatewayNotRunningItsSpec" if not_running else check.reason)
    return None


def bot_allowance(body: Body | None, world: WorldView) -> Allowance:
    """0 or 1 for a TradingBot body (None: no such bot) in this world."""
    if body is None:
        return Allowance(0, "NoOwningBot")
    if world.halted:
        return Allowance(0, "GlobalHalt")
    if _deleting(body):
        return Allowance(0, "BotDeleting")
    try:
        bot = TradingBot.from_body(body)
    except SpecError:
        return Allowance(0, "InvalidSpec")
    if not bot.armed:
        return Allowance(0, "NotArmed")
    approval = check_approval(bot.approval, world.now)
    if not approval.ok:
        return Allowance(0, approval.reason)
    gateway = _gateway_check(bot, world)
    if gateway is not None:
        return gateway
    ns = bot.meta.namespace
    facts = {n: f for n in bot.pull_secrets if (f := world.secrets.get((ns, n))) is not None}
    pull = check_pull_secrets(bot.image, list(bot.pull_secrets), facts)
    if not pull.ok:
        return Allowance(0, pull.reason)
    vpn = bot.vpn
    if vpn is not None and vpn.required and world.vpn.get((vpn.host, vpn.port)) is False:
        return Allowance(0, "VPNUnreachable")
    return Allowance(1, "Armed")


def foreign_template_managers(dep: Body) -> list[str]:
    """Field managers other than the operator that own part of the pod template."""
    out = []
    for entry in dep.get("metadata", {}).get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:template" in spec and entry.get("manager") != c.FIELD_MANAGER:
            out.append(str(entry.get("manager")))
    return out


def deployment_allowance(dep: Body, world: WorldView) -> Allowance:
    meta = dep["metadata"]
    ns, bot_name = meta["namespace"], _label(dep, c.LABEL_INSTANCE)
    bot = world.bots.get((ns, bot_name))
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    own = (
        bot is not None
        and meta["name"] == f"{bot_name}-bot"
        and owner is not None
        and owner.get("kind") == c.KIND_BOT
        and owner.get("uid") == bot["metadata"].get("uid")
    )
    if not own:
        return Allowance(0, "NoOwningBot")
    if foreign_template_managers(dep):
        return Allowance(0, "ForeignChange")
    return bot_allowance(bot, world)


def excesses(world: WorldView, namespace_ok: Any = None) -> list[Excess]:
    """Every bot Deployment and every bot's running pods above the allowance."""
    ok = namespace_ok or (lambda ns: True)
    out: list[Excess] = []
    for (ns, name), dep in world.deployments.items():
        if not ok(ns):
            continue
        allowance = deployment_allowance(dep, world)
        replicas = int(dep.get("spec", {}).get("replicas", 1))
        if replicas > allowance.replicas:
            out.append(Excess(f"{ns}/{name}", "deployment", replicas, allowance))
    pods_by_bot: dict[Key, list[Body]] = {}
    for (ns, _), pod in world.pods.items():
        if ok(ns) and _label(pod, c.LABEL_COMPONENT) == BOT and running(pod):
            pods_by_bot.setdefault((ns, _label(pod, c.LABEL_INSTANCE)), []).append(pod)
    for (ns, bot_name), pods in pods_by_bot.items():
        own = world.deployments.get((ns, f"{bot_name}-bot"))
        allowance = (
            deployment_allowance(own, world)
            if own is not None
            else bot_allowance(world.bots.get((ns, bot_name)), world)
        )
        if len(pods) > allowance.replicas:
            uids = tuple(sorted(str(p["metadata"].get("uid")) for p in pods))
            dep_replicas = None if own is None else int(own.get("spec", {}).get("replicas", 1))
            key = f"{ns}/{bot_name}[pods]"
            out.append(Excess(key, "pods", len(pods), allowance, uids, dep_replicas))
    return out
