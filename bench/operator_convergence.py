"""How fast the operator converges N TradingBots, against a bare client loop (the floor).

For each N: create secrets, N/50 IBGateways and N TradingBots (half armed with an
approval) in a fresh namespace, then measure the time until every child exists and
every status is current:

* floor    - no operator; a plain async client loop writes the same children (the
             gateway StatefulSet and Services; each bot's ServiceAccount, Role,
             RoleBinding and Deployment) and statuses directly (server-side apply,
             8 in flight, no reads), on the same control plane, right after the same
             CRs are created;
* operator - `python -m spy_operator` (8 workers) watching that namespace.

Also: API writes per CR (the operator's own counter), writes during a quiet period
(no-op reconciles must write nothing), operator peak RSS, and the time to revert a
hand scale-up of a bot Deployment (p50/p99 over several samples).

    .venv/bin/python bench/operator_convergence.py [--sizes 100 500] [--reverts 40]

Prints a table, then the headline figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from convergence_world import (
    BOTS_PER_GATEWAY,
    Operator,
    bounded,
    client,
    create_crs,
    crs,
    log,
    rss_sampler,
    setup_namespace,
    wait_converged,
)
from spy_dev.devcluster import ClusterState, DevCluster, running
from spy_dev.webhook import WebhookProcess
from spy_operator import bot_access, builders
from spy_operator import constants as c
from spy_operator.api import view

REPO = Path(__file__).resolve().parents[1]
# bench/halt_at_scale.py imports these from here.
__all__ = ["Operator", "client", "create_crs", "crs", "log", "setup_namespace", "wait_converged"]
# -------------------------------------------------------------------------- floor


async def floor_run(state: ClusterState, n: int) -> float:
    """A bare client loop: the same children and statuses, written directly."""
    ns = f"floor-{n}"
    # The floor writes bot Deployments as the operator's identity: the admission
    # policy (deploy/admission) refuses them from anyone else, admins included.
    async with client(state) as api, client(state, c.MANAGED_BY) as writer:
        await setup_namespace(api, ns)
        started = time.perf_counter()
        created = await create_crs(api, crs(ns, n))

        async def apply(manifest: dict[str, Any]) -> None:
            meta = manifest["metadata"]
            plural = {
                "Deployment": "deployments",
                "StatefulSet": "statefulsets",
                "Service": "services",
                "ServiceAccount": "serviceaccounts",
                "Role": "roles",
                "RoleBinding": "rolebindings",
            }[manifest["kind"]]
            prefix = (
                "/api/v1" if manifest["apiVersion"] == "v1" else f"/apis/{manifest['apiVersion']}"
            )
            resp = await writer.patch(
                f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}",
                params={"fieldManager": "floor", "force": "true"},
                content=json.dumps(manifest),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            resp.raise_for_status()

        async def status(obj: dict[str, Any], body: dict[str, Any]) -> None:
            meta = obj["metadata"]
            resp = await api.patch(
                f"/apis/{c.API_VERSION}/namespaces/{ns}/{c.PLURAL[obj['kind']]}/{meta['name']}/status",
                content=json.dumps({"status": {"observedGeneration": meta["generation"], **body}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            resp.raise_for_status()

        async def child_work(obj: dict[str, Any]) -> None:
            if obj["kind"] == "IBGateway":
                await apply(builders.build_gateway_statefulset(view(obj)))
                for svc in builders.build_gateway_services(view(obj)):
                    await apply(svc)
                await status(obj, {"conditions": []})
            else:
                want = 1 if obj["spec"].get("armed") else 0
                for manifest in bot_access.build_bot_access(view(obj)):
                    await apply(manifest)  # the bot's own identity, as the operator writes it
                await apply(builders.build_bot_deployment(view(obj), want, 1, 4002))
                await status(obj, {"replicas": want, "armed": bool(want), "reason": "Floor"})

        await bounded([child_work(o) for o in created])
        await wait_converged(api, ns, n)
        return time.perf_counter() - started


# ----------------------------------------------------------------------- operator


async def operator_run(state: ClusterState, n: int, reverts: int, logs: Path) -> dict[str, Any]:
    ns = f"op-{n}"
    async with client(state) as api:
        await setup_namespace(api, ns)
        op = Operator(state, ns, logs / f"operator-{n}.log")
        stop = asyncio.Event()
        sampler = asyncio.create_task(rss_sampler(op, stop))
        try:
            deadline = time.monotonic() + 60
            while not op.leader() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            started = time.perf_counter()
            await create_crs(api, crs(ns, n))
            await wait_converged(api, ns, n)
            elapsed = time.perf_counter() - started
            writes_after_converge = op.writes()
            # Pods still become Ready after convergence (ready counts are in status), so
            # first wait until the operator has written nothing for 3 s; then a quiet
            # window of two resync periods (5 s each) must write nothing at all.
            settled, quiet_since = op.writes(), time.monotonic()
            while time.monotonic() - quiet_since < 3:
                await asyncio.sleep(0.5)
                now_writes = op.writes()
                if now_writes != settled:
                    settled, quiet_since = now_writes, time.monotonic()
            await asyncio.sleep(11)
            noop_writes = op.writes() - settled
            # Hand scale-ups are refused by the admission policy to anyone but the
            # operator's identities; the second one (spy-operator-2) stands for a
            # scale-up that got through, so the revert path is still timed.
            async with client(state, "spy-operator-2") as rogue:
                revert_times = await measure_reverts(rogue, ns, n, reverts)
            total_writes = op.writes()
        finally:
            stop.set()
            await sampler
            op.stop()
    return {
        "seconds": elapsed,
        "writes_per_cr": writes_after_converge / (n + max(1, n // BOTS_PER_GATEWAY)),
        "writes_total_incl_reverts": total_writes,
        "noop_writes": noop_writes,
        "peak_rss_mb": op.peak_rss / 2**20,
        "revert_ms": revert_times,
    }


async def measure_reverts(api: httpx.AsyncClient, ns: str, n: int, samples: int) -> list[float]:
    """Scale unarmed bots' Deployments to 3 by hand; time until the operator sets 0."""
    out = []
    for k in range(samples):
        name = f"bot{(2 * k + 1) % n:04d}-bot"  # odd bots are not armed
        path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale"
        t0 = time.perf_counter()
        resp = await api.patch(
            path,
            content=json.dumps({"spec": {"replicas": 3}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        resp.raise_for_status()
        while True:
            got = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")).json()
            if got["spec"].get("replicas", 0) == 0:
                break
            if time.perf_counter() - t0 > 30:
                raise TimeoutError(f"scale-up of {name} not reverted in 30 s")
            await asyncio.sleep(0.005)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    existing = running(REPO / ".local") if args.reuse_local else None
    dev = None
    if existing is None:
        dev, state = _private_cluster(state_dir)
    else:
        state = existing
    # The approval webhook records the bench's (GitOps identity) approvals, as in a cluster.
    hook = WebhookProcess(state, state_dir).start()
    results: dict[str, Any] = {}
    try:
        for n in args.sizes:
            log(f"N={n}: floor (bare client loop)")
            floor = await floor_run(state, n)
            log(f"N={n}: floor {floor:.2f} s; operator")
            op = await operator_run(state, n, args.reverts, state_dir)
            results[str(n)] = _row(floor, op)
            log(f"N={n}: {results[str(n)]}")
    finally:
        hook.stop()
        if dev is not None:
            dev.stop()
    return results


def _private_cluster(state_dir: Path) -> tuple[DevCluster, ClusterState]:
    log("starting a private control plane")
    dev = DevCluster(state_dir)
    state = dev.start()
    kubectl = [str(REPO / ".bin" / "kubectl"), f"--kubeconfig={state.kubeconfig}"]
    subprocess.run([*kubectl, "apply", "-f", str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd", "--all"],
        check=True,
        capture_output=True,
    )
    return dev, state


def _row(floor: float, op: dict[str, Any]) -> dict[str, Any]:
    """One size's figures, rounded as the table prints them."""
    rev = op["revert_ms"]
    return {
        "floor_s": round(floor, 3),
        "operator_s": round(op["seconds"], 3),
        "ratio": round(op["seconds"] / floor, 2),
        "writes_per_cr": round(op["writes_per_cr"], 2),
        "noop_writes": op["noop_writes"],
        "peak_rss_mb": round(op["peak_rss_mb"], 1),
        "revert_p50_ms": round(pct(rev, 0.5), 1),
        "revert_p99_ms": round(pct(rev, 0.99), 1),
        "revert_samples": len(rev),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--reverts", type=int, default=40, help="hand scale-up samples per size")
    parser.add_argument(
        "--reuse-local", action="store_true", help="use the cluster of `make cluster`"
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(
        f"{'N':>5} {'floor s':>8} {'operator s':>10} {'ratio':>6} {'writes/CR':>9} {'no-op writes':>12} "
        f"{'RSS MB':>7} {'revert p50 ms':>13} {'p99 ms':>7}"
    )
    for n, r in results.items():
        print(
            f"{n:>5} {r['floor_s']:>8} {r['operator_s']:>10} {r['ratio']:>6} {r['writes_per_cr']:>9} "
            f"{r['noop_writes']:>12} {r['peak_rss_mb']:>7} {r['revert_p50_ms']:>13} {r['revert_p99_ms']:>7}"
        )
    largest = results[str(max(args.sizes))]
    headline = {
        "benchmark": "operator_convergence",
        "sizes": results,
        "ratio_at_max_n": largest["ratio"],
        "noop_writes": sum(r["noop_writes"] for r in results.values()),
        "revert_p99_ms": max(r["revert_p99_ms"] for r in results.values()),
        "goals": {"ratio_at_500": "<= 2", "noop_writes": 0, "revert_p99_ms": "<= 2000"},
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
