"""One level-triggered reconcile per kind: read the world, decide, apply, write status.

Called by the controller's workers for a (kind, namespace, name) key, whatever event
queued it; none of these functions looks at what changed. Each builds the object's
typed view once (api.py), gathers facts once (facts.py), decides through the pure
policies (gate.py and friends), builds manifests (builders.py) and writes through
writes.py. A spec the view refuses sets an InvalidSpec condition (a bot goes to 0) and
is not retried until the object changes.
"""

from __future__ import annotations

import datetime as dt
import logging

from spy_operator import builders, clientids, metrics
from spy_operator import constants as c
from spy_operator.api import IBGateway, OptionsDetector, SpecError, TradingBot
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
from spy_operator.gate import GateDecision, GateInput, check_gateway_ready, evaluate_gate
from spy_operator.gate import next_deadline as gate_deadline
from spy_operator.world import Body, World
from spy_operator.writes import apply_child, close_bot_deployment, write_status

log = logging.getLogger("spy_operator.reconcile")

INVALID_SPEC = "InvalidSpec"


async def invalid_spec(
    ctx: Context, kind: str, index: str, body: Body, err: SpecError, fields: Body, outcome: Outcome
) -> None:
    """Status for a spec the view refused: Ready False, InvalidSpec, naming the field."""
    generation = int(body["metadata"].get("generation") or 0)
    now = ctx.clock()
    conditions: list[Condition] = list((body.get("status") or {}).get("conditions") or [])
    types = ("Armed", "Ready") if kind == c.KIND_BOT else ("Ready",)
    for type_ in types:
        conditions = set_condition(
            conditions, type_, False, INVALID_SPEC, str(err), generation, now
        )
    status: Body = {"observedGeneration": generation, "conditions": conditions, **fields}
    log.warning(
        "invalid spec",
        extra={
            "object": f"{kind}/{body['metadata'].get('namespace')}/{body['metadata'].get('name')}",
            "field": err.field,
            "error": err.reason,
        },
    )
    await write_status(ctx, kind, index, body, status, outcome)


# ------------------------------------------------------------------------ TradingBot


async def reconcile_tradingbot(
    ctx: Context, namespace: str, name: str, allocation: dict[clientids.ConsumerKey, list[int]]
) -> Outcome:
    outcome = Outcome()
    body = ctx.world.get(World.BOTS, (namespace, name))
    if body is None:
        return outcome  # garbage collection removes the children
    if body["metadata"].get("deletionTimestamp"):
        # Deletion can wait on someone else's finalizer; the bot must not trade meanwhile.
        await close_bot_deployment(ctx, namespace, name, outcome)
        return outcome
    try:
        bot = TradingBot.from_body(body)
    except SpecError as err:
        await close_bot_deployment(ctx, namespace, name, outcome)
        fields = {"replicas": 0, "armed": False, "reason": INVALID_SPEC, "message": str(err)}
        await invalid_spec(ctx, c.KIND_BOT, World.BOTS, body, err, fields, outcome)
        return outcome
    now = ctx.clock()
    vpn = vpn_status(ctx, bot.meta.key, bot.vpn, bot.status, outcome)
    decision = evaluate_gate(
        GateInput.for_bot(
            bot,
            gateway=gateway_view(ctx, namespace, bot.gateway),
            pull_secrets=pull_secret_check(ctx, namespace, bot.image, bot.pull_secrets),
            vpn=vpn.gate,
            halt=halt_state(ctx),
            now=now,
        )
    )

    client_id = (allocation.get(bot.meta.key) or [0])[0]
    desired = builders.build_bot_deployment(
        bot, decision.replicas, client_id, gateway_port_of(ctx, namespace, bot.gateway)
    )
    _count_hand_scale_up(ctx, bot, desired, decision)
    deployment = await apply_child(ctx, World.DEPLOYMENTS, desired, outcome)

    status = bot_status(bot, decision, vpn.check, deployment, client_id, now)
    if vpn.rtt_ms is not None:
        status["vpnRttMs"] = vpn.rtt_ms
    await write_status(ctx, c.KIND_BOT, World.BOTS, body, status, outcome)
    outcome.armed = decision.open

    deadline = gate_deadline(bot.approval, now)
    if deadline is not None:
        # Wake exactly at expiry (plus a hair) so the bot stops without any event.
        delay = (deadline - now).total_seconds() + 0.05
        outcome.requeue_after = sooner(outcome.requeue_after, delay)
    if not _converged(deployment, decision.replicas):
        outcome.requeue_after = sooner(outcome.requeue_after, 5.0)
    return outcome


def _count_hand_scale_up(
    ctx: Context, bot: TradingBot, desired: Body, decision: GateDecision
) -> None:
    dep_key = (bot.meta.namespace, desired["metadata"]["name"])
    before = ctx.world.get(World.DEPLOYMENTS, dep_key)
    before_replicas = int((before or {}).get("spec", {}).get("replicas") or 0)
    set_by_us = int(bot.status.get("replicas") or 0)
    if before is not None and before_replicas > max(decision.replicas, set_by_us):
        # Above both the new decision and what the operator last set: a hand scale-up
        # (a gate closing on its own is a disarm, not a revert).
        metrics.REVERTED_SCALE_UPS.inc()
        log.warning(
            "bot deployment above the gate; setting it back",
            extra={
                "object": f"{bot.meta.namespace}/{bot.meta.name}",
                "found": before_replicas,
                "allowed": decision.replicas,
                "reason": decision.reason,
            },
        )


def _converged(deployment: Body, replicas: int) -> bool:
    status = deployment.get("status", {})
    return (
        status.get("observedGeneration") == deployment["metadata"].get("generation")
        and int(status.get("readyReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
    )


def bot_status(
    bot: TradingBot,
    decision: GateDecision,
    vpn_check: Check,
    deployment: Body,
    client_id: int,
    now: dt.datetime,
) -> Body:
    """The bot's status from the gate's report and its Deployment. Pure."""
    generation = bot.meta.generation
    conditions: list[Condition] = list(bot.status.get("conditions") or [])
    halt = decision.check("Halt")
    conditions = set_condition(
        conditions, "Halted", not halt.ok, halt.reason, halt.message, generation, now
    )
    for type_ in ("Approved", "GatewayReady", "PullSecretReady"):
        conditions = set_check(conditions, type_, decision.check(type_), generation, now)
    conditions = set_check(conditions, "VPNReady", vpn_check, generation, now)
    conditions = set_condition(
        conditions, "Armed", decision.open, decision.reason, decision.message, generation, now
    )
    ready_replicas = int(deployment.get("status", {}).get("readyReplicas") or 0)
    converged = _converged(deployment, decision.replicas)
    dep_name = deployment["metadata"]["name"]
    conditions = set_condition(
        conditions,
        "Ready",
        converged,
        ("Running" if decision.open else "Idle") if converged else "Progressing",
        f"deployment {dep_name} has {ready_replicas}/{decision.replicas} ready replicas",
        generation,
        now,
    )
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "replicas": decision.replicas,
        "readyReplicas": ready_replicas,
        "armed": decision.open,
        "reason": decision.reason,
        "message": decision.message,
        "ibClientId": client_id,
        "deployment": dep_name,
    }


# ------------------------------------------------------------- IBGateway, detector


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
    body = ctx.world.get(World.GATEWAYS, (namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return outcome
    try:
        gw = IBGateway.from_body(body)
    except SpecError as err:
        await invalid_spec(ctx, c.KIND_GATEWAY, World.GATEWAYS, body, err, {}, outcome)
        return outcome
    now = ctx.clock()
    sts = await apply_child(
        ctx, World.STATEFULSETS, builders.build_gateway_statefulset(gw), outcome
    )
    for svc in builders.build_gateway_services(gw):
        await apply_child(ctx, World.SERVICES, svc, outcome)

    pull = pull_secret_check(ctx, namespace, gw.image, gw.pull_secrets)
    creds = credentials_check(ctx, gw)
    vpn = vpn_status(ctx, gw.meta.key, gw.vpn, gw.status, outcome)
    running, ready_replicas = statefulset_progress(sts, 1, "GatewayRunning", "GatewayStarting")
    ready = first_failing(creds, pull, vpn.gate, running)

    fields: Body = {"readyReplicas": ready_replicas, "statefulSet": name}
    if ready.ok:
        fields["endpoint"] = builders.gateway_endpoint(namespace, name, gw.api_port)
    checks = {"PullSecretReady": pull, "VPNReady": vpn.check, "Ready": ready}
    await finish(
        ctx, c.KIND_GATEWAY, World.GATEWAYS, body, checks, fields, vpn.rtt_ms, now, outcome
    )
    return outcome


async def reconcile_optionsdetector(
    ctx: Context, namespace: str, name: str, allocation: dict[clientids.ConsumerKey, list[int]]
) -> Outcome:
    outcome = Outcome()
    body = ctx.world.get(World.DETECTORS, (namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return outcome
    try:
        det = OptionsDetector.from_body(body)
    except SpecError as err:
        await invalid_spec(ctx, c.KIND_DETECTOR, World.DETECTORS, body, err, {}, outcome)
        return outcome
    now = ctx.clock()
    ids = allocation.get(det.meta.key, [])
    desired = builders.build_detector_statefulset(
        det, ids, gateway_port_of(ctx, namespace, det.gateway)
    )
    sts = await apply_child(ctx, World.STATEFULSETS, desired, outcome)

    gw_check = check_gateway_ready(gateway_view(ctx, namespace, det.gateway))
    pull = pull_secret_check(ctx, namespace, det.image, det.pull_secrets)
    vpn = vpn_status(ctx, det.meta.key, det.vpn, det.status, outcome)
    running, ready_shards = statefulset_progress(sts, det.shards, "ShardsReady", "ShardsStarting")
    ready = first_failing(gw_check, pull, vpn.gate, running)

    fields: Body = {
        "readyShards": ready_shards,
        "ibClientIds": ids,
        "statefulSet": desired["metadata"]["name"],
    }
    checks = {
        "GatewayReady": gw_check,
        "PullSecretReady": pull,
        "VPNReady": vpn.check,
        "Ready": ready,
    }
    await finish(
        ctx, c.KIND_DETECTOR, World.DETECTORS, body, checks, fields, vpn.rtt_ms, now, outcome
    )
    return outcome
