"""Ingest throughput into Azurite, batched vs single, and `/anomalies` query latency
with many stored rows.

1. Storage layer (spy_backend.storage.TableStore on Azurite): entities/s written as
   entity-group transactions of <= 100 (what ingest does) vs one insert per entity,
   both with 8 requests in flight.
2. HTTP: entities/s through POST /api/v1/ingest with 1000-anomaly batches.
3. `--rows` anomalies stored (default 100000, over 5 trading days), then `--queries`
   GET /api/v1/anomalies calls (limit 100, random 1-hour windows, a third with a kind
   or severity filter): p50/p99 latency.

    .venv/bin/python bench/ingest_throughput.py [--rows 100000] [--queries 300]

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
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from spy_backend.models import AnomalyCreate, PublicRecord, Resource
from spy_backend.storage import TableStore
from spy_backend.storage.entities import to_entity
from spy_dev.azurite import Azurite
from spy_dev.devserver import BackendProcess

TOKEN = "bench-ingest-token-0123456789abcdef"
KINDS = ["iv_residual", "vol_oi", "volume_z", "parity", "butterfly"]
SEVERITIES = ["LOW", "MEDIUM", "HIGH"]
END = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
DAYS = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def anomaly_row(i: int, ts: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "symbol": "SPY",
        "kind": rng.choice(KINDS),
        "severity": rng.choice(SEVERITIES),
        "score": round(rng.uniform(2, 6), 2),
        "reason": f"bench anomaly {i}",
        "contract": {
            "expiry": "2026-12-19",
            "strike": float(500 + i % 200),
            "right": rng.choice("CP"),
        },
        "iv": 0.3,
        "fitted_iv": 0.28,
        "k": 0.01,
    }


def records(n: int, start: datetime, step: timedelta, seed: int) -> list[PublicRecord]:
    rng = random.Random(seed)
    return [
        AnomalyCreate.model_validate(anomaly_row(i, start + i * step, rng)).public()
        for i in range(n)
    ]


async def storage_throughput(connection_string: str, n: int) -> dict[str, float]:
    store = TableStore(connection_string, "benchw", timeout=30)
    await store.open()
    try:
        warm = records(200, END - timedelta(hours=3), timedelta(milliseconds=1), 0)
        await store.insert_new(Resource.ANOMALY, warm)  # connections, code paths
        batched = records(n, END - timedelta(hours=2), timedelta(milliseconds=1), 1)
        t = time.perf_counter()
        await store.insert_new(Resource.ANOMALY, batched)
        batched_rate = n / (time.perf_counter() - t)

        single = records(n, END - timedelta(hours=1), timedelta(milliseconds=1), 2)
        table = store._table(Resource.ANOMALY)
        gate = asyncio.Semaphore(8)

        async def insert(record: PublicRecord) -> None:
            async with gate:
                await table.create_entity(to_entity(record))

        t = time.perf_counter()
        await asyncio.gather(*(insert(r) for r in single))
        single_rate = n / (time.perf_counter() - t)
    finally:
        await store.close()
    return {
        "entities": n,
        "batched_entities_per_s": round(batched_rate),
        "single_entities_per_s": round(single_rate),
        "speedup": round(batched_rate / single_rate, 2),
    }


async def fill_and_query(url: str, rows: int, queries: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    step = timedelta(days=DAYS) / rows
    start = END - timedelta(days=DAYS)
    rng = random.Random(3)
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        gate = asyncio.Semaphore(4)

        async def post(first: int) -> int:
            body = {
                "anomalies": [
                    anomaly_row(i, start + i * step, rng)
                    for i in range(first, min(rows, first + 1000))
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
        fill_seconds = time.perf_counter() - t
        print(f"stored {stored} rows in {fill_seconds:.1f} s", flush=True)

        latencies: list[float] = []
        returned = 0
        for q in range(queries):
            end = start + timedelta(seconds=rng.uniform(3600, DAYS * 86400))
            params: dict[str, Any] = {
                "start": (end - timedelta(hours=1)).isoformat(),
                "end": end.isoformat(),
                "limit": 100,
            }
            if q % 3 == 1:
                params["kind"] = rng.choice(KINDS)
            elif q % 3 == 2:
                params["severity"] = "HIGH"
            t = time.perf_counter()
            response = await http.get("/api/v1/anomalies", params=params)
            latencies.append((time.perf_counter() - t) * 1000)
            response.raise_for_status()
            returned += len(response.json()["items"])
    return {
        "rows": stored,
        "http_ingest_entities_per_s": round(stored / fill_seconds),
        "queries": queries,
        "mean_items_per_query": round(returned / queries, 1),
        "query_p50_ms": round(statistics.median(latencies), 2),
        "query_p99_ms": round(percentile(latencies, 99), 2),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with Azurite() as azurite:
        storage = await storage_throughput(azurite.connection_string, args.entities)
        print(f"storage: {storage}", flush=True)
        backend = BackendProcess(
            {
                "SPY_BACKEND_ENVIRONMENT": "development",
                "SPY_BACKEND_INGEST_TOKEN": TOKEN,
                "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "SPY_BACKEND_TABLE_PREFIX": "benchq",
                # Azurite (JavaScript, in memory) slows down as a table grows.
                "SPY_BACKEND_STORAGE_TIMEOUT_SECONDS": "30",
            }
        ).start()
        try:
            query = await fill_and_query(backend.url, args.rows, args.queries)
        finally:
            backend.stop()
        print(f"query: {query}", flush=True)
    return {"storage": storage, "query": query}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=5000, help="for batched vs single")
    parser.add_argument("--rows", type=int, default=100_000, help="stored before querying")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(
        json.dumps(
            {
                "bench": "ingest_throughput",
                "load_avg_1m": round(os.getloadavg()[0], 2),
                **results["storage"],
                **results["query"],
            }
        )
    )


if __name__ == "__main__":
    main()
