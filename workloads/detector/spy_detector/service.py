"""The detector service: source -> analytics -> publisher, with probes and metrics.

``python -m spy_detector run`` calls ``run_service(Settings.from_env(os.environ))``.
``Detector`` holds the loop and is what tests drive directly with any source.
The analytics run in a worker thread so a slow snapshot never stalls the gateway
socket, the publisher or the probes that share the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from spy_analytics import DEFAULT_CONFIG, AnalysisResult, ChainSnapshot

from spy_detector.analysis import ChainAnalyzer, analyze_timed, load_config, record_metrics
from spy_detector.health import HealthServer
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher
from spy_detector.settings import Settings
from spy_detector.sharding import ShardSpec, result_wire
from spy_detector.sources.base import MarketSource
from spy_detector.sources.replay import SnapshotRecorder

log = logging.getLogger(__name__)


class Detector:
    def __init__(
        self,
        source: MarketSource,
        analyzer: Callable[[ChainSnapshot], AnalysisResult],
        metrics: DetectorMetrics,
        *,
        publisher: Publisher | None = None,
        recorder: SnapshotRecorder | None = None,
        stale_after: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        shard: ShardSpec | None = None,
        flip_range: float = DEFAULT_CONFIG.structure.flip_range,
    ) -> None:
        self.source = source
        self.analyzer = analyzer
        self.metrics = metrics
        self.publisher = publisher
        self.recorder = recorder
        self.stale_after = stale_after
        self._clock = clock
        self.shard = shard or ShardSpec()
        self.flip_range = flip_range
        self.last_analysed_at: float | None = None
        self.analysed = 0

    async def run(self) -> None:
        """Consume the source until it ends (replay) or the task is cancelled."""
        async for snapshot in self.source.snapshots():
            await self.process(snapshot)

    async def process(self, snapshot: ChainSnapshot) -> None:
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.write, snapshot)  # ~2 MB per 20k chain
        try:
            result, seconds = await asyncio.to_thread(analyze_timed, self.analyzer, snapshot)
        except Exception:
            # analyze() promises never to raise on bad market data, so this is a bug:
            # log it with the traceback, count it, and keep serving the next snapshot.
            self.metrics.analysis_errors.inc()
            log.exception("analysis failed", extra={"contracts": len(snapshot)})
            return
        record_metrics(self.metrics, result, seconds, self.source.name, len(snapshot))
        if self.publisher is not None:
            self.publisher.submit(result_wire(result, self.shard, self.flip_range))
        self.last_analysed_at = self._clock()
        self.analysed += 1
        log.info(
            "snapshot analysed",
            extra={
                "contracts": len(snapshot),
                "anomalies": len(result.anomalies),
                "bad_quotes": result.data_quality.total,
                "ms": round(seconds * 1000, 1),
            },
        )

    def not_ready(self) -> list[str]:
        reasons = list(self.source.not_ready())
        if self.publisher is not None:
            reasons += self.publisher.not_ready()
        if self.last_analysed_at is None:
            reasons.append("no snapshot analysed yet")
        elif self._clock() - self.last_analysed_at > self.stale_after:
            reasons.append(f"no snapshot analysed for over {self.stale_after:g}s")
        return reasons


def build_source(settings: Settings, metrics: DetectorMetrics) -> MarketSource:
    if settings.source == "ibkr":
        from spy_detector.sources.ibkr import IBKRSource

        return IBKRSource(settings.ib, settings.shard, metrics)
    if settings.source == "replay":
        from spy_detector.sources.replay import ReplaySource

        return ReplaySource(
            settings.replay_files,
            settings.shard,
            speed=settings.replay_speed,
            loop=settings.replay_loop,
        )
    from spy_detector.sources.synthetic import SyntheticSource

    return SyntheticSource(
        settings.shard,
        seed=settings.synthetic_seed,
        interval=settings.synthetic_interval,
        count=settings.synthetic_snapshots,
    )


async def run_service(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain the publisher and exit."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics = DetectorMetrics()
    source = build_source(settings, metrics)
    publisher = (
        Publisher(
            settings.backend_url,
            settings.backend_token,
            metrics,
            max_items=settings.publish_buffer,
        )
        if settings.backend_url
        else None
    )
    recorder = SnapshotRecorder(settings.record_file) if settings.record_file else None
    config = load_config(settings.analytics_overrides())
    detector = Detector(
        source,
        ChainAnalyzer(config, settings.dividend_schedule),
        metrics,
        publisher=publisher,
        recorder=recorder,
        stale_after=settings.stale_after,
        shard=settings.shard,
        flip_range=config.structure.flip_range,
    )
    health = HealthServer(metrics, detector.not_ready, settings.http_host, settings.http_port)
    port = await health.start()
    log.info("detector started", extra={**settings.redacted(), "http_port": port})
    if publisher is None:
        log.warning("SPY_BACKEND_URL not set: results are analysed but not published")
    else:
        await publisher.start()
    work = asyncio.create_task(detector.run(), name="detector")
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if work.done() and work.exception() is not None:
            log.error("detector loop failed", exc_info=work.exception())
            return 1
        if work.done():
            log.info("source exhausted", extra={"analysed": detector.analysed})
        return 0
    finally:
        for task in (work, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await source.close()
        if publisher is not None:
            await publisher.stop()
        if recorder is not None:
            recorder.close()
        await health.stop()
