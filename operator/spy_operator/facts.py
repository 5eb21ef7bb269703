"""Facts a reconcile gathers from the World and turns into checks (pure policies do
the deciding: gate.py, pullsecrets.py, vpn.py, clientids.py). Called by reconcile.py
and the controller; every function reads typed views (api.py), never raw specs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spy_operator import clientids, metrics
from spy_operator import constants as c
from spy_operator.api import IBGateway, SpecError, TradingBot, gateway_ref
from spy_operator.conditions import Check
from spy_operator.context import Context, Outcome, ReconcileKey, sooner
from spy_operator.crd_defaults import DEFAULTS
from spy_operator.gate import GateDecision, GateInput, GatewayView, Halt, evaluate_gate
from spy_operator.pods import GatewayPod
from spy_operator.pullsecrets import check_pull_secrets
from spy_operator.vpn import VpnTarget, check_vpn, gate_view, rtt_changed
from spy_operator.world import Body, World


@dataclass(frozen=True)
class VpnFacts:
    check: Check  # the VPNReady condition: what the probe saw
    gate: Check  # what the gate sees (a probe that is not required always passes)
    rtt_ms: float | None  # what to report in status.vpnRttMs


def vpn_status(
    ctx: Context,
    key: ReconcileKey,
    target: VpnTarget | None,
    status_old: Mapping[str, Any],
    outcome: Outcome,
) -> VpnFacts:
    """The VPN facts of an object with an optional probe `target`."""
    if target is None:
        none = check_vpn(None, None)
        return VpnFacts(none, none, None)
    result = ctx.prober.result(target)
    check = check_vpn(target, result)
    # Keep probing while anything refers to the target, so a tunnel going down or
    # coming back is noticed without an event.
    recheck = ctx.vpn_recheck_seconds if result is not None else 0.5  # first probe running
    outcome.requeue_after = sooner(outcome.requeue_after, recheck)
    old_rtt = status_old.get("vpnRttMs")
    rtt = round(result.rtt_ms, 2) if result is not None and result.rtt_ms is not None else None
    report = old_rtt
    now = ctx.monotonic()
    if rtt_changed(old_rtt, rtt) and (
        old_rtt is None or now - ctx.rtt_reported_at.get(key, -1e9) >= ctx.rtt_report_seconds
    ):
        report = rtt
        ctx.rtt_reported_at[key] = now
    return VpnFacts(check, gate_view(target, check), report)


def pull_secret_check(ctx: Context, namespace: str, image: str, names: tuple[str, ...]) -> Check:
    facts = ctx.world.secrets_in(namespace, list(names))
    return check_pull_secrets(image, list(names), facts)


def gateway_body(ctx: Context, namespace: str, name: str) -> Body | None:
    gw = ctx.world.get(World.GATEWAYS, (namespace, name))
    if gw is None or gw.get("metadata", {}).get("deletionTimestamp"):
        return None
    return gw


def gateway_view(ctx: Context, namespace: str, name: str) -> GatewayView:
    """What a consumer's policies need of the referenced IBGateway."""
    body = gateway_body(ctx, namespace, name)
    if body is None:
        return GatewayView(name=name, exists=False)
    try:
        gw = IBGateway.from_body(body)
    except SpecError as err:
        return GatewayView(name=name, exists=True, ready=False, not_ready=str(err))
    ready = (
        any(
            cond.get("type") == "Ready" and cond.get("status") == "True"
            for cond in gw.status.get("conditions") or []
        )
        and gw.status.get("observedGeneration") == gw.meta.generation
    )
    not_ready = "" if ready else "its Ready condition is not True for its current generation"
    # Trust what runs: the gateway's status can lag a pod that still runs another mode.
    for pod in gateway_pods(ctx, namespace, name):
        if pod.mode != gw.trading_mode.value:
            ready = False
            not_ready = f"pod {pod.name} runs TRADING_MODE={pod.mode or '?'}"
    return GatewayView(
        name=name,
        exists=True,
        ready=ready,
        trading_mode=gw.trading_mode,
        read_only=gw.read_only_api,
        not_ready=not_ready,
    )


def gateway_pods(ctx: Context, namespace: str, name: str) -> list[GatewayPod]:
    pods: list[GatewayPod] = list(ctx.world.all_of(World.GATEWAY_PODS, (namespace, name)))
    return pods


def bot_decision(
    ctx: Context, bot: TradingBot, now: dt.datetime, outcome: Outcome
) -> tuple[GateDecision, VpnFacts]:
    """Gather what the gate needs for `bot` and evaluate it (one pass, one read each)."""
    vpn = vpn_status(ctx, bot.meta.key, bot.vpn, bot.status, outcome)
    ns = bot.meta.namespace
    decision = evaluate_gate(
        GateInput.for_bot(
            bot,
            gateway=gateway_view(ctx, ns, bot.gateway),
            pull_secrets=pull_secret_check(ctx, ns, bot.image, bot.pull_secrets),
            vpn=vpn.gate,
            halt=halt_state(ctx),
            now=now,
        )
    )
    return decision, vpn


def gateway_port_of(ctx: Context, namespace: str, name: str) -> int:
    body = gateway_body(ctx, namespace, name)
    try:
        if body is not None:
            return IBGateway.from_body(body).api_port
    except SpecError:
        pass  # a malformed gateway is reported by its own reconcile; use the default
    port: int = DEFAULTS[c.KIND_GATEWAY]["spec.apiPort"]
    return port


def halt_state(ctx: Context) -> Halt:
    cm = ctx.world.halt()
    metrics.HALTED.set(1 if cm else 0)
    if cm is None:
        return Halt(False)
    data = cm.get("data") or {}
    why = data.get("reason") or "no reason given"
    return Halt(True, f"global halt ConfigMap {c.HALT_CONFIGMAP} is set: {why}")


def id_count(kind: str, obj: Body) -> int:
    """How many IB client ids a consumer needs: 1 for a bot, one per detector shard."""
    if kind == c.KIND_BOT:
        return 1
    shards = (obj.get("spec") or {}).get("shards", DEFAULTS[c.KIND_DETECTOR]["spec.shards"])
    try:
        return max(1, int(shards))
    except (TypeError, ValueError):
        return 1  # one malformed detector must not stop every bot's reconcile


def consumers(world: World) -> list[clientids.Consumer]:
    out = []
    for kind, index in ((c.KIND_BOT, World.BOTS), (c.KIND_DETECTOR, World.DETECTORS)):
        for obj in world.values(index):
            meta = obj["metadata"]
            gw = gateway_ref(obj)
            if not gw:
                continue
            out.append(
                clientids.Consumer(
                    kind,
                    meta["namespace"],
                    meta["name"],
                    gw,
                    meta.get("creationTimestamp", ""),
                    id_count(kind, obj),
                )
            )
    return out


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


def credentials_check(ctx: Context, gw: IBGateway) -> Check:
    ref = gw.credentials_secret
    facts = ctx.world.secret(gw.meta.namespace, ref)
    if facts is None:
        return Check(False, "CredentialsSecretNotFound", f"Secret {ref!r} not found")
    missing = [k for k in c.CREDENTIAL_KEYS if k not in facts.keys]
    if missing:
        return Check(False, "CredentialsKeyMissing", f"Secret {ref!r} lacks key(s) {missing}")
    return Check(True, "CredentialsPresent", f"Secret {ref!r} has username and password")
