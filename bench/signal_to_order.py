"""Signal to order: p50/p99 from the detector's publish to the bot's order reaching the
(fake) IB Gateway. Goal: p99 < 50 ms.

Path measured: spy_detector's Publisher.submit() -> POST /api/v1/ingest -> Table Storage
(Azurite) -> local realtime hub -> WebSocket -> `python -m spy_bot run` (strategy, leg
quotes, positions, risk engine, what-if, GET of its own TradingBot on the real
kube-apiserver) -> placeOrder at spy_dev.fake_tws (the real TWS wire protocol; IB
Gateway cannot run here). Reference in the same process: a plain WebSocket subscriber
on the same hub group, so the bot's own share (hub -> order) is reported beside the
whole path. The TradingBot's status is written as the operator writes it (the operator
itself is not on this path).

Processes: Azurite (node), the backend (`python -m spy_backend`), etcd +
kube-apiserver (spy_dev.devcluster), the bot, and this process (publisher, fake TWS,
reference subscriber) -- all on one noisy shared machine: read medians of runs.

    .venv/bin/python bench/signal_to_order.py [--runs 3] [--signals 100] [--interval-ms 250]

The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import websockets
from signal_to_order_world import NAME, NS, anomaly, armed_tradingbot, bot_env, wait_ready
from spy_bot.broker import order_ref
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher
from spy_dev.azurite import Azurite
from spy_dev.devcluster import DevCluster
from spy_dev.devserver import BackendProcess
from spy_dev.fake_tws import FakeChain, FakeTWS
from spy_dev.fake_tws_orders import FakeOrder

TOKEN = "bench-ingest-token-0123456789abcdef"
GOAL_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(
    publisher: Publisher, tws: FakeTWS, backend_url: str, n: int, interval: float, base: datetime
) -> dict[str, Any]:
    sent: dict[str, float] = {}
    hub: dict[str, float] = {}
    orders: dict[str, float] = {}
    refs = {}
    records = [anomaly(tws.chain, i, base + timedelta(milliseconds=i)) for i in range(n)]
    for r in records:
        refs[order_ref(f"{NS}/{NAME}", r["id"])] = r["id"]

    def on_order(o: FakeOrder) -> None:
        if o.order_ref in refs:
            orders[refs[o.order_ref]] = o.received_at

    tws.on_order.append(on_order)
    async with httpx.AsyncClient(base_url=backend_url, timeout=30) as http:
        url = (await http.get("/api/v1/negotiate")).json()["url"]
    async with websockets.connect(url, subprotocols=["json.webpubsub.azure.v1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "joinGroup", "group": "SPY", "ackId": 1}))

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "message":
                    hub.setdefault(msg["data"]["data"]["id"], time.monotonic())

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(0.3)
        start = time.monotonic()
        for i, r in enumerate(records):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[r["id"]] = time.monotonic()
            publisher.submit({"anomalies": [r]})
        deadline = time.monotonic() + 30
        while len(orders) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        receiver.cancel()
    tws.on_order.remove(on_order)
    if not orders:
        raise RuntimeError(
            f"no order reached the gateway ({len(hub)} of {n} signals reached the hub)"
        )
    total = [(orders[i] - sent[i]) * 1000 for i in orders]
    bot_part = [(orders[i] - hub[i]) * 1000 for i in orders if i in hub]
    hub_part = [(hub[i] - sent[i]) * 1000 for i in hub if i in sent]
    return {
        "n": n,
        "orders": len(orders),
        "p50_ms": round(statistics.median(total), 2),
        "p99_ms": round(percentile(total, 99), 2),
        "max_ms": round(max(total), 2),
        "publish_to_hub_p50_ms": round(statistics.median(hub_part), 2),
        "publish_to_hub_p99_ms": round(percentile(hub_part, 99), 2),
        "hub_to_order_p50_ms": round(statistics.median(bot_part), 2),
        "hub_to_order_p99_ms": round(percentile(bot_part, 99), 2),
    }


def _stage_medians(audit: Path, last: int) -> dict[str, float]:
    """Median latency of each bot stage over the last `last` orders of the audit file."""
    stages = [
        json.loads(x)["latency_ms"]
        for x in audit.read_text().splitlines()
        if '"event":"order"' in x
    ]
    return {k: round(statistics.median(s[k] for s in stages[-last:]), 2) for k in stages[-1]}


def _print_decisions(audit: Path) -> None:
    """Why the bot did not order: its decisions by reason and its last audit lines."""
    lines = [json.loads(x) for x in audit.read_text().splitlines()] if audit.exists() else []
    reasons: dict[str, int] = {}
    for r in lines:
        if r["event"] == "decision":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    print(f"bot decisions: {reasons}; last audit lines: {lines[-3:]}", file=sys.stderr)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from spy_dev.devcluster import DEFAULT_BIN

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Azurite() as azurite:
        dev = DevCluster(Path(tmp) / "cluster")
        state = dev.start()
        backend = BackendProcess(
            {
                "SPY_BACKEND_ENVIRONMENT": "development",
                "SPY_BACKEND_INGEST_TOKEN": TOKEN,
                "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
            }
        ).start(timeout=120)  # a loaded shared machine starts Python slowly
        tws = FakeTWS(FakeChain(time_value_decay=10.0))
        await tws.start()
        bot = None
        try:
            armed_tradingbot(DEFAULT_BIN, state.kubeconfig)
            env = bot_env(tws.port, backend.url, state.kubeconfig, Path(tmp))
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "spy_bot", "run", env=env, stdout=asyncio.subprocess.DEVNULL
            )
            publisher = Publisher(backend.url, TOKEN, DetectorMetrics())
            await publisher.start()
            await wait_ready(bot, env["SPY_HTTP_PORT"])
            base = datetime.now(UTC).replace(microsecond=0)
            await run(
                publisher,
                tws,
                backend.url,
                10,
                args.interval_ms / 1000,
                base - timedelta(seconds=1),
            )  # warm-up
            for k in range(args.runs):
                stats = await run(
                    publisher,
                    tws,
                    backend.url,
                    args.signals,
                    args.interval_ms / 1000,
                    base + timedelta(seconds=k + 1),
                )
                print(f"run {k + 1}: {stats}  load {os.getloadavg()[0]:.2f}", flush=True)
                results.append(stats)
            await publisher.stop()
            out_stages = _stage_medians(Path(tmp) / "audit.jsonl", args.signals)
            print(f"bot stages, median ms since receipt: {out_stages}", flush=True)
        except RuntimeError:
            _print_decisions(Path(tmp) / "audit.jsonl")
            raise
        finally:
            if bot is not None and bot.returncode is None:
                bot.terminate()
                await bot.wait()
            await tws.stop()
            backend.stop()
            dev.stop()
    return {"runs": results, "bot_stages_ms": out_stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=250, help="between signals")
    args = parser.parse_args()
    out = asyncio.run(main_async(args))
    runs = out["runs"]

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 2)

    summary = {
        "bench": "signal_to_order",
        "runs": len(runs),
        "signals_per_run": args.signals,
        "interval_ms": args.interval_ms,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "median_p50_ms": med("p50_ms"),
        "median_p99_ms": med("p99_ms"),
        "median_publish_to_hub_p50_ms": med("publish_to_hub_p50_ms"),
        "median_hub_to_order_p50_ms": med("hub_to_order_p50_ms"),
        "median_hub_to_order_p99_ms": med("hub_to_order_p99_ms"),
        "orders_missing": sum(r["n"] - r["orders"] for r in runs),
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": med("p99_ms") < GOAL_P99_MS,
        "versions": {p: version(p) for p in ("ib_async", "websockets", "httpx", "fastapi")},
        "bot_stages_median_ms": out["bot_stages_ms"],
        "runs_detail": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
