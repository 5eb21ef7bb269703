"""Signals from the real backend (Azurite storage, the local Web PubSub hub speaking
json.webpubsub.azure.v1): live delivery, backfill after a drop, each signal once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from bot_support import anomaly_record, bot_chain, until
from spy_bot.feed import SignalFeed
from spy_bot.signals import Signal
from spy_dev.devserver import DevStack


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[Signal, str]] = []
        self.invalid: list[str] = []

    async def __call__(self, s: Signal, via: str) -> None:
        self.got.append((s, via))

    def ids(self) -> list[str]:
        return [s.id for s, _ in self.got]


async def ingest(stack: DevStack, **lists: list[dict[str, Any]]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(
            stack.ingest_url, json=lists, headers={"Authorization": f"Bearer {stack.ingest_token}"}
        )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def records(symbol: str, n: int, start: datetime) -> list[dict[str, Any]]:
    chain = bot_chain()
    return [
        anomaly_record(
            chain, symbol=symbol, strike=580.0 + 5 * i, ts=start + timedelta(milliseconds=10 * i)
        )
        for i in range(n)
    ]


async def start_feed(
    stack: DevStack, symbol: str, sink: Collector, **kw: Any
) -> tuple[SignalFeed, asyncio.Task[None]]:
    feed = SignalFeed(
        stack.url, symbol, sink, invalid=lambda why, raw: sink.invalid.append(why), **kw
    )
    task = asyncio.create_task(feed.run())
    await until("joined the hub", lambda: feed.live)
    return feed, task


async def stop_feed(feed: SignalFeed, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await feed.close()


async def test_live_signals_and_invalid_ones(backend: DevStack) -> None:
    sink = Collector()
    feed, task = await start_feed(backend, "FEEDA", sink)
    try:
        recs = records("FEEDA", 3, datetime.now(UTC))
        await ingest(backend, anomalies=recs)
        await until("3 live signals", lambda: len(sink.got) == 3)
        assert sink.ids() == [r["id"] for r in recs]
        assert {via for _, via in sink.got} == {"live"}
        # the same batch again: stored as duplicates, not broadcast, not delivered
        assert (await ingest(backend, anomalies=recs))["duplicate"] == 3
        signal = {
            "ts": datetime.now(UTC).isoformat(),
            "symbol": "FEEDA",
            "name": "iv_spike_cluster",
            "direction": "bearish",
            "strength": 0.5,
            "reason": "r",
        }
        await ingest(backend, signals=[signal])
        await until("the signal record", lambda: len(sink.got) == 4)
        assert sink.got[-1][0].type == "signal" and sink.got[-1][0].kind == "iv_spike_cluster"
        await feed._offer("anomaly", {"id": "x", "ts": "nope"}, "live")
        assert sink.invalid and "ts" in sink.invalid[0]
    finally:
        await stop_feed(feed, task)


async def test_backfill_after_a_drop_delivers_each_signal_once(backend: DevStack) -> None:
    sink = Collector()
    # a slow first retry, so the records below are stored while the bot is away
    feed, task = await start_feed(backend, "FEEDB", sink, base_delay=1.5, overlap=30.0)
    try:
        t0 = datetime.now(UTC)
        before = records("FEEDB", 2, t0)
        await ingest(backend, anomalies=before)
        await until("2 live", lambda: len(sink.got) == 2)
        feed.drop()
        await until("dropped", lambda: not feed.live)
        missed = records("FEEDB", 3, t0 + timedelta(seconds=1))
        missed = [
            {**r, "contract": {**r["contract"], "right": "P"}, "id": r["id"][::-1]} for r in missed
        ]
        await ingest(backend, anomalies=missed)
        await until("rejoined", lambda: feed.live, within=15)
        await until("backfilled", lambda: len(sink.got) >= 5, within=15)
        await asyncio.sleep(0.3)  # anything extra would arrive now
        ids = sink.ids()
        assert sorted(ids) == sorted(r["id"] for r in before + missed), "each signal exactly once"
        assert len(ids) == len(set(ids)) == 5
        assert [via for _, via in sink.got[2:]] == ["backfill"] * 3
        assert feed.joins == 2
    finally:
        await stop_feed(feed, task)


async def test_backend_down_then_up_keeps_retrying(backend: DevStack) -> None:
    sink = Collector()
    feed = SignalFeed("http://127.0.0.1:9", "FEEDC", sink, base_delay=0.05, max_delay=0.1)
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0.5)
    assert not feed.live and feed.joins == 0
    feed.backend_url = backend.url
    await feed._http.aclose()
    feed._http = httpx.AsyncClient(base_url=backend.url, timeout=10)
    await until("joined once the backend answers", lambda: feed.live)
    await stop_feed(feed, task)
