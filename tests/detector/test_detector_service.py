"""The service loop end to end on 127.0.0.1: replay source -> analyzer -> publisher,
with /healthz, /readyz and /metrics served over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from detector_chains import recording
from detector_sink import IngestSink
from detector_support import eventually
from spy_analytics import ChainSnapshot
from spy_detector.backoff import Backoff
from spy_detector.health import HealthServer
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher
from spy_detector.service import Detector
from spy_detector.sharding import ShardSpec
from spy_detector.sources.replay import ReplaySource, SnapshotRecorder


class StubAnalyzer:
    """Stands in for spy_analytics.analyze so these tests pin the service's own wiring."""

    def __init__(self) -> None:
        self.seen: list[ChainSnapshot] = []

    def __call__(self, snap: ChainSnapshot) -> Any:
        self.seen.append(snap)
        n = len(self.seen)
        anomaly = {
            "id": f"id-{n}",
            "ts": "2026-11-25T15:00:00Z",
            "symbol": "SPY",
            "kind": "iv_residual",
            "severity": "HIGH",
            "score": 4.2,
            "reason": "r",
            "contract": {"expiry": "2026-12-19", "strike": 600.0, "right": "C"},
        }
        kind = SimpleNamespace(value="iv_residual")
        sev = SimpleNamespace(value="HIGH")
        return SimpleNamespace(
            anomalies=(SimpleNamespace(kind=kind, severity=sev),),
            data_quality=SimpleNamespace(total=2),
            to_wire=lambda: {"anomalies": [anomaly], "market": [{"spot": snap.spot}]},
        )


class BlockingSource:
    """A source that yields the given snapshots, then waits (like a live feed)."""

    name = "test"

    def __init__(self, snaps: list[ChainSnapshot]) -> None:
        self.snaps = snaps
        self.ready = True

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        for s in self.snaps:
            yield s
        await asyncio.Event().wait()

    def not_ready(self) -> list[str]:
        return [] if self.ready else ["ib connection disconnected"]

    async def close(self) -> None:
        pass


async def test_replay_to_backend_with_probes(tmp_path: Path, ingest_sink: IngestSink) -> None:
    path = recording(tmp_path / "rec.jsonl", n=3)
    metrics = DetectorMetrics()
    publisher = Publisher(
        ingest_sink.url, ingest_sink.token, metrics, backoff=Backoff(0.01, 0.05, jitter=0.0)
    )
    analyzer = StubAnalyzer()
    source = ReplaySource([path], ShardSpec(1, 2))
    detector = Detector(source, analyzer, metrics, publisher=publisher)
    health = HealthServer(metrics, detector.not_ready, "127.0.0.1", 0)
    port = await health.start()
    await publisher.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert "no snapshot analysed yet" in ready.json()["reasons"]

            await detector.run()  # replay ends after 3 snapshots
            await publisher.wait_idle(within=10)

            assert (await http.get("/readyz")).status_code == 200
            text = (await http.get("/metrics")).text
    finally:
        await publisher.stop()
        await health.stop()

    assert len(analyzer.seen) == 3
    # shard 1 of 2 owns the 2nd and 4th of the four expiries, and reads the 3rd (the one
    # after its 2nd) for the calendar rule
    seen = analyzer.seen[0]
    assert sorted(set(seen.expiry.astype(str))) == ["2026-12-11", "2026-12-19", "2027-01-16"]
    assert seen.context_expiries == {"2026-12-19"}
    assert sorted(ingest_sink.anomaly_ids) == ["id-1", "id-2", "id-3"]
    assert ingest_sink.count("market") == 3
    assert 'spy_detector_anomalies_total{kind="iv_residual",severity="HIGH"} 3.0' in text
    assert "spy_detector_bad_quotes_total 6.0" in text
    assert 'spy_detector_snapshots_total{source="replay"} 3.0' in text
    assert "spy_detector_snapshot_latency_seconds_count 3.0" in text
    assert "# HELP spy_detector_publish_drops_total" in text
    assert (
        'spy_detector_ib_connection_state{spy_detector_ib_connection_state="disconnected"} 1.0'
        in text
    )


async def test_readiness_follows_source_and_staleness() -> None:
    clock = [100.0]
    metrics = DetectorMetrics()
    from detector_chains import flat_chain

    source = BlockingSource([flat_chain()])
    detector = Detector(source, StubAnalyzer(), metrics, stale_after=60, clock=lambda: clock[0])
    task = asyncio.create_task(detector.run())
    try:
        await eventually(lambda: detector.analysed == 1, what="first snapshot analysed")
        assert detector.not_ready() == []
        source.ready = False
        assert detector.not_ready() == ["ib connection disconnected"]
        source.ready = True
        clock[0] += 61
        assert detector.not_ready() == ["no snapshot analysed for over 60s"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_readiness_includes_publisher_liveness() -> None:
    from detector_chains import flat_chain

    posts: list[int] = []

    def refuse(_: httpx.Request) -> httpx.Response:
        posts.append(1)
        return httpx.Response(503)

    metrics = DetectorMetrics()
    publisher = Publisher(
        "http://backend",
        "t",
        metrics,
        backoff=Backoff(initial=0.001, maximum=0.005, jitter=0.0),
        transport=httpx.MockTransport(refuse),
        unhealthy_after=3,
    )
    source = BlockingSource([flat_chain()])
    detector = Detector(source, StubAnalyzer(), metrics, publisher=publisher)
    await publisher.start()
    task = asyncio.create_task(detector.run())
    try:
        await eventually(lambda: detector.analysed == 1, what="first snapshot analysed")
        publisher.submit({"anomalies": [{"id": "x"}]})
        await eventually(lambda: len(posts) >= 3, what="failed posts")
        assert any("consecutive failed posts" in r for r in detector.not_ready())
        assert publisher._task is not None
        publisher._task.cancel()
        await eventually(lambda: publisher._task is not None and publisher._task.done())
        assert "publisher stopped" in detector.not_ready()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await publisher.stop(drain_timeout=0.01)


async def test_analysis_error_is_counted_not_fatal() -> None:
    from detector_chains import flat_chain

    calls = []

    def flaky(snap: ChainSnapshot) -> Any:
        calls.append(snap)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return StubAnalyzer()(snap)

    metrics = DetectorMetrics()
    detector = Detector(BlockingSource([]), flaky, metrics)
    await detector.process(flat_chain())
    await detector.process(flat_chain())
    assert metrics.registry.get_sample_value("spy_detector_analysis_errors_total") == 1.0
    assert detector.analysed == 1


async def test_last_snapshot_timestamp_is_zero_until_a_snapshot_then_its_wall_time() -> None:
    """spy_detector_last_snapshot_timestamp_seconds, which SpyDetectorStale watches:
    0 before the first snapshot (so a detector that never got one is stale too), then
    the Unix time each analysed snapshot was recorded; a failed analysis leaves it."""
    import time

    from detector_chains import flat_chain

    metrics = DetectorMetrics()
    name = "spy_detector_last_snapshot_timestamp_seconds"
    assert metrics.registry.get_sample_value(name) == 0.0
    detector = Detector(BlockingSource([]), StubAnalyzer(), metrics)
    before = time.time()
    await detector.process(flat_chain())
    stamp = metrics.registry.get_sample_value(name)
    assert stamp is not None and before <= stamp <= time.time()

    def broken(snap: ChainSnapshot) -> Any:
        raise RuntimeError("bug")

    await Detector(BlockingSource([]), broken, metrics).process(flat_chain())
    assert metrics.registry.get_sample_value(name) == stamp


async def test_recorder_round_trips_through_replay(tmp_path: Path) -> None:
    src = recording(tmp_path / "in.jsonl", n=2)
    out = tmp_path / "out" / "rec.jsonl"
    recorder = SnapshotRecorder(out)
    detector = Detector(ReplaySource([src]), StubAnalyzer(), DetectorMetrics(), recorder=recorder)
    await detector.run()
    recorder.close()
    replayed = [s async for s in ReplaySource([out]).snapshots()]
    originals = [s async for s in ReplaySource([src]).snapshots()]
    assert len(replayed) == 2
    for a, b in zip(replayed, originals, strict=True):
        assert a.ts == b.ts and a.spot == b.spot
        assert a.to_records() == b.to_records()


async def test_replay_speed_waits_recorded_gaps(tmp_path: Path) -> None:
    path = recording(tmp_path / "rec.jsonl", n=3)  # 30 s apart
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    snaps = [s async for s in ReplaySource([path], speed=10.0, sleep=fake_sleep).snapshots()]
    assert len(snaps) == 3
    assert waits == [3.0, 3.0]
