"""Ingest throughput into Azurite: batched vs single entities, and 20 concurrent writers
through the HTTP API (issue 12, finding 8).

1. Storage layer (spy_backend.storage.TableStore on Azurite): entities/s written as
   entity-group transactions of <= 100 (what ingest does) vs one insert per entity,
   both with 8 requests in flight (the reference, in the same process).
2. HTTP: `--writers` (20) clients each POST batches of `--batch` (10) anomalies to
   `python -m spy_backend` for `--seconds` (60): records/s, request latency p50/p99,
   errors, and the CPU seconds the backend and Azurite processes used meanwhile (the
   backend's share says whether it or the emulator is the floor).
   Goal (issue 12): >= 2,000 records/s with p99 <= 250 ms.

    .venv/bin/python bench/ingest_throughput.py [--writers 20] [--batch 10] [--seconds 60]

`/anomalies` latency over 100k stored rows is bench/query_load.py. The last line
printed is one JSON object with the headline figures.
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
from importlib.metadata import version
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


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def writers(
    url: str, n_writers: int, batch: int, seconds: float, first: int = 0
) -> dict[str, Any]:
    """`n_writers` clients posting `batch`-anomaly batches back to back for `seconds`;
    writer numbers start at `first` (a warm-up uses others: its records must not come
    back as duplicates in the measured run)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stored = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=n_writers, max_keepalive_connections=n_writers)

    async def writer(w: int, http: httpx.AsyncClient) -> None:
        nonlocal stored
        rng = random.Random(w)
        i = 0
        while time.perf_counter() < stop:
            # Distinct timestamps per writer: every record is new (no duplicate shortcut).
            base = END - timedelta(days=1) + timedelta(microseconds=w * 10**9 + i * batch)
            rows = [
                anomaly_row(i * batch + j, base + timedelta(microseconds=j), rng)
                for j in range(batch)
            ]
            i += 1
            t = time.perf_counter()
            try:
                response = await http.post(
                    "/api/v1/ingest", json={"anomalies": rows}, headers=headers
                )
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - t) * 1000)
            if response.status_code == 200:
                stored += response.json()["stored"]
            else:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(writer(w, http) for w in range(first, first + n_writers)))
        elapsed = time.perf_counter() - started
    return {
        "writers": n_writers,
        "batch": batch,
        "seconds": round(elapsed, 1),
        "records_per_s": round(stored / elapsed),
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "errors": errors,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with Azurite() as azurite:
        storage: dict[str, Any] = {}
        if args.entities > 0:  # 0 skips the storage-layer comparison
            storage = await storage_throughput(azurite.connection_string, args.entities)
            print(f"storage: {storage}", flush=True)
        backend = BackendProcess(
            {
                "SPY_BACKEND_ENVIRONMENT": "development",
                "SPY_BACKEND_INGEST_TOKEN": TOKEN,
                "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "SPY_BACKEND_TABLE_PREFIX": "benchw",
                "SPY_BACKEND_STORAGE_TIMEOUT_SECONDS": "30",
            }
        ).start(timeout=180)  # a loaded shared machine imports slowly
        try:
            # Warm: connections, tables, the partition index (writers numbered apart).
            await writers(backend.url, 2, args.batch, 2, first=args.writers)
            cpu0 = cpu_seconds(backend.pid), cpu_seconds(azurite.pid)
            load = await writers(backend.url, args.writers, args.batch, args.seconds)
            cpu1 = cpu_seconds(backend.pid), cpu_seconds(azurite.pid)
        finally:
            backend.stop()
        backend_cpu, azurite_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        load.update(
            backend_cpu_s=round(backend_cpu, 1),
            azurite_cpu_s=round(azurite_cpu, 1),
            backend_cpu_share=round(backend_cpu / max(backend_cpu + azurite_cpu, 1e-9), 2),
        )
        print(f"writers: {load}", flush=True)
    return {"storage": storage, "writers": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=5000, help="for batched vs single")
    parser.add_argument("--writers", type=int, default=20, help="concurrent HTTP writers")
    parser.add_argument("--batch", type=int, default=10, help="anomalies per POST")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the load")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(
        json.dumps(
            {
                "bench": "ingest_throughput",
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "versions": {p: version(p) for p in ("azure-data-tables", "fastapi", "uvicorn")},
                **results["storage"],
                **results["writers"],
            }
        )
    )


if __name__ == "__main__":
    main()
