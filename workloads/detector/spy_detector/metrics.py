"""Prometheus metrics of one detector process.

Owned by ``service.Detector`` and passed to the parts that count things (sources,
publisher). Each instance has its own registry so tests can run several detectors in
one process; ``/metrics`` in ``health`` renders it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

IB_STATES = ("disconnected", "connecting", "connected", "ib_link_lost", "client_id_in_use")


class DetectorMetrics:
    # Over 60 lines on purpose: one declaration per metric, read as the table of what a
    # detector exports (docs/detector.md); splitting it would scatter that table.
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.snapshot_latency = Histogram(
            "spy_detector_snapshot_latency_seconds",
            "Time to analyse one chain snapshot (analytics pipeline only).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.snapshots = Counter(
            "spy_detector_snapshots", "Chain snapshots analysed.", ["source"], registry=r
        )
        # Unix time; 0 until the first snapshot, so a detector that never got one
        # looks as stale as one that stopped getting them (SpyDetectorStale).
        self.last_snapshot = Gauge(
            "spy_detector_last_snapshot_timestamp_seconds",
            "Unix time the latest chain snapshot was analysed (0: none yet).",
            registry=r,
        )
        self.contracts = Gauge(
            "spy_detector_contracts", "Contracts in the latest snapshot.", registry=r
        )
        self.anomalies = Counter(
            "spy_detector_anomalies",
            "Anomalies detected, by kind and severity.",
            ["kind", "severity"],
            registry=r,
        )
        self.bad_quotes = Counter(
            "spy_detector_bad_quotes",
            "Quotes skipped as data-quality events (crossed, locked, stale, zero...).",
            registry=r,
        )
        self.analysis_errors = Counter(
            "spy_detector_analysis_errors", "Snapshots whose analysis raised.", registry=r
        )
        self.ib_state = Enum(
            "spy_detector_ib_connection_state",
            "State of the TWS API connection (IBKR source only).",
            states=list(IB_STATES),
            registry=r,
        )
        self.ib_reconnects = Counter(
            "spy_detector_ib_reconnects", "Reconnect attempts to the gateway.", registry=r
        )
        self.ib_errors = Counter(
            "spy_detector_ib_errors", "Error/status codes received from TWS.", ["code"], registry=r
        )
        self.ib_lines = Gauge(
            "spy_detector_ib_market_data_lines",
            "Market-data lines currently subscribed.",
            registry=r,
        )
        self.publish_items = Counter(
            "spy_detector_publish_items",
            "Items acknowledged by the backend, by type.",
            ["type"],
            registry=r,
        )
        self.publish_failures = Counter(
            "spy_detector_publish_failures",
            "Failed ingest attempts (each is retried).",
            ["reason"],
            registry=r,
        )
        self.publish_drops = Counter(
            "spy_detector_publish_drops",
            "Items dropped because the publish buffer was full (oldest first).",
            ["type"],
            registry=r,
        )
        self.publish_buffered = Gauge(
            "spy_detector_publish_buffered", "Items waiting in the publish buffer.", registry=r
        )
