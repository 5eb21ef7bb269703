"""Prometheus metrics of one bot process (own registry, rendered by ``health``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.signals = Counter("spy_bot_signals", "Signals seen once.", ["type", "via"], registry=r)
        self.duplicates = Counter(
            "spy_bot_duplicate_signals", "Signals seen again and ignored.", registry=r
        )
        self.decisions = Counter(
            "spy_bot_decisions",
            "Decisions, by outcome and reason.",
            ["decision", "reason"],
            registry=r,
        )
        self.orders = Counter("spy_bot_order_events", "Order events.", ["event"], registry=r)
        self.risk_mode = Enum(
            "spy_bot_risk_mode",
            "Risk engine state.",
            states=["ACTIVE", "REDUCING", "HALTED"],
            registry=r,
        )
        self.armed = Gauge(
            "spy_bot_armed", "1 when the last TradingBot read said armed.", registry=r
        )
        self.ib_connected = Gauge(
            "spy_bot_ib_connected", "1 while the gateway is connected.", registry=r
        )
        self.hub_connected = Gauge(
            "spy_bot_hub_connected", "1 while joined to the hub.", registry=r
        )
        self.daily_pnl = Gauge("spy_bot_daily_pnl_usd", "Daily P&L reported by IB.", registry=r)
        self.signal_to_order = Histogram(
            "spy_bot_signal_to_order_seconds",
            "From receiving a signal to sending its order.",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        # The audit's copy at the backend (audit_shipper.py).
        self.audit_shipped = Counter(
            "spy_bot_audit_shipped", "Audit records the backend took.", registry=r
        )
        self.audit_dropped = Counter(
            "spy_bot_audit_dropped",
            "Audit records never shipped: overflow (buffer full) or rejected (413/422).",
            ["reason"],
            registry=r,
        )
        self.audit_post_failures = Counter(
            "spy_bot_audit_post_failures",
            "Audit posts to retry, by HTTP status or error.",
            ["why"],
            registry=r,
        )
        self.audit_buffered = Gauge(
            "spy_bot_audit_buffered", "Audit records waiting for the backend.", registry=r
        )
