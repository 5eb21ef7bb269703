"""How fast the operator converges N TradingBots, against a bare client loop (the floor).

For each N: create secrets, N/50 IBGateways and N TradingBots (half armed with an
approval) in a fresh namespace, then measure the time until every child exists and
every status is current:

* floor    - no operator; a plain async client loop writes the same children and
             statuses directly (server-side apply, 8 in flight, no reads), on the same
             control plane, right after the same CRs are created;
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
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from spy_dev.devcluster import ClusterState, DevCluster, client_options, free_port, running
from spy_operator import builders
from spy_operator import constants as c
from spy_operator.api import view

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 8
BOTS_PER_GATEWAY = 50


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def client(state: ClusterState, user: str = "admin") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        **client_options(state, user), timeout=60, limits=httpx.Limits(max_connections=32)
    )


async def bounded(coros: list[Any], limit: int = CONCURRENCY) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(run(co) for co in coros))


def crs(ns: str, n: int) -> list[dict[str, Any]]:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gateways = max(1, n // BOTS_PER_GATEWAY)
    out: list[dict[str, Any]] = []
    for g in range(gateways):
        out.append(
            {
                "apiVersion": c.API_VERSION,
                "kind": "IBGateway",
                "metadata": {"name": f"gw{g}", "namespace": ns},
                "spec": {
                    "tradingMode": "paper",
                    "readOnlyApi": False,
                    "credentialsSecretRef": {"name": "creds"},
                    "imagePullSecrets": [{"name": "pull"}],
                    "image": "spyoptions.azurecr.io/gw:1",
                },
            }
        )
    for i in range(n):
        spec: dict[str, Any] = {
            "image": "spyoptions.azurecr.io/bot:1",
            "gatewayRef": {"name": f"gw{i % gateways}"},
            "imagePullSecrets": [{"name": "pull"}],
            "mode": "paper",
            "armed": i % 2 == 0,
        }
        if i % 2 == 0:
            spec["approval"] = {"approvedBy": "bob", "reason": "bench", "expiresAt": expires}
        out.append(
            {
                "apiVersion": c.API_VERSION,
                "kind": "TradingBot",
                "metadata": {"name": f"bot{i:04d}", "namespace": ns},
                "spec": spec,
            }
        )
    return out


async def setup_namespace(api: httpx.AsyncClient, ns: str) -> None:
    (await api.post("/api/v1/namespaces", json={"metadata": {"name": ns}})).raise_for_status()
    auths = json.dumps({"auths": {"spyoptions.azurecr.io": {"auth": "eDp4"}}})
    for body in (
        {
            "metadata": {"name": "pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": auths},
        },
        {
            "metadata": {"name": "creds"},
            "type": "Opaque",
            "stringData": {"username": "u", "password": "p"},
        },
    ):
        (
            await api.post(
                f"/api/v1/namespaces/{ns}/secrets",
                json={"apiVersion": "v1", "kind": "Secret", **body},
            )
        ).raise_for_status()


async def create_crs(api: httpx.AsyncClient, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def one(obj: dict[str, Any]) -> dict[str, Any]:
        ns = obj["metadata"]["namespace"]
        resp = await api.post(
            f"/apis/{c.API_VERSION}/namespaces/{ns}/{c.PLURAL[obj['kind']]}", json=obj
        )
        resp.raise_for_status()
        created: dict[str, Any] = resp.json()
        return created

    return await bounded([one(o) for o in objs], 16)


async def converged(api: httpx.AsyncClient, ns: str, n: int) -> bool:
    bots = (await api.get(f"/apis/{c.API_VERSION}/namespaces/{ns}/tradingbots")).json()["items"]
    deps = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments")).json()["items"]
    gws = (await api.get(f"/apis/{c.API_VERSION}/namespaces/{ns}/ibgateways")).json()["items"]
    if len(bots) < n or len(deps) < n:
        return False
    replicas = {d["metadata"]["name"]: d["spec"].get("replicas", 0) for d in deps}
    for obj in gws:
        if obj.get("status", {}).get("observedGeneration") != obj["metadata"]["generation"]:
            return False
    for b in bots:
        st = b.get("status", {})
        want = 1 if b["spec"].get("armed") else 0
        if (
            st.get("observedGeneration") != b["metadata"]["generation"]
            or st.get("replicas") != want
        ):
            return False
        if replicas.get(f"{b['metadata']['name']}-bot") != want:
            return False
    return True


async def wait_converged(api: httpx.AsyncClient, ns: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await converged(api, ns, n):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{ns} did not converge in {timeout} s")


# -------------------------------------------------------------------------- floor


async def floor_run(state: ClusterState, n: int) -> float:
    """A bare client loop: the same children and statuses, written directly."""
    ns = f"floor-{n}"
    async with client(state) as api:
        await setup_namespace(api, ns)
        started = time.perf_counter()
        created = await create_crs(api, crs(ns, n))

        async def apply(manifest: dict[str, Any]) -> None:
            meta = manifest["metadata"]
            plural = {
                "Deployment": "deployments",
                "StatefulSet": "statefulsets",
                "Service": "services",
            }[manifest["kind"]]
            prefix = (
                "/api/v1" if manifest["apiVersion"] == "v1" else f"/apis/{manifest['apiVersion']}"
            )
            resp = await api.patch(
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
                await apply(builders.build_bot_deployment(view(obj), want, 1, 4002))
                await status(obj, {"replicas": want, "armed": bool(want), "reason": "Floor"})

        await bounded([child_work(o) for o in created])
        await wait_converged(api, ns, n)
        return time.perf_counter() - started


# ----------------------------------------------------------------------- operator


class Operator:
    def __init__(self, state: ClusterState, ns: str, log_path: Path) -> None:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            KUBECONFIG=str(state.kubeconfig_for(c.MANAGED_BY)),
            SPY_METRICS_ADDR="127.0.0.1",
            SPY_RESYNC_SECONDS="5",
        )
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spy_operator",
                "--namespace",
                ns,
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def sample_rss(self) -> None:
        self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def writes(self) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("spy_operator_api_writes_total{")
                and 'resource="leases"' not in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def leader(self) -> bool:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return False
        return "spy_operator_leader 1.0" in text

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


async def rss_sampler(op: Operator, stop: asyncio.Event) -> None:
    while not stop.is_set():
        op.sample_rss()
        await asyncio.sleep(0.2)


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
            revert_times = await measure_reverts(api, ns, n, reverts)
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
        log("starting a private control plane")
        dev = DevCluster(state_dir)
        state = dev.start()
        subprocess.run(
            [
                str(REPO / ".bin" / "kubectl"),
                f"--kubeconfig={state.kubeconfig}",
                "apply",
                "-f",
                str(REPO / "crds"),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                str(REPO / ".bin" / "kubectl"),
                f"--kubeconfig={state.kubeconfig}",
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
            ],
            check=True,
            capture_output=True,
        )
    else:
        state = existing
    results: dict[str, Any] = {}
    try:
        for n in args.sizes:
            log(f"N={n}: floor (bare client loop)")
            floor = await floor_run(state, n)
            log(f"N={n}: floor {floor:.2f} s; operator")
            op = await operator_run(state, n, args.reverts, state_dir)
            ratio = op["seconds"] / floor
            rev = op["revert_ms"]
            results[str(n)] = {
                "floor_s": round(floor, 3),
                "operator_s": round(op["seconds"], 3),
                "ratio": round(ratio, 2),
                "writes_per_cr": round(op["writes_per_cr"], 2),
                "noop_writes": op["noop_writes"],
                "peak_rss_mb": round(op["peak_rss_mb"], 1),
                "revert_p50_ms": round(pct(rev, 0.5), 1),
                "revert_p99_ms": round(pct(rev, 0.99), 1),
                "revert_samples": len(rev),
            }
            log(f"N={n}: {results[str(n)]}")
    finally:
        if dev is not None:
            dev.stop()
    return results


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
