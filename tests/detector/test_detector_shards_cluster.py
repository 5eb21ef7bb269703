"""Three detector shards add up to one, on the real control plane and backend (issue 11).

The operator (real, `python -m spy_operator`) builds the OptionsDetector's StatefulSet
with 3 shards; KWOK pods run nothing, so each shard runs as a local process
(`python -m spy_detector run`) with the environment the operator put in the pod
template, the ordinal as SPY_SHARD_INDEX (the pod-index label), and a replay of one
recorded session instead of the gateway (same snapshots, same timestamps, for every
shard). A fourth process replays the same session as one shard under another symbol.
The backend is the real app on Azurite (spy_dev.devserver). /gex and /flow must give
the same net GEX, per-strike GEX, flip and flow for both.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import OperatorProcess, paper_world
from spy_analytics import AnomalyKind, write_snapshot
from spy_analytics.synthetic import SyntheticConfig, SyntheticMarket
from spy_dev.azurite import AzuriteError
from spy_dev.devcluster import free_port
from spy_dev.devserver import DevStack, start_dev_stack

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
SHARDS = 3
START = datetime(2026, 11, 24, 15, tzinfo=UTC)
DAY = {"start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z"}


@pytest.fixture
def operator(cluster: Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, tmp_path)
    op.start()
    yield op
    op.stop()


@pytest.fixture
def backend() -> Iterator[DevStack]:
    try:
        stack = start_dev_stack(dashboard_dir=None)
    except AzuriteError as exc:
        pytest.fail(f"Azurite could not start: {exc}", pytrace=False)
    yield stack
    stack.stop()


def record_session(path: Path, symbol: str, steps: int = 3) -> Path:
    """A seeded synthetic session with every kind injected (flow needs two snapshots)."""
    config = dataclasses.replace(SyntheticConfig(), start=START, interval_s=60.0)
    market = SyntheticMarket(5, config)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(steps):
            snap = market.next_snapshot(dict.fromkeys(AnomalyKind, 1)).snapshot
            write_snapshot(fh, dataclasses.replace(snap, symbol=symbol))
    return path


def detector_env(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """The detector container's environment from the StatefulSet the operator built,
    with the secret reference resolved; SPY_SHARD_INDEX comes from the pod ordinal."""
    sts = wait_for(
        "detector StatefulSet with 3 replicas",
        lambda: (
            (s := kubectl.get("statefulset", "spy-detector", namespace))
            and s["spec"]["replicas"] == SHARDS
            and s
        ),
        60,
    )
    env: dict[str, str] = {}
    for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif ref := e.get("valueFrom", {}).get("secretKeyRef"):
            secret = kubectl.get("secret", ref["name"], namespace)
            env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    assert env["SPY_SHARD_COUNT"] == str(SHARDS)
    return env


async def run_detectors(runs: list[dict[str, str]], log_dir: Path) -> None:
    procs = []
    for i, overrides in enumerate(runs):
        env = {**os.environ, **overrides, "SPY_HTTP_HOST": "127.0.0.1"}
        env["SPY_HTTP_PORT"] = str(free_port())
        argv = [sys.executable, "-m", "spy_detector", "run"]
        log = (log_dir / f"d{i}.log").open("wb")
        devnull = asyncio.subprocess.DEVNULL
        procs.append(
            await asyncio.create_subprocess_exec(*argv, env=env, stdout=devnull, stderr=log)
        )
    codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 240)
    logs = {i: (log_dir / f"d{i}.log").read_text()[-2000:] for i in range(len(runs))}
    assert codes == [0] * len(runs), logs


def latest(url: str, resource: str, symbol: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{url}/api/v1/{resource}", params={**DAY, "symbol": symbol, "limit": 10}, timeout=10
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def records(url: str, resource: str, symbol: str, n: int = 3) -> list[dict[str, Any]]:
    """The ``n`` records of the session (the detectors have exited: they are stored)."""
    return wait_for(
        f"{n} {resource} records of {symbol}",
        lambda: (items := latest(url, resource, symbol)) and len(items) == n and items,
        30,
    )


async def test_three_shards_publish_the_one_shard_gex_flip_and_flow(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, backend: DevStack, tmp_path: Path
) -> None:
    paper_world(kubectl, namespace)
    kubectl("create", "secret", "generic", "backend-ingest", "-n", namespace,
            f"--from-literal=token={backend.ingest_token}")  # fmt: skip
    kubectl.apply(
        {
            "apiVersion": "spyoptions.io/v1alpha1",
            "kind": "OptionsDetector",
            "metadata": {"name": "spy"},
            "spec": {
                "image": "spyoptions.azurecr.io/spy-detector:0.1.0",
                "imagePullSecrets": [{"name": "acr-pull"}],
                "gatewayRef": {"name": "gw"},
                "symbol": "SPY",
                "shards": SHARDS,
                "backend": {
                    "url": backend.url,
                    "tokenSecretRef": {"name": "backend-ingest", "key": "token"},
                },
            },
        },
        namespace,
    )
    env = detector_env(kubectl, namespace)
    assert env["SPY_BACKEND_URL"] == backend.url
    replay = {"SPY_SOURCE": "replay"}  # the gateway's Service does not resolve here
    sharded = record_session(tmp_path / "spy.jsonl", "SPY")
    whole = record_session(tmp_path / "one.jsonl", "ONE")
    runs = [
        {**env, **replay, "SPY_REPLAY_FILE": str(sharded), "SPY_SHARD_INDEX": str(i)}
        for i in range(SHARDS)
    ]
    one_shard = {"SPY_SHARD_COUNT": "1", "SPY_SHARD_INDEX": "0"}
    runs.append({**env, **replay, "SPY_REPLAY_FILE": str(whole), **one_shard})
    await run_detectors(runs, tmp_path)

    gex = records(backend.url, "gex", "SPY")
    want = records(backend.url, "gex", "ONE")
    assert [g["ts"] for g in gex] == [w["ts"] for w in want]
    for got, exp in zip(gex, want, strict=True):
        assert got["strikes"] == exp["strikes"]
        assert got["gex"] == pytest.approx(exp["gex"], rel=1e-9, abs=1e-3)
        assert got["net_gex"] == pytest.approx(exp["net_gex"], rel=1e-9)
        assert exp["flip"] is not None
        assert got["flip"] == pytest.approx(exp["flip"], rel=1e-9)
    flow = records(backend.url, "flow", "SPY")
    want_flow = records(backend.url, "flow", "ONE")
    for got, exp in zip(flow, want_flow, strict=True):
        for key in ("call_premium", "put_premium", "net_premium", "put_call_volume_ratio"):
            assert got[key] == pytest.approx(exp[key], rel=1e-9), key
