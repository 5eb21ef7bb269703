"""One level-triggered reconcile per kind: read the world, decide, apply, write status.

Called by the controller's workers for a (kind, namespace, name) key, whatever event
queued it; none of these functions looks at what changed. Facts come from facts.py,
decisions from the pure policies (gate.py and friends), manifests from builders.py,
and writes go through writes.py.
"""

from __future__ import annotations

import datetime as dt
import logging

from spy_operator import builders, clientids, metrics
from spy_operator import constants as c
from spy_operator.conditions import Check, Condition, set_check, set_condition
from spy_operator.context import Context, Outcome, sooner
from spy_operator.facts import (
    credentials_check,
    first_failing,
    gateway_port_of,
    gateway_view,
    halt_state,
    pull_secret_check,
    statefulset_progress,
    vpn_status,
)
from spy_operator.gate import (
    GateDecision,
    GateInput,
    Mode,
    check_approval,
    check_gateway,
    evaluate_gate,
    next_deadline,
    parse_approval,
)
from spy_operator.world import Body, World
from spy_operator.writes import apply_child, close_bot_deployment, write_status

log = logging.getLogger("spy_operator.reconcile")


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
    vpn_check, vpn_gate, rtt = vpn_status(
        ctx, (c.KIND_BOT, namespace, name), spec, status_old, outcome
    )
    decision = bot_gate(ctx, bot, pull, vpn_gate, now)

    client_id = (allocation.get((c.KIND_BOT, namespace, name)) or [0])[0]
    desired = builders.build_bot_deployment(
        bot, decision.replicas, client_id, gateway_port_of(ctx, namespace, gw_name)
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
        outcome.requeue_after = sooner(outcome.requeue_after, delay)
    if not converged:
        outcome.requeue_after = sooner(outcome.requeue_after, 5.0)
    return outcome


# ------------------------------------------------------------------------- IBGateway


async def finish(
    ctx: Context,
    kind: str,
    index: str,
    obj: Body,
    checks: dict[str, Check],
    fields: Body,
    rtt: float | None,
    now: dt.datetime,
    outcome: Outcome,
) -> None:
    """Status from the checks (one condition each) and `fields`; written if it changed.
    Until Ready, the object is looked at again in 10 s."""
    status_old: Body = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation", 0))
    conditions: list[Condition] = list(status_old.get("conditions") or [])
    for type_, check in checks.items():
        conditions = set_check(conditions, type_, check, generation, now)
    status: Body = {"observedGeneration": generation, "conditions": conditions, **fields}
    if rtt is not None:
        status["vpnRttMs"] = rtt
    await write_status(ctx, kind, index, obj, status, outcome)
    if not checks["Ready"].ok:
        outcome.requeue_after = sooner(outcome.requeue_after, 10.0)


async def reconcile_ibgateway(ctx: Context, namespace: str, name: str) -> Outcome:
    outcome = Outcome()
    gw = ctx.world.get(World.GATEWAYS, (namespace, name))
    if gw is None or gw["metadata"].get("deletionTimestamp"):
        return outcome
    now = ctx.clock()
    spec = gw.get("spec", {})
    status_old: Body = gw.get("status") or {}

    sts = await apply_child(
        ctx, World.STATEFULSETS, builders.build_gateway_statefulset(gw), outcome
    )
    for svc in builders.build_gateway_services(gw):
        await apply_child(ctx, World.SERVICES, svc, outcome)

    pull = pull_secret_check(ctx, gw, "ghcr.io/gnzsnz/ib-gateway:stable")
    creds = credentials_check(ctx, gw)
    vpn_check, vpn_gate, rtt = vpn_status(
        ctx, (c.KIND_GATEWAY, namespace, name), spec, status_old, outcome
    )
    running, ready_replicas = statefulset_progress(sts, 1, "GatewayRunning", "GatewayStarting")
    ready = first_failing(creds, pull, vpn_gate, running)

    fields: Body = {"readyReplicas": ready_replicas, "statefulSet": name}
    if ready.ok:
        fields["endpoint"] = builders.gateway_endpoint(namespace, name, builders.gateway_port(gw))
    checks = {"PullSecretReady": pull, "VPNReady": vpn_check, "Ready": ready}
    await finish(ctx, c.KIND_GATEWAY, World.GATEWAYS, gw, checks, fields, rtt, now, outcome)
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
    status_old: Body = det.get("status") or {}
    gw_name = spec.get("gatewayRef", {}).get("name", "")
    ids = allocation.get((c.KIND_DETECTOR, namespace, name), [])
    desired = builders.build_detector_statefulset(
        det, ids, gateway_port_of(ctx, namespace, gw_name)
    )
    sts = await apply_child(ctx, World.STATEFULSETS, desired, outcome)

    gw = gateway_view(ctx, namespace, gw_name)
    if not gw.exists:
        gw_check = Check(False, "GatewayNotFound", f"IBGateway {gw_name!r} not found")
    elif not gw.ready:
        gw_check = Check(False, "GatewayNotReady", f"IBGateway {gw_name!r} is not Ready")
    else:
        gw_check = Check(True, "GatewayReady", f"IBGateway {gw_name!r} is Ready")
    pull = pull_secret_check(ctx, det)
    vpn_check, vpn_gate, rtt = vpn_status(
        ctx, (c.KIND_DETECTOR, namespace, name), spec, status_old, outcome
    )
    shards = int(spec.get("shards", 1))
    running, ready_shards = statefulset_progress(sts, shards, "ShardsReady", "ShardsStarting")
    ready = first_failing(gw_check, pull, vpn_gate, running)

    fields: Body = {
        "readyShards": ready_shards,
        "ibClientIds": ids,
        "statefulSet": desired["metadata"]["name"],
    }
    checks = {
        "GatewayReady": gw_check,
        "PullSecretReady": pull,
        "VPNReady": vpn_check,
        "Ready": ready,
    }
    await finish(ctx, c.KIND_DETECTOR, World.DETECTORS, det, checks, fields, rtt, now, outcome)
    return outcome
