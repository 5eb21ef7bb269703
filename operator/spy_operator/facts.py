"""Facts a reconcile gathers from the World and turns into checks (pure policies do
the deciding: gate.py, pullsecrets.py, vpn.py, clientids.py)."""

from __future__ import annotations

import time

from spy_operator import builders, clientids, metrics
from spy_operator import constants as c
from spy_operator.conditions import Check
from spy_operator.context import Context, Outcome, ReconcileKey, sooner
from spy_operator.gate import GatewayView, Halt, Mode
from spy_operator.pullsecrets import check_pull_secrets, pull_secret_names
from spy_operator.vpn import check_vpn, gate_view, rtt_changed, vpn_target
from spy_operator.world import Body, World


def vpn_status(
    ctx: Context, key: ReconcileKey, spec: Body, status_old: Body, outcome: Outcome
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
    outcome.requeue_after = sooner(outcome.requeue_after, recheck)
    old_rtt = status_old.get("vpnRttMs")
    rtt = round(result.rtt_ms, 2) if result is not None and result.rtt_ms is not None else None
    report = old_rtt
    now = time.monotonic()
    if rtt_changed(old_rtt, rtt) and (
        old_rtt is None or now - ctx.rtt_reported_at.get(key, -1e9) >= ctx.rtt_report_seconds
    ):
        report = rtt
        ctx.rtt_reported_at[key] = now
    return check, gate_view(target, check), report


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


def gateway_port_of(ctx: Context, namespace: str, name: str) -> int:
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


def credentials_check(ctx: Context, gw: Body) -> Check:
    ref = (gw.get("spec", {}).get("credentialsSecretRef") or {}).get("name")
    facts = ctx.world.secret(gw["metadata"]["namespace"], ref) if ref else None
    if facts is None:
        return Check(False, "CredentialsSecretNotFound", f"Secret {ref!r} not found")
    missing = [k for k in c.CREDENTIAL_KEYS if k not in facts.keys]
    if missing:
        return Check(False, "CredentialsKeyMissing", f"Secret {ref!r} lacks key(s) {missing}")
    return Check(True, "CredentialsPresent", f"Secret {ref!r} has username and password")
