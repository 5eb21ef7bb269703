"""How fast a global halt stops N armed bots, against a bare client loop (the floor).

Creates N armed TradingBots (and N/50 paper gateways) in a fresh namespace on a private
local control plane, waits until the operator runs every bot Deployment at 1, then
creates the halt ConfigMap and follows a watch of the bot Deployments until every
spec.replicas is 0:

* operator - `python -m spy_operator` reacting to the halt (issue 8: all bots at 0
             within 2 s at N=1000);
* floor    - a plain async client lowering the same N Deployments through /scale with
             32 requests in flight, started the same way from the same state (the
             operator is stopped for it), in the same process.

    .venv/bin/python bench/halt_at_scale.py [--bots 1000] [--runs 3]

Prints one line per run and the headline (medians) as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from operator_convergence import (
    Operator,
    client,
    create_crs,
    crs,
    log,
    setup_namespace,
    wait_converged,
)
from spy_dev.devcluster import ClusterState, DevCluster
from spy_dev.webhook import WebhookProcess
from spy_operator import constants as c

BOT_LABEL = f"{c.LABEL_COMPONENT}=trading-bot"
HALT_PATH = f"/api/v1/namespaces/{c.DEFAULT_OPERATOR_NAMESPACE}/configmaps"


async def deployments(api: httpx.AsyncClient, ns: str) -> tuple[dict[str, int], str]:
    resp = await api.get(
        f"/apis/apps/v1/namespaces/{ns}/deployments", params={"labelSelector": BOT_LABEL}
    )
    resp.raise_for_status()
    body = resp.json()
    replicas = {d["metadata"]["name"]: int(d["spec"].get("replicas", 0)) for d in body["items"]}
    return replicas, body["metadata"]["resourceVersion"]


async def until_all_zero(
    api: httpx.AsyncClient, ns: str, replicas: dict[str, int], version: str, t0: float
) -> float:
    """Follow a watch from `version` until every Deployment is at 0; seconds since t0."""
    running = {name for name, r in replicas.items() if r > 0}
    while running:
        async with api.stream(
            "GET",
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            params={
                "labelSelector": BOT_LABEL,
                "watch": "1",
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
            },
            timeout=httpx.Timeout(60, read=60),
        ) as resp:
            async for line in resp.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                obj = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    name = obj["metadata"]["name"]
                    if int(obj["spec"].get("replicas", 0)) == 0:
                        running.discard(name)
                    else:
                        running.add(name)
                if not running:
                    break
    return time.perf_counter() - t0


async def halt(api: httpx.AsyncClient) -> float:
    body = {"metadata": {"name": c.HALT_CONFIGMAP}, "data": {"reason": "bench"}}
    t0 = time.perf_counter()
    (await api.post(HALT_PATH, json=body)).raise_for_status()
    return t0


async def unhalt(api: httpx.AsyncClient) -> None:
    await api.delete(f"{HALT_PATH}/{c.HALT_CONFIGMAP}")


async def floor_lower(api: httpx.AsyncClient, ns: str, names: list[str]) -> None:
    sem = asyncio.Semaphore(32)

    async def one(name: str) -> None:
        async with sem:
            resp = await api.patch(
                f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
                content=json.dumps({"spec": {"replicas": 0}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            resp.raise_for_status()

    await asyncio.gather(*(one(n) for n in names))


async def raise_all(api: httpx.AsyncClient, ns: str, names: list[str]) -> None:
    sem = asyncio.Semaphore(32)

    async def one(name: str) -> None:
        async with sem:
            await api.patch(
                f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
                content=json.dumps({"spec": {"replicas": 1}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )

    await asyncio.gather(*(one(n) for n in names))


async def run(state: ClusterState, bots: int, runs: int, logs: Path) -> list[dict[str, Any]]:
    ns = f"halt-{bots}"
    results = []
    # Raising bot replicas by hand is refused by the admission policy to anyone but
    # the operator's identity, so the floor's client is that identity; the armed bots
    # are created by the dev cluster's GitOps identity (admin), the one writer the
    # approval webhook lets carry an approval it did not write itself.
    async with client(state, c.MANAGED_BY) as api, client(state) as gitops:
        await setup_namespace(gitops, ns)
        await unhalt(api)
        op = Operator(state, ns, logs / "operator.log")
        try:
            log(f"creating {bots} armed bots")
            await create_crs(gitops, crs(ns, bots, armed_every=1))
            await wait_converged(api, ns, bots, timeout=1200)
            for i in range(runs):
                replicas, version = await deployments(api, ns)
                assert all(r == 1 for r in replicas.values()), "every bot runs before the halt"
                t0 = await halt(api)
                operator_s = await until_all_zero(api, ns, replicas, version, t0)
                await unhalt(api)
                await wait_converged(api, ns, bots, timeout=600)
                # The floor: the same Deployments, lowered by a bare client, operator off.
                op.stop()
                replicas, version = await deployments(api, ns)
                names = sorted(replicas)
                t0 = time.perf_counter()
                lowering = asyncio.create_task(floor_lower(api, ns, names))
                floor_s = await until_all_zero(api, ns, replicas, version, t0)
                await lowering
                await raise_all(api, ns, names)
                op = Operator(state, ns, logs / f"operator-{i}.log")
                await wait_converged(api, ns, bots, timeout=600)
                row = {
                    "operator_s": round(operator_s, 3),
                    "floor_s": round(floor_s, 3),
                    "ratio": round(operator_s / floor_s, 2),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                }
                log(f"run {i + 1}/{runs}: {row}")
                results.append(row)
        finally:
            op.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="bench-halt-"))
    dev = DevCluster(state_dir)
    state = dev.start()
    hook = WebhookProcess(state, state_dir).start()
    try:
        rows = asyncio.run(run(state, args.bots, args.runs, state_dir))
    finally:
        hook.stop()
        dev.stop()
    for row in rows:
        print(row)
    headline = {
        "benchmark": "halt_at_scale",
        "bots": args.bots,
        "runs": len(rows),
        "operator_s_median": statistics.median(r["operator_s"] for r in rows),
        "floor_s_median": statistics.median(r["floor_s"] for r in rows),
        "ratio_median": statistics.median(r["ratio"] for r in rows),
        "load_avg_1m": [r["load_avg_1m"] for r in rows],
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "goal": {"operator_s_at_1000": "<= 2"},
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
