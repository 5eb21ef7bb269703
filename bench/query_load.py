"""`/api/v1/anomalies` latency with many stored rows under concurrent clients (issue 12,
finding 5): `--rows` anomalies (default 100,000, over 5 trading days) are stored through
the ingest API, then `--clients` (8) clients each run `--queries` GETs back to back
(limit 100, random 1-hour windows; a third with a kind filter, a third with a severity
filter, and one in ten the expensive shape the attack used: 12 expiries over 30 days).
Reported: p50/p99 per shape and overall, and /healthz latency measured meanwhile (the
attack pushed it from 2.6 ms to 950 ms). The reference in the same process is a single
client's p50 before the concurrent run.

    .venv/bin/python bench/query_load.py [--rows 100000] [--clients 8] [--queries 50]

The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import httpx
from ingest_throughput import END, KINDS, TOKEN, anomaly_row, percentile
from spy_dev.azurite import Azurite
from spy_dev.devserver import BackendProcess

DAYS = 5


async def fill(http: httpx.AsyncClient, rows: int) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    step = timedelta(days=DAYS) / rows
    start = END - timedelta(days=DAYS)
    rng = random.Random(3)
    gate = asyncio.Semaphore(4)

    async def post(first: int) -> int:
        body = {
            "anomalies": [
                anomaly_row(i, start + i * step, rng) for i in range(first, min(rows, first + 1000))
            ]
        }
        for _ in range(10):  # retry a 503 like the detector does
            async with gate:
                response = await http.post("/api/v1/ingest", json=body, headers=headers)
            if response.status_code != 503:
                break
        response.raise_for_status()
        stored: int = response.json()["stored"] + response.json()["duplicate"]
        return stored

    t = time.perf_counter()
    stored = sum(await asyncio.gather(*(post(f) for f in range(0, rows, 1000))))
    return stored, time.perf_counter() - t


def query_params(q: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    start = END - timedelta(days=DAYS)
    end = start + timedelta(seconds=rng.uniform(3600, DAYS * 86400))
    params: dict[str, Any] = {
        "start": (end - timedelta(hours=1)).isoformat(),
        "end": end.isoformat(),
        "limit": 100,
    }
    if q % 10 == 9:
        params["start"] = (end - timedelta(days=30)).isoformat()
        params["expiry"] = [f"2027-01-{d:02d}" for d in range(1, 12)] + ["2026-12-19"]
        return "wide_12_expiries", params
    if q % 3 == 1:
        params["kind"] = rng.choice(KINDS)
        return "kind", params
    if q % 3 == 2:
        params["severity"] = "HIGH"
        return "severity", params
    return "plain", params


async def run_clients(http: httpx.AsyncClient, clients: int, queries: int) -> dict[str, Any]:
    by_shape: dict[str, list[float]] = {}
    health: list[float] = []
    done = asyncio.Event()

    async def client(c: int) -> None:
        rng = random.Random(100 + c)
        for q in range(queries):
            shape, params = query_params(q, rng)
            t = time.perf_counter()
            response = await http.get("/api/v1/anomalies", params=params)
            by_shape.setdefault(shape, []).append((time.perf_counter() - t) * 1000)
            response.raise_for_status()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            (await http.get("/healthz")).raise_for_status()
            health.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.2)

    prober = asyncio.create_task(probe())
    await asyncio.gather(*(client(c) for c in range(clients)))
    done.set()
    await prober
    every = [v for values in by_shape.values() for v in values]
    return {
        "clients": clients,
        "queries": len(every),
        "p50_ms": round(statistics.median(every), 1),
        "p99_ms": round(percentile(every, 99), 1),
        "by_shape_p99_ms": {k: round(percentile(v, 99), 1) for k, v in sorted(by_shape.items())},
        "healthz_p50_ms": round(statistics.median(health), 1) if health else None,
        "healthz_max_ms": round(max(health), 1) if health else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with Azurite() as azurite:
        backend = BackendProcess(
            {
                "SPY_BACKEND_ENVIRONMENT": "development",
                "SPY_BACKEND_INGEST_TOKEN": TOKEN,
                "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "SPY_BACKEND_TABLE_PREFIX": "benchq",
                "SPY_BACKEND_STORAGE_TIMEOUT_SECONDS": "30",
                "SPY_BACKEND_QUERY_RATE_PER_SECOND": "0",  # 8 clients from one address
            }
        ).start(timeout=180)
        try:
            limits = httpx.Limits(max_connections=args.clients + 2)
            async with httpx.AsyncClient(base_url=backend.url, timeout=600, limits=limits) as http:
                stored, seconds = await fill(http, args.rows)
                print(f"stored {stored} rows in {seconds:.1f} s", flush=True)
                single = await run_clients(http, 1, args.queries)
                print(f"one client: {single}", flush=True)
                loaded = await run_clients(http, args.clients, args.queries)
                print(f"{args.clients} clients: {loaded}", flush=True)
        finally:
            backend.stop()
    return {
        "rows": stored,
        "fill_records_per_s": round(stored / seconds),
        "single_client_p50_ms": single["p50_ms"],
        **loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="stored before querying")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=50, help="per client")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(
        json.dumps(
            {
                "bench": "query_load",
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "versions": {p: version(p) for p in ("azure-data-tables", "fastapi", "uvicorn")},
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
