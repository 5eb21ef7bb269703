"""Facts of running IB Gateway pods, kept in the operator's cache (handlers.py) instead
of whole pods: which gateway, which revision, which TRADING_MODE the container really
has, and whether it is ready. Pure; read by facts.gateway_view and the gateway's Ready
condition (the gate trusts what runs, not only the spec)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spy_operator import constants as c
from spy_operator.conditions import Check

REVISION_LABEL = "controller-revision-hash"


@dataclass(frozen=True)
class GatewayPod:
    name: str
    gateway: str
    revision: str
    mode: str  # TRADING_MODE of the ib-gateway container ("" when absent)
    ready: bool
    deleting: bool


def gateway_pod_facts(pod: Mapping[str, Any]) -> GatewayPod:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    mode = ""
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") != "ib-gateway":
            continue
        for env in container.get("env") or []:
            if env.get("name") == "TRADING_MODE":
                mode = str(env.get("value") or "")
    ready = any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (pod.get("status") or {}).get("conditions") or []
    )
    return GatewayPod(
        name=str(meta.get("name") or ""),
        gateway=str(labels.get(c.LABEL_INSTANCE) or ""),
        revision=str(labels.get(REVISION_LABEL) or ""),
        mode=mode,
        ready=ready,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def check_gateway_rollout(
    sts: Mapping[str, Any], pods: list[GatewayPod], mode: str
) -> tuple[Check, int]:
    """The gateway's running check: its StatefulSet has rolled out the current
    revision (current == update revision, all replicas updated and ready) and every
    pod that still exists, terminating ones included, runs that revision in `mode`.
    Returns the check and the ready replicas."""
    name = sts.get("metadata", {}).get("name", "")
    status = sts.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    if status.get("observedGeneration") != sts.get("metadata", {}).get("generation"):
        return Check(False, "GatewayStarting", f"statefulset {name} not yet observed"), ready
    update = str(status.get("updateRevision") or "")
    current = str(status.get("currentRevision") or "")
    updated = int(status.get("updatedReplicas") or 0)
    if not update or current != update or updated != 1:
        return (
            Check(
                False,
                "GatewayRollingOut",
                f"statefulset {name} is rolling out: {updated}/1 replicas at revision "
                f"{update or '?'} (current {current or '?'})",
            ),
            ready,
        )
    outdated = [p for p in pods if p.mode != mode or p.revision != update]
    if outdated:
        pod = outdated[0]
        return (
            Check(
                False,
                "GatewayPodOutdated",
                f"pod {pod.name} runs TRADING_MODE={pod.mode or '?'} at revision "
                f"{pod.revision or '?'}; want {mode} at {update}",
            ),
            ready,
        )
    if ready != 1 or not any(p.ready and not p.deleting for p in pods):
        return Check(False, "GatewayStarting", f"statefulset {name} has {ready}/1 ready"), ready
    return Check(True, "GatewayRunning", f"statefulset {name} has 1/1 ready replicas"), ready
