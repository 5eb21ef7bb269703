"""Prometheus metrics of the operator (served on --metrics-port, default 8080)."""

from __future__ import annotations

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
