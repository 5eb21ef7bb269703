"""Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BackendMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "spy_backend_http_requests",
            "HTTP requests by route and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "spy_backend_http_request_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.records = Counter(
            "spy_backend_ingested_records",
            "Ingested records by resource and result (stored|duplicate|rejected).",
            ["resource", "result"],
            registry=self.registry,
        )
        self.storage_unavailable = Counter(
            "spy_backend_storage_unavailable",
            "Requests answered 503 because storage was unavailable.",
            registry=self.registry,
        )
        self.published = Counter(
            "spy_backend_realtime_published",
            "Realtime messages published, by result (ok|error).",
            ["result"],
            registry=self.registry,
        )
        self.purged = Counter(
            "spy_backend_retention_purged_entities",
            "Entities deleted by the retention purge.",
            registry=self.registry,
        )
        self.hub_connections = Gauge(
            "spy_backend_hub_connections",
            "WebSocket connections to the local hub.",
            registry=self.registry,
        )
