"""The detector's stateful wrapper around the pure ``spy_analytics.analyze``.

``service.Detector`` and the ``scan`` CLI feed snapshots of one chain in time order;
the wrapper carries the previous snapshot and the baselines from one call to the next
(volume z-scores, spread baselines and premium flow need them) and turns each result
into metrics and ingest items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from spy_analytics import (
    DEFAULT_CONFIG,
    AnalysisResult,
    AnalyzerConfig,
    BaselineState,
    ChainSnapshot,
    analyze,
)
from spy_analytics.dividends import DividendSchedule

from spy_detector.metrics import DetectorMetrics


def load_config(overrides: Mapping[str, Any] | None) -> AnalyzerConfig:
    """Analytics thresholds with the CR's overrides (dotted paths, see docs/analytics.md)."""
    return DEFAULT_CONFIG.with_overrides(overrides) if overrides else DEFAULT_CONFIG


class ChainAnalyzer:
    """Runs ``analyze`` on successive snapshots of one chain, keeping its state.

    ``dividends`` gives the schedule for a snapshot's date (the settings'
    ``dividend_schedule``); it fills in snapshots that state no dividend model at all:
    no schedule and no continuous yield (the live gateway sends neither). A recorded
    file's own schedule wins, and so does a stated ``div_yield`` (the demo feed and
    older recordings model SPY's dividend as a 1.3% yield; adding the discrete
    schedule on top would count it twice).
    """

    def __init__(
        self,
        config: AnalyzerConfig = DEFAULT_CONFIG,
        dividends: Callable[[date], DividendSchedule] | None = None,
    ) -> None:
        self._config = config
        self._dividends = dividends
        self._previous: ChainSnapshot | None = None
        self._baseline: BaselineState | None = None

    def __call__(self, snapshot: ChainSnapshot) -> AnalysisResult:
        if self._dividends is not None and not snapshot.dividends and snapshot.div_yield == 0.0:
            snapshot = snapshot.with_dividends(self._dividends(snapshot.ts.date()))
        result = analyze(snapshot, self._previous, self._baseline, self._config)
        self._previous = snapshot
        self._baseline = result.baseline
        return result


def analyze_timed(
    analyzer: Callable[[ChainSnapshot], AnalysisResult], snapshot: ChainSnapshot
) -> tuple[AnalysisResult, float]:
    """``analyzer(snapshot)`` and its wall time in seconds (run in a worker thread)."""
    started = time.perf_counter()
    result = analyzer(snapshot)
    return result, time.perf_counter() - started


def record_metrics(
    metrics: DetectorMetrics,
    result: AnalysisResult,
    seconds: float,
    source: str,
    contracts: int,
    now: float | None = None,
) -> None:
    """Count one analysed snapshot; `now` (Unix time, default the wall clock) becomes
    spy_detector_last_snapshot_timestamp_seconds, which SpyDetectorStale watches."""
    metrics.snapshot_latency.observe(seconds)
    metrics.last_snapshot.set(time.time() if now is None else now)
    metrics.snapshots.labels(source=source).inc()
    metrics.contracts.set(contracts)
    for a in result.anomalies:
        metrics.anomalies.labels(kind=a.kind.value, severity=a.severity.value).inc()
    bad = result.data_quality.total
    if bad:
        metrics.bad_quotes.inc(bad)


def scan_line(anomaly_wire: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the ``scan`` CLI prints for one anomaly, in a stable order."""
    keys = ("kind", "contract", "severity", "score", "reason", "iv", "fitted_iv", "k", "ts", "id")
    return {k: anomaly_wire.get(k) for k in keys}
