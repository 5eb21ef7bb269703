"""The three kinds: names, short names, printer columns, and the spec/status schema
each takes from its own module. Every emitter (emit_yaml, emit_docs, emit_defaults)
walks KINDS in this order.
"""

from __future__ import annotations

from typing import Any

from .fields import AGE, READY, printer
from .ibgateway import IB_GATEWAY_SPEC, IB_GATEWAY_STATUS
from .optionsdetector import OPTIONS_DETECTOR_SPEC, OPTIONS_DETECTOR_STATUS
from .tradingbot import TRADING_BOT_SPEC, TRADING_BOT_STATUS

KINDS: list[dict[str, Any]] = [
    {
        "kind": "TradingBot",
        "plural": "tradingbots",
        "short": ["tb"],
        "doc": "A trading bot whose Deployment runs 1 replica only when armed with a valid approval.",
        "spec": TRADING_BOT_SPEC,
        "status": TRADING_BOT_STATUS,
        "columns": [
            printer("Mode", ".spec.mode"),
            printer(
                "Armed", ".status.armed", "boolean", desc="Effective armed state from the gate"
            ),
            printer("Approved-By", ".spec.approval.approvedBy"),
            printer("Expires", ".spec.approval.expiresAt"),
            printer("Replicas", ".status.replicas", "integer"),
            READY,
            printer("Reason", ".status.reason"),
            AGE,
            printer("Gateway", ".spec.gatewayRef.name", priority=1),
            printer("Message", ".status.message", priority=1),
        ],
    },
    {
        "kind": "IBGateway",
        "plural": "ibgateways",
        "short": ["ibgw"],
        "doc": "An Interactive Brokers Gateway run as a one-replica StatefulSet.",
        "spec": IB_GATEWAY_SPEC,
        "status": IB_GATEWAY_STATUS,
        "columns": [
            printer("Mode", ".spec.tradingMode"),
            printer("Read-Only", ".spec.readOnlyApi", "boolean"),
            printer("Endpoint", ".status.endpoint"),
            READY,
            printer("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
            AGE,
        ],
    },
    {
        "kind": "OptionsDetector",
        "plural": "optionsdetectors",
        "short": ["od"],
        "doc": "A sharded options-anomaly detector run as a StatefulSet.",
        "spec": OPTIONS_DETECTOR_SPEC,
        "status": OPTIONS_DETECTOR_STATUS,
        "columns": [
            printer("Symbol", ".spec.symbol"),
            printer("Shards", ".spec.shards", "integer"),
            printer("Ready-Shards", ".status.readyShards", "integer"),
            printer("Gateway", ".spec.gatewayRef.name"),
            READY,
            printer("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
            AGE,
        ],
    },
]
