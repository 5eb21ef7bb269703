"""reconcile_tradingbot: the gate decides, the Deployment is lowered first (replicas
only), then the whole manifest is applied and status says what runs; fail_closed is
the path the controller takes when any of that fails. Called by controller.py."""

from __future__ import annotations

import datetime as dt
import logging

from spy_operator import bot_access, builders, clientids, metrics
from spy_operator import constants as c
from spy_operator.api import SpecError, TradingBot
from spy_operator.conditions import Check, Condition, set_check, set_condition
from spy_operator.context import Context, Outcome, sooner
from spy_operator.drift import FOREIGN_CHANGE, check_foreign_change
from spy_operator.enforce import bot_deployment, floor_allowance, lower_to, replicas_of
from spy_operator.facts import VpnFacts, bot_decision, gateway_port_of
from spy_operator.gate import GateDecision
from spy_operator.gate import next_deadline as gate_deadline
from spy_operator.kube import ApiError, object_path
from spy_operator.reconcile import ENFORCEMENT_FAILED, INVALID_SPEC, invalid_spec
from spy_operator.world import Body, World
from spy_operator.writes import apply_child, apply_unwatched, write_status

log = logging.getLogger("spy_operator.reconcile")


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
    if observed is not None and observed["metadata"].get("deletionTimestamp"):
        # Being rebuilt: deleted in the foreground, it disappears only once its pods
        # have terminated, so the new Deployment never runs beside an old bot pod.
        foreign = Check(
            False,
            FOREIGN_CHANGE,
            "the changed deployment is being deleted; it is recreated from the "
            "operator's manifest once its pods have terminated",
        )
    if not foreign.ok:
        decision = GateDecision(0, foreign.reason, foreign.message, decision.checks)
        if observed is not None and not observed["metadata"].get("deletionTimestamp"):
            observed = await _rebuild(ctx, bot, observed, desired, foreign, outcome)
        status = bot_status(bot, decision, vpn.check, observed or {}, foreign, client_id, now)
        await write_status(ctx, c.KIND_BOT, World.BOTS, body, status, outcome)
        outcome.requeue_after = 1.0
        return outcome
    await _run_gated(ctx, bot, body, (decision, vpn, now), observed, desired, client_id, outcome)
    return outcome


async def _run_gated(
    ctx: Context,
    bot: TradingBot,
    body: Body,
    judged: tuple[GateDecision, VpnFacts, dt.datetime],
    observed: Body | None,
    desired: Body,
    client_id: int,
    outcome: Outcome,
) -> None:
    """The Deployment is the operator's own: lower first, the bot's identity, the
    whole manifest, status, and the next wake-up (approval expiry, convergence).
    `judged` is the gate's decision, the VPN facts and the time they were judged at."""
    decision, vpn, now = judged
    _count_hand_scale_up(ctx, bot, observed, decision)
    await lower_to(ctx, observed, decision.replicas, outcome)  # replicas only, first
    for manifest in bot_access.build_bot_access(bot):  # the identity its pod runs as
        await apply_unwatched(ctx, manifest, outcome)
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


async def _rebuild(
    ctx: Context,
    bot: TradingBot,
    observed: Body | None,
    desired: Body,
    foreign: Check,
    outcome: Outcome,
) -> Body | None:
    """Someone else's fields in what the bot runs: lower it to 0 and delete the
    Deployment in the foreground; once it is gone (its pods terminated), a later pass
    recreates it from the operator's manifest alone."""
    metrics.FOREIGN_CHANGES.inc()
    observed = await lower_to(ctx, observed, 0, outcome)
    name = desired["metadata"]["name"]
    await ctx.kube.delete(
        object_path("apps/v1", "Deployment", bot.meta.namespace, name),
        "deployments",
        propagation="Foreground",
    )
    outcome.writes += 1
    ctx.world.forget(World.DEPLOYMENTS, (bot.meta.namespace, name))
    log.warning(
        "foreign change to a bot deployment; rebuilding it",
        extra={"object": f"{bot.meta.namespace}/{bot.meta.name}", "detail": foreign.message},
    )
    return observed


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
    # Approved: a valid, unexpired approval that the webhook recorded and signed.
    approved = decision.check("Approved")
    if approved.ok:
        approved = decision.check("ApprovalRecorded")
    conditions = set_check(conditions, "Approved", approved, generation, now)
    for type_ in ("GatewayReady", "PullSecretReady"):
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
