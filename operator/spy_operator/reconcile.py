"""One level-triggered reconcile per kind: read the world, decide, apply, write status.

The TradingBot's is in reconcile_bot.py; IBGateway's and OptionsDetector's are here,
with what all three share (InvalidSpec status).

Called by the controller's workers for a (kind, namespace, name) key, whatever event
queued it; none of these functions looks at what changed. Each builds the object's
typed view once (api.py), gathers facts once (facts.py), decides through the pure
policies (gate.py and friends), builds manifests (the builders package) and writes through
writes.py. A spec the view refuses sets an InvalidSpec condition (a bot goes to 0) and
is not retried until the object changes.
"""

from __future__ import annotations

import datetime as dt
import logging

from spy_operator import builders, clientids
from spy_operator import constants as c
from spy_operator.api import IBGateway, OptionsDetector, SpecError
from spy_operator.conditions import Check, Condition, set_check, set_condition
from spy_operator.context import Context, Outcome, sooner
from spy_operator.facts import (
    credentials_check,
    first_failing,
    gateway_pods,
    gateway_port_of,
    gateway_view,
    pull_secret_check,
    statefulset_progress,
    vpn_status,
)
from spy_operator.gate import check_gateway_ready
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
