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
from spy_operator.drift import check_foreign_change
from spy_operator.enforce import bot_deployment, floor_allowance, lower_to, replicas_of
from spy_operator.facts import (
    bot_decision,
    credentials_check,
    first_failing,
    gateway_pods,
    gateway_port_of,
    gateway_view,
    pull_secret_check,
    statefulset_progress,
    vpn_status,
)
from spy_operator.gate import GateDecision, check_gateway_ready
from spy_operator.gate import next_deadline as gate_deadline
from spy_operator.kube import ApiError, object_path
from spy_operator.pods import check_gateway_rollout
from spy_operator.world import Body, World
from spy_operator.writes import apply_child, write_status

log = logging.getLogger("spy_operator.reconcile")

INVALID_SPEC = "InvalidSpec"
ENFORCEMENT_FAILED = "EnforcementFailed"


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
    """Decide, lower first (replicas only), then apply the whole manifest, then status.

    Any error after the decision propagates to the controller, whose fail-closed path
    lowers the Deployment to the gate's floor and writes Enforced False."""
    outcome = Outcome()
    body = ctx.world.get(World.BOTS, (namespace, name))
    if body is None:
        return outcome  # garbage collection removes the children
    if body["metadata"].get("deletionTimestamp"):
        # Deletion can wait on someone else's finalizer; the bot must not trade meanwhile.
        await lower_to(ctx, bot_deployment(ctx, namespace, name), 0, outcome)
        return outcome
    try:
        bot = TradingBot.from_body(body)
    except SpecError as err:
        await lower_to(ctx, bot_deployment(ctx, namespace, name), 0, outcome)
        fields = {"replicas": 0, "armed": False, "reason": INVALID_SPEC, "message": str(err)}
        await invalid_spec(ctx, c.KIND_BOT, World.BOTS, body, err, fields, outcome)
        return outcome
    now = ctx.clock()
    decision, vpn = bot_decision(ctx, bot, now, outcome)
    client_id = (allocation.get(bot.meta.key) or [0])[0]
    desired = builders.build_bot_deployment(
        bot, decision.replicas, client_id, gateway_port_of(ctx, namespace, bot.gateway)
    )
    observed = bot_deployment(ctx, namespace, name)
    foreign = check_foreign_change(desired, observed, c.FIELD_MANAGER)
    if not foreign.ok:
        # Someone else's fields in what the bot runs: hold it at 0 and rebuild the
        # Deployment from our manifest (deleted now, recreated on the next pass).
        metrics.FOREIGN_CHANGES.inc()
        decision = GateDecision(0, foreign.reason, foreign.message, decision.checks)
        observed = await lower_to(ctx, observed, 0, outcome)
        await ctx.kube.delete(
            object_path("apps/v1", "Deployment", namespace, desired["metadata"]["name"]),
            "deployments",
        )
        outcome.writes += 1
        ctx.world.forget(World.DEPLOYMENTS, (namespace, desired["metadata"]["name"]))
        log.warning(
            "foreign change to a bot deployment; rebuilding it",
            extra={"object": f"{namespace}/{name}", "detail": foreign.message},
        )
        status = bot_status(bot, decision, vpn.check, observed or {}, foreign, client_id, now)
        await write_status(ctx, c.KIND_BOT, World.BOTS, body, status, outcome)
        outcome.requeue_after = 1.0
        return outcome

    _count_hand_scale_up(ctx, bot, observed, decision)
    await lower_to(ctx, observed, decision.replicas, outcome)  # replicas only, first
    deployment = await apply_child(ctx, World.DEPLOYMENTS, desired, outcome)
    enforced = check_enforced(deployment, decision.replicas)
    status = bot_status(bot, decision, vpn.check, deployment, enforced, client_id, now)
    if vpn.rtt_ms is not None:
        status["vpnRttMs"] = vpn.rtt_ms
    await write_status(ctx, c.KIND_BOT, World.BOTS, body, status, outcome)
    outcome.armed = status["armed"]

    deadline = gate_deadline(bot.approval, now)
    if deadline is not None:
        # Wake exactly at expiry (plus a hair) so the bot stops without any event.
        delay = (deadline - now).total_seconds() + 0.05
        outcome.requeue_after = sooner(outcome.requeue_after, delay)
    if not _converged(deployment, decision.replicas):
        outcome.requeue_after = sooner(outcome.requeue_after, 5.0)
    return outcome


def _count_hand_scale_up(
    ctx: Context, bot: TradingBot, observed: Body | None, decision: GateDecision
) -> None:
    before_replicas = replicas_of(observed)
    set_by_us = int(bot.status.get("replicas") or 0)
    if observed is not None and before_replicas > max(decision.replicas, set_by_us):
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


def check_enforced(deployment: Body, replicas: int) -> Check:
    """Enforced condition: the Deployment carries the operator's manifest and replicas."""
    have = replicas_of(deployment)
    if have != replicas:
        return Check(
            False, ENFORCEMENT_FAILED, f"deployment has {have} replicas, the gate allows {replicas}"
        )
    return Check(True, "Enforced", f"deployment matches the operator's manifest ({have} replicas)")


def bot_status(
    bot: TradingBot,
    decision: GateDecision,
    vpn_check: Check,
    deployment: Body,
    enforced: Check,
    client_id: int,
    now: dt.datetime,
) -> Body:
    """The bot's status from the gate's report and its Deployment as it is. Pure.

    Armed is True only when the gate allows the bot AND the Deployment is enforced:
    status never claims more than what runs."""
    generation = bot.meta.generation
    conditions: list[Condition] = list(bot.status.get("conditions") or [])
    halt = decision.check("Halt")
    conditions = set_condition(
        conditions, "Halted", not halt.ok, halt.reason, halt.message, generation, now
    )
    for type_ in ("Approved", "GatewayReady", "PullSecretReady"):
        conditions = set_check(conditions, type_, decision.check(type_), generation, now)
    conditions = set_check(conditions, "VPNReady", vpn_check, generation, now)
    conditions = set_check(conditions, "Enforced", enforced, generation, now)
    armed = decision.open and enforced.ok
    reason, message = decision.reason, decision.message
    if decision.open and not enforced.ok:
        reason, message = enforced.reason, enforced.message
    conditions = set_condition(conditions, "Armed", armed, reason, message, generation, now)
    ready_replicas = int(deployment.get("status", {}).get("readyReplicas") or 0)
    converged = bool(deployment) and _converged(deployment, decision.replicas)
    dep_name = builders.bot_deployment_name(bot.meta.name)
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
        "replicas": replicas_of(deployment),
        "readyReplicas": ready_replicas,
        "armed": armed,
        "reason": reason,
        "message": message,
        "ibClientId": client_id,
        "deployment": dep_name,
    }


async def fail_closed(ctx: Context, namespace: str, name: str, error: str) -> None:
    """After a failed bot reconcile: lower the Deployment to the gate's floor (0 when
    the floor itself cannot be computed), then say in status what really runs.
    Each step is tried even if the one before failed."""
    metrics.FAIL_CLOSED.inc()
    outcome = Outcome()
    deployment = bot_deployment(ctx, namespace, name)
    try:
        deployment = await lower_to(ctx, deployment, floor_allowance(ctx, namespace, name), outcome)
    except ApiError as err:
        log.error(
            "could not lower bot deployment",
            extra={"bot": f"{namespace}/{name}", "error": str(err)},
        )
    body = ctx.world.get(World.BOTS, (namespace, name))
    if body is None:
        return
    generation = int(body["metadata"].get("generation") or 0)
    now = ctx.clock()
    message = f"reconcile failed: {error}"[:1000]
    conditions: list[Condition] = list((body.get("status") or {}).get("conditions") or [])
    for type_ in ("Enforced", "Armed"):
        conditions = set_condition(
            conditions, type_, False, ENFORCEMENT_FAILED, message, generation, now
        )
    status: Body = {
        **(body.get("status") or {}),
        "conditions": conditions,
        "replicas": replicas_of(deployment),
        "armed": False,
        "reason": ENFORCEMENT_FAILED,
        "message": message,
    }
    try:
        await write_status(ctx, c.KIND_BOT, World.BOTS, body, status, outcome)
    except ApiError as err:
        log.error(
            "could not write fail-closed status",
            extra={"bot": f"{namespace}/{name}", "error": str(err)},
        )


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
    running, ready_replicas = check_gateway_rollout(
        sts, gateway_pods(ctx, namespace, name), gw.trading_mode.value
    )
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
