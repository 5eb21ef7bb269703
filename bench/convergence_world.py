"""The cluster side of bench/operator_convergence.py (and bench/halt_at_scale.py): N
TradingBots with their gateways and secrets in a namespace, the convergence check, and
the operator run as a process with its metrics and peak RSS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from spy_dev.devcluster import ClusterState, client_options, free_port
from spy_dev.webhook import operator_env
from spy_operator import constants as c

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


def crs(ns: str, n: int, armed_every: int = 2) -> list[dict[str, Any]]:
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
            "armed": i % armed_every == 0,
        }
        if i % armed_every == 0:
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


# ----------------------------------------------------------------------- operator


class Operator:
    def __init__(self, state: ClusterState, ns: str, log_path: Path) -> None:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            KUBECONFIG=str(state.kubeconfig_for(c.MANAGED_BY)),
            SPY_METRICS_ADDR="127.0.0.1",
            SPY_RESYNC_SECONDS="5",
            **operator_env(Path(state.state_dir)),
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
