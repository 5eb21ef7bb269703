"""End-to-end latency: detector POST -> backend -> Table Storage (Azurite) -> local hub
-> WebSocket client, at a fixed offered rate (open loop: posts go out on schedule
whether or not earlier ones finished).

Two producer modes per rate: `batched` posts every `--tick-ms` (100 ms) the anomalies
due in that tick, as spy_detector's publisher does; `single` posts each anomaly alone
(the worst case: one HTTP request and one storage write per anomaly).
Processes: Azurite (node), the backend (`python -m spy_backend`), and this client.
Latency = arrival on the WebSocket - start of the anomaly's POST, on one monotonic
clock. Goal: p99 < 100 ms.

    .venv/bin/python bench/e2e_latency.py [--rates 10 100] [--seconds 10] [--tick-ms 100]

The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets
from spy_backend.realtime import SUBPROTOCOL
from spy_dev.azurite import Azurite
from spy_dev.devserver import BackendProcess

TOKEN = "bench-ingest-token-0123456789abcdef"
GOAL_P99_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def payload(i: int, base: datetime) -> dict[str, Any]:
    ts = base + timedelta(microseconds=i)
    return {
        "anomalies": [
            {
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "symbol": "SPY",
                "kind": "iv_residual",
                "severity": "HIGH",
                "score": 4.2,
                "reason": f"bench anomaly {i}",
                "contract": {"expiry": "2026-12-19", "strike": 500.0 + i % 200, "right": "C"},
                "iv": 0.31,
                "fitted_iv": 0.28,
                "k": 0.01,
            }
        ]
    }


async def run_rate(
    url: str, rate: float, seconds: float, base: datetime, tick: float
) -> dict[str, float]:
    """Offer `rate` anomalies/s for `seconds`, posting every `tick` s (>= 1/rate)."""
    count = int(rate * seconds)
    tick = max(tick, 1 / rate)
    per_post = max(1, round(rate * tick))
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        ws_url = (await http.get("/api/v1/negotiate")).json()["url"]
        async with websockets.connect(ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
            await ws.recv()  # connected
            await ws.send(json.dumps({"type": "joinGroup", "group": "SPY", "ackId": 1}))
            assert json.loads(await ws.recv())["success"]

            async def receive() -> None:
                async for raw in ws:
                    now = time.perf_counter()
                    msg = json.loads(raw)
                    if msg.get("type") != "message":
                        continue
                    reason = msg["data"]["data"]["reason"]
                    latencies.append((now - sent_at[reason]) * 1000)
                    if len(latencies) == count:
                        done.set()
                        return

            receiver = asyncio.create_task(receive())
            errors = await _offer(http, rate, count, per_post, base, sent_at)
            await asyncio.wait_for(done.wait(), 30)
            receiver.cancel()
    return {
        "anomalies_per_post": per_post,
        "n": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }


async def _offer(
    http: httpx.AsyncClient,
    rate: float,
    count: int,
    per_post: int,
    base: datetime,
    sent_at: dict[str, float],
) -> int:
    """Post `count` anomalies, `per_post` at a time, on the offered-load schedule;
    record when each was sent; the number of posts not fully stored."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    errors = 0

    async def post(first: int) -> None:
        nonlocal errors
        rows = [payload(i, base)["anomalies"][0] for i in range(first, first + per_post)]
        now = time.perf_counter()
        for row in rows:
            sent_at[row["reason"]] = now
        body = {"anomalies": rows}
        response = await http.post("/api/v1/ingest", json=body, headers=headers)
        if response.status_code != 200 or response.json()["stored"] != len(rows):
            errors += 1

    start = time.perf_counter()
    tasks = []
    for n, first in enumerate(range(0, count, per_post)):
        delay = start + n * per_post / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the offered-load schedule
        tasks.append(asyncio.create_task(post(first)))
    await asyncio.gather(*tasks)
    return errors


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Azurite() as azurite:
        backend = BackendProcess(
            {
                "SPY_BACKEND_ENVIRONMENT": "development",
                "SPY_BACKEND_INGEST_TOKEN": TOKEN,
                "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
            }
        ).start()
        try:
            base = datetime.now(UTC).replace(microsecond=0)
            # Warm up connections, tables and code paths.
            await run_rate(backend.url, 20, 1, base - timedelta(minutes=5), 0)
            n = 0
            for mode, tick in (("batched", args.tick_ms / 1000), ("single", 0.0)):
                for rate in args.rates:
                    n += 1
                    run_base = base + timedelta(seconds=n)  # distinct ids per run
                    stats = await run_rate(backend.url, rate, args.seconds, run_base, tick)
                    results.setdefault(mode, {})[f"{rate:g}"] = stats
                    print(f"{mode} {rate:g}/s: {stats}", flush=True)
        finally:
            backend.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--tick-ms", type=float, default=100, help="batched mode post period")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    batched_p99 = max(r["p99_ms"] for r in results["batched"].values())
    single_p99 = max(r["p99_ms"] for r in results["single"].values())
    summary = {
        "bench": "e2e_latency",
        "seconds_per_rate": args.seconds,
        "tick_ms": args.tick_ms,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **results,
        "goal_p99_ms": GOAL_P99_MS,
        "batched_worst_p99_ms": batched_p99,
        "single_worst_p99_ms": single_p99,
        "batched_meets_goal": batched_p99 < GOAL_P99_MS,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
