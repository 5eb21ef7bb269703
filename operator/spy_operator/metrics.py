"""Prometheus metrics of the operator (served on --metrics-port, default 8080).

The chart's alerts and Grafana dashboard (helm/spy-options/files/) use these names;
tests/delivery/test_monitoring.py checks every name they use is exported.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("spy_operator_reconciles_total", "Reconcile passes.", ["kind", "result"])
RECONCILE_ERRORS = Counter("spy_operator_reconcile_errors_total", "Failed reconciles.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "spy_operator_reconcile_duration_seconds",
    "Time of one reconcile pass.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
API_WRITES = Counter(
    "spy_operator_api_writes_total", "Write requests sent to the API server.", ["verb", "resource"]
)
ARMED_BOTS = Gauge("spy_operator_armed_bots", "TradingBots the gate currently allows to run.")
REVERTED_SCALE_UPS = Counter(
    "spy_operator_reverted_scale_ups_total",
    "Bot Deployments found above what the gate allows and set back.",
)
HALTED = Gauge("spy_operator_global_halt", "1 while the global halt ConfigMap exists.")
LEADER = Gauge("spy_operator_leader", "1 while this replica holds the leader Lease.")
QUEUE_DEPTH = Gauge("spy_operator_queue_depth", "Objects waiting to be reconciled.")
FOREIGN_CHANGES = Counter(
    "spy_operator_foreign_changes_total",
    "Bot Deployments found with pod-template fields set by another manager (ForeignChange).",
)
FAIL_CLOSED = Counter(
    "spy_operator_fail_closed_total",
    "Bot reconciles that failed and fell back to a replicas-only write to the gate's floor.",
)
STRAY_BOT_DEPLOYMENTS = Counter(
    "spy_operator_stray_bot_deployments_total",
    "Deployments with the bot label and no owning TradingBot found running and stopped.",
)
VPN_RTT = Gauge(
    "spy_operator_vpn_rtt_seconds",
    "TCP connect time of the latest successful VPN probe, by target host:port "
    "(absent while the probe fails; target under 0.030).",
    ["target"],
)
APPROVAL_EXPIRY = Gauge(
    "spy_operator_bot_approval_expiry_timestamp_seconds",
    "Unix time the TradingBot's approval expires (absent when it has none or is gone).",
    ["namespace", "bot"],
)


def record_vpn_rtt(host: str, port: int, rtt_ms: float | None) -> None:
    """Set the probe's RTT, or drop the series when the probe failed (no stale value)."""
    target = f"{host}:{port}"
    if rtt_ms is None:
        with contextlib.suppress(KeyError):  # never measured: nothing to drop
            VPN_RTT.remove(target)
    else:
        VPN_RTT.labels(target=target).set(rtt_ms / 1000)


def record_approval_expiry(namespace: str, bot: str, expires_at: dt.datetime | None) -> None:
    """Set a bot's approval expiry, or drop its series (no approval, bot deleted)."""
    if expires_at is None:
        with contextlib.suppress(KeyError):  # never set: nothing to drop
            APPROVAL_EXPIRY.remove(namespace, bot)
    else:
        APPROVAL_EXPIRY.labels(namespace=namespace, bot=bot).set(expires_at.timestamp())
