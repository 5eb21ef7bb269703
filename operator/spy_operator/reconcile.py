"""One level-triggered reconcile per kind: read the world, decide, apply, write status.

Called by the controller's workers for a (kind, namespace, name) key, whatever event
queued it; none of these functions looks at what changed. Decisions come from the
pure policies (gate.py, pullsecrets.py, vpn.py, clientids.py) and manifests from
builders.py; this module does the gathering and the writes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spy_operator import builders, clientids, metrics
from spy_operator import constants as c
from spy_operator.conditions import Check, Condition, set_check, set_condition
from spy_operator.diffing import is_subset, status_patch
from spy_operator.gate import (
    GateDecision,
    GateInput,
    GatewayView,
    Halt,
    Mode,
    check_approval,
    check_gateway,
    evaluate_gate,
    next_deadline,
    parse_approval,
)
from spy_operator.kube import Kube
from spy_operator.pullsecrets import check_pull_secrets, pull_secret_names
from spy_operator.vpn import VpnProber, check_vpn, gate_view, rtt_changed, vpn_target
from spy_operator.world import Body, World

log = logging.getLogger("spy_operator.reconcile")

ReconcileKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Outcome:
    """What a pass did, for metrics, tests and the controller's scheduling."""

    writes: int = 0
    requeue_after: float | None = None
    armed: bool = False  # for a TradingBot: the gate allows it to run


@dataclass
class Context:
    kube: Kube
    world: World
    prober: VpnProber
    clock: Callable[[], dt.datetime]
    operator_namespace: str = c.DEFAULT_OPERATOR_NAMESPACE
    vpn_recheck_seconds: float = 5.0


# ----------------------------------------------------------------------- shared parts


async def apply_child(ctx: Context, index: str, desired: Body, outcome: Outcome) -> Body:
    """Server-side apply `desired` unless the observed child already matches it."""
    meta = desired["metadata"]
    key = (meta["namespace"], meta["name"])
    digest = builders.desired_hash(desired)
    meta.setdefault("annotations", {})[c.ANNOTATION_DESIRED_HASH] = digest
    observed = ctx.world.get(index, key)
    if observed is not None:
        have = observed.get("metadata", {}).get("annotations", {}).get(c.ANNOTATION_DESIRED_HASH)
        if have == digest and is_subset(desired, observed):
            log.debug("child unchanged", extra={"child": f"{desired['kind']}/{meta['name']}"})
            return observed
    applied = await ctx.kube.apply(desired)
    outcome.writes += 1
    ctx.world.remember(index, key, applied)
    log.info(
        "applied child",
        extra={"child": f"{desired['kind']}/{meta['namespace']}/{meta['name']}"},
    )
    return applied


async def write_status(
    ctx: Context, kind: str, index: str, obj: Body, status: dict[str, Any], outcome: Outcome
) -> None:
    meta = obj["metadata"]
    patch = status_patch(obj.get("status") or {}, status)
    if patch is None:
        return
    updated = await ctx.kube.patch_status(kind, meta["namespace"], meta["name"], patch)
    outcome.writes += 1
    ctx.world.remember(index, (meta["namespace"], meta["name"]), updated)
    log.info(
        "status updated",
        extra={
            "object": f"{kind}/{meta['namespace']}/{meta['name']}",
            "reason": status.get("reason"),
        },
    )


def vpn_status(
    ctx: Context, spec: Body, status_old: Body, outcome: Outcome
) -> tuple[Check, Check, float | None]:
    """(VPNReady check, what the gate sees, RTT to report) for a spec's optional probe."""
    target = vpn_target(spec)
    if target is None:
        return check_vpn(None, None), check_vpn(None, None), None
    result = ctx.prober.result(target)
    check = check_vpn(target, result)
    # Keep probing while anything refers to the target, so a tunnel going down or
    # coming back is noticed without an event.
    recheck = ctx.vpn_recheck_seconds if result is not None else 0.5  # first probe running
    outcome.requeue_after = _sooner(outcome.requeue_after, recheck)
    old_rtt = status_old.get("vpnRttMs")
    rtt = round(result.rtt_ms, 2) if result is not None and result.rtt_ms is not None else None
    report = rtt if rtt_changed(old_rtt, rtt) else old_rtt
    return check, gate_view(target, check), report


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def pull_secret_check(ctx: Context, obj: Body, default_image: str = "") -> Check:
    spec = obj.get("spec", {})
    names = pull_secret_names(spec)
    facts = ctx.world.secrets_in(obj["metadata"]["namespace"], names)
    return check_pull_secrets(str(spec.get("image") or default_image), names, facts)


def gateway_view(ctx: Context, namespace: str, name: str) -> GatewayView:
    gw = ctx.world.get(World.GATEWAYS, (namespace, name))
    if gw is None or gw.get("metadata", {}).get("deletionTimestamp"):
        return GatewayView(name=name, exists=False)
    ready = any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in gw.get("status", {}).get("conditions", [])
    ) and gw.get("status", {}).get("observedGeneration") == gw["metadata"].get("generation")
    spec = gw.get("spec", {})
    return GatewayView(
        name=name,
        exists=True,
        ready=ready,
        trading_mode=Mode(spec.get("tradingMode", "paper")),
        read_only=bool(spec.get("readOnlyApi", True)),
    )


def halt_state(ctx: Context) -> Halt:
    cm = ctx.world.halt()
    metrics.HALTED.set(1 if cm else 0)
    if cm is None:
        return Halt(False)
    data = cm.get("data") or {}
    why = data.get("reason") or "no reason given"
    return Halt(True, f"global halt ConfigMap {c.HALT_CONFIGMAP} is set: {why}")


def consumers(world: World) -> list[clientids.Consumer]:
    out = []
    for kind, index in ((c.KIND_BOT, World.BOTS), (c.KIND_DETECTOR, World.DETECTORS)):
        for obj in world.values(index):
            meta, spec = obj["metadata"], obj.get("spec", {})
            gw = (spec.get("gatewayRef") or {}).get("name")
            if not gw:
                continue
            try:
                count = 1 if kind == c.KIND_BOT else max(1, int(spec.get("shards", 1)))
            except (TypeError, ValueError):
                count = 1  # one malformed detector must not stop every bot's reconcile
            out.append(
                clientids.Consumer(
                    kind,
                    meta["namespace"],
                    meta["name"],
                    gw,
                    meta.get("creationTimestamp", ""),
                    count,
                )
            )
    return out


def _gateway_port(ctx: Context, namespace: str, name: str) -> int:
    gw = ctx.world.get(World.GATEWAYS, (namespace, name))
    return builders.gateway_port(gw) if gw else 4002


def statefulset_progress(sts: Body, want: int, ok: str, waiting: str) -> tuple[Check, int]:
    """Is the StatefulSet at `want` ready replicas for its current generation?"""
    status = sts.get("status", {})
    ready = int(status.get("readyReplicas") or 0)
    current = status.get("observedGeneration") == sts["metadata"].get("generation")
    done = ready == want and current
    message = f"statefulset {sts['metadata']['name']} has {ready}/{want} ready replicas"
    return Check(done, ok if done else waiting, message), ready


def first_failing(*checks: Check) -> Check:
    """The Ready condition: the first failing check, else the last (the running one)."""
    return next((chk for chk in checks if not chk.ok), checks[-1])


def _ready_condition(
    conditions: list[Condition],
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> list[Condition]:
    return set_condition(conditions, "Ready", ok, reason, message, generation, now)


# ------------------------------------------------------------------------ TradingBot


async def close_bot_deployment(ctx: Context, namespace: str, name: str, outcome: Outcome) -> None:
    """Set the bot's Deployment to 0 replicas if it has more: the fail-closed path.

    Used for a bot being deleted and, by the controller, when a bot's reconcile fails
    unexpectedly (a malformed object, a bug): whatever went wrong, the bot stops.
    """
    dep_name = builders.bot_deployment_name({"metadata": {"name": name}})
    dep = ctx.world.get(World.DEPLOYMENTS, (namespace, dep_name))
    if dep is None or int(dep.get("spec", {}).get("replicas") or 0) == 0:
        return
    patched = await ctx.kube.merge_patch(
        "apps/v1", "Deployment", namespace, dep_name, {"spec": {"replicas": 0}}
    )
    outcome.writes += 1
    ctx.world.remember(World.DEPLOYMENTS, (namespace, dep_name), patched)
    log.warning("bot deployment closed", extra={"object": f"{namespace}/{name}"})


def bot_gate(
    ctx: Context, bot: Body, pull: Check, vpn_gate: Check, now: dt.datetime
) -> GateDecision:
    spec = bot.get("spec", {})
    ns = bot["metadata"]["namespace"]
    return evaluate_gate(
        GateInput(
            armed=spec.get("armed") is True,
            approval=parse_approval(spec),
            mode=Mode(spec.get("mode", "paper")),
            gateway=gateway_view(ctx, ns, spec.get("gatewayRef", {}).get("name", "")),
            pull_secrets=pull,
            vpn=vpn_gate,
            halt=halt_state(ctx),
            now=now,
        )
    )


async def reconcile_tradingbot(
    ctx: Context, namespace: str, name: str, allocation: dict[clientids.ConsumerKey, list[int]]
) -> Outcome:
    outcome = Outcome()
    bot = ctx.world.get(World.BOTS, (namespace, name))
    if bot is None:
        return outcome  # garbage collection removes the children
    if bot["metadata"].get("deletionTimestamp"):
        # Deletion can wait on someone else's finalizer; the bot must not trade meanwhile.
        await close_bot_deployment(ctx, namespace, name, outcome)
        return outcome
    now = ctx.clock()
    spec = bot.get("spec", {})
    generation = int(bot["metadata"].get("generation", 0))
    status_old: Body = bot.get("status") or {}
    gw_name = spec.get("gatewayRef", {}).get("name", "")
    mode = Mode(spec.get("mode", "paper"))

    pull = pull_secret_check(ctx, bot)
    vpn_check, vpn_gate, rtt = vpn_status(ctx, spec, status_old, outcome)
    decision = bot_gate(ctx, bot, pull, vpn_gate, now)

    client_id = (allocation.get((c.KIND_BOT, namespace, name)) or [0])[0]
    desired = builders.build_bot_deployment(
        bot, decision.replicas, client_id, _gateway_port(ctx, namespace, gw_name)
    )
    dep_key = (namespace, desired["metadata"]["name"])
    before = ctx.world.get(World.DEPLOYMENTS, dep_key)
    before_replicas = int((before or {}).get("spec", {}).get("replicas") or 0)
    set_by_us = int(status_old.get("replicas") or 0)
    if before is not None and before_replicas > max(decision.replicas, set_by_us):
        # Above both the new decision and what the operator last set: a hand scale-up
        # (a gate closing on its own is a disarm, not a revert).
        metrics.REVERTED_SCALE_UPS.inc()
        log.warning(
            "bot deployment above the gate; setting it back",
            extra={
                "object": f"{namespace}/{name}",
                "found": before_replicas,
                "allowed": decision.replicas,
                "reason": decision.reason,
            },
        )
    deployment = await apply_child(ctx, World.DEPLOYMENTS, desired, outcome)

    approval = check_approval(parse_approval(spec), now)
    conditions: list[Condition] = list(status_old.get("conditions") or [])
    halt = halt_state(ctx)
    conditions = set_condition(
        conditions,
        "Halted",
        halt.active,
        "GlobalHalt" if halt.active else "NotHalted",
        halt.message or "no global halt",
        generation,
        now,
    )
    conditions = set_check(conditions, "Approved", approval, generation, now)
    conditions = set_check(
        conditions,
        "GatewayReady",
        check_gateway(gateway_view(ctx, namespace, gw_name), mode),
        generation,
        now,
    )
    conditions = set_check(conditions, "PullSecretReady", pull, generation, now)
    conditions = set_check(conditions, "VPNReady", vpn_check, generation, now)
    conditions = set_condition(
        conditions, "Armed", decision.open, decision.reason, decision.message, generation, now
    )
    ready_replicas = int(deployment.get("status", {}).get("readyReplicas") or 0)
    observed_gen = deployment.get("status", {}).get("observedGeneration")
    converged = observed_gen == deployment["metadata"].get("generation") and (
        ready_replicas == decision.replicas
        and int(deployment.get("status", {}).get("replicas") or 0) == decision.replicas
    )
    conditions = _ready_condition(
        conditions,
        converged,
        ("Running" if decision.open else "Idle") if converged else "Progressing",
        f"deployment {desired['metadata']['name']} has {ready_replicas}/{decision.replicas} "
        "ready replicas",
        generation,
        now,
    )
    status: Body = {
        "observedGeneration": generation,
        "conditions": conditions,
        "replicas": decision.replicas,
        "readyReplicas": ready_replicas,
        "armed": decision.open,
        "reason": decision.reason,
        "message": decision.message,
        "ibClientId": client_id,
        "deployment": desired["metadata"]["name"],
    }
    if rtt is not None:
        status["vpnRttMs"] = rtt
    await write_status(ctx, c.KIND_BOT, World.BOTS, bot, status, outcome)
    outcome.armed = decision.open

    deadline = next_deadline(parse_approval(spec), now)
    if deadline is not None:
        # Wake exactly at expiry (plus a hair) so the bot stops without any event.
        delay = (deadline - now).total_seconds() + 0.05
        outcome.requeue_after = _sooner(outcome.requeue_after, delay)
    if not converged:
        outcome.requeue_after = _sooner(outcome.requeue_after, 5.0)
    return outcome


# ------------------------------------------------------------------------- IBGateway


def credentials_check(ctx: Context, gw: Body) -> Check:
    ref = (gw.get("spec", {}).get("credentialsSecretRef") or {}).get("name")
    facts = ctx.world.secret(gw["metadata"]["namespace"], ref) if ref else None
    if facts is None:
        return Check(False, "CredentialsSecretNotFound", f"Secret {ref!r} not found")
    missing = [k for k in c.CREDENTIAL_KEYS if k not in facts.keys]
    if missing:
        return Check(False, "CredentialsKeyMissing", f"Secret {ref!r} lacks key(s) {missing}")
    return Check(True, "CredentialsPresent", f"Secret {ref!r} has username and password")


async def reconcile_ibgateway(ctx: Context, namespace: str, name: str) -> Outcome:
    outcome = Outcome()
    gw = ctx.world.get(World.GATEWAYS, (namespace, name))
    if gw is None or gw["metadata"].get("deletionTimestamp"):
        return outcome
    now = ctx.clock()
    spec = gw.get("spec", {})
    generation = int(gw["metadata"].get("generation", 0))
    status_old: Body = gw.get("status") or {}

    sts = await apply_child(
        ctx, World.STATEFULSETS, builders.build_gateway_statefulset(gw), outcome
    )
    for svc in builders.build_gateway_services(gw):
        await apply_child(ctx, World.SERVICES, svc, outcome)

    pull = pull_secret_check(ctx, gw, "ghcr.io/gnzsnz/ib-gateway:stable")
    creds = credentials_check(ctx, gw)
    vpn_check, vpn_gate, rtt = vpn_status(ctx, spec, status_old, outcome)
    running, ready_replicas = statefulset_progress(sts, 1, "GatewayRunning", "GatewayStarting")
    ready = first_failing(creds, pull, vpn_gate, running)

    conditions: list[Condition] = list(status_old.get("conditions") or [])
    conditions = set_check(conditions, "PullSecretReady", pull, generation, now)
    conditions = set_check(conditions, "VPNReady", vpn_check, generation, now)
    conditions = set_check(conditions, "Ready", ready, generation, now)
    status: Body = {
        "observedGeneration": generation,
        "conditions": conditions,
        "readyReplicas": ready_replicas,
        "statefulSet": name,
    }
    if ready.ok:
        status["endpoint"] = builders.gateway_endpoint(namespace, name, builders.gateway_port(gw))
    if rtt is not None:
        status["vpnRttMs"] = rtt
    await write_status(ctx, c.KIND_GATEWAY, World.GATEWAYS, gw, status, outcome)
    if not ready.ok:
        outcome.requeue_after = _sooner(outcome.requeue_after, 10.0)
    return outcome


# ------------------------------------------------------------------- OptionsDetector


async def reconcile_optionsdetector(
    ctx: Context, namespace: str, name: str, allocation: dict[clientids.ConsumerKey, list[int]]
) -> Outcome:
    outcome = Outcome()
    det = ctx.world.get(World.DETECTORS, (namespace, name))
    if det is None or det["metadata"].get("deletionTimestamp"):
        return outcome
    now = ctx.clock()
    spec = det.get("spec", {})
    generation = int(det["metadata"].get("generation", 0))
    status_old: Body = det.get("status") or {}
    gw_name = spec.get("gatewayRef", {}).get("name", "")
    ids = allocation.get((c.KIND_DETECTOR, namespace, name), [])
    desired = builders.build_detector_statefulset(det, ids, _gateway_port(ctx, namespace, gw_name))
    sts = await apply_child(ctx, World.STATEFULSETS, desired, outcome)

    gw = gateway_view(ctx, namespace, gw_name)
    if not gw.exists:
        gw_check = Check(False, "GatewayNotFound", f"IBGateway {gw_name!r} not found")
    elif not gw.ready:
        gw_check = Check(False, "GatewayNotReady", f"IBGateway {gw_name!r} is not Ready")
    else:
        gw_check = Check(True, "GatewayReady", f"IBGateway {gw_name!r} is Ready")
    pull = pull_secret_check(ctx, det)
    vpn_check, vpn_gate, rtt = vpn_status(ctx, spec, status_old, outcome)
    shards = int(spec.get("shards", 1))
    running, ready_shards = statefulset_progress(sts, shards, "ShardsReady", "ShardsStarting")
    ready = first_failing(gw_check, pull, vpn_gate, running)

    conditions: list[Condition] = list(status_old.get("conditions") or [])
    conditions = set_check(conditions, "GatewayReady", gw_check, generation, now)
    conditions = set_check(conditions, "PullSecretReady", pull, generation, now)
    conditions = set_check(conditions, "VPNReady", vpn_check, generation, now)
    conditions = set_check(conditions, "Ready", ready, generation, now)
    status: Body = {
        "observedGeneration": generation,
        "conditions": conditions,
        "readyShards": ready_shards,
        "ibClientIds": ids,
        "statefulSet": desired["metadata"]["name"],
    }
    if rtt is not None:
        status["vpnRttMs"] = rtt
    await write_status(ctx, c.KIND_DETECTOR, World.DETECTORS, det, status, outcome)
    if not ready.ok:
        outcome.requeue_after = _sooner(outcome.requeue_after, 10.0)
    return outcome
