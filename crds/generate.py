"""Generates the three CRDs in crds/ from one Python description (run `make crds`).

Shared sub-schemas (pull secrets, VPN probe, resources, conditions) are written once
here so the kinds cannot drift apart; tests/operator/test_crds.py fails when the
committed YAML is not what this script writes. Every field carries a description so
`kubectl explain` teaches the API (DESIGN §3).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

GROUP = "spyoptions.io"
VERSION = "v1alpha1"
Schema = dict[str, Any]


def s(description: str, **kw: Any) -> Schema:
    return {"type": "string", "description": description, **kw}


def i(description: str, **kw: Any) -> Schema:
    return {"type": "integer", "description": description, **kw}


def n(description: str, **kw: Any) -> Schema:
    return {"type": "number", "description": description, **kw}


def b(description: str, **kw: Any) -> Schema:
    return {"type": "boolean", "description": description, **kw}


def obj(description: str, props: Schema, required: list[str] | None = None, **kw: Any) -> Schema:
    out: Schema = {"type": "object", "description": description, "properties": props, **kw}
    if required:
        out["required"] = required
    return out


def local_ref(what: str) -> Schema:
    return obj(
        f"Reference to {what} in the same namespace.",
        {"name": s(f"Name of {what}.", minLength=1, maxLength=253)},
        ["name"],
    )


IMAGE_PULL_SECRETS: Schema = {
    "type": "array",
    "maxItems": 16,
    "description": (
        "Secrets of type kubernetes.io/dockerconfigjson used to pull the image. The operator "
        "checks that each exists, has that type, parses, and has an `auths` entry for the "
        "image's registry host (e.g. myacr.azurecr.io); the PullSecretReady condition says "
        "which check failed."
    ),
    "items": obj(
        "A pull secret reference.",
        {"name": s("Name of a Secret in the same namespace.", minLength=1, maxLength=253)},
        ["name"],
    ),
}

QUANTITY: Schema = {
    "description": "A Kubernetes quantity, e.g. 500m or 1Gi.",
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
}

RESOURCES = obj(
    "Compute resources for the workload's container, as in a Pod spec.",
    {
        "requests": {
            "type": "object",
            "description": "Minimum resources, e.g. {cpu: 100m, memory: 256Mi}.",
            "additionalProperties": QUANTITY,
        },
        "limits": {
            "type": "object",
            "description": "Maximum resources, e.g. {cpu: '1', memory: 1Gi}.",
            "additionalProperties": QUANTITY,
        },
    },
)

VPN = obj(
    "TCP probe across the site-to-site VPN to Azure. The operator connects to host:port "
    "with a timeout and records the round-trip time in status (target under 30 ms).",
    {
        "host": s("Host name or IP across the tunnel to probe.", minLength=1, maxLength=253),
        "port": i("TCP port to probe.", minimum=1, maximum=65535),
        "required": b(
            "When true, an unreachable probe blocks the workload (for a TradingBot it holds "
            "replicas at 0). When false, the result is only reported.",
            default=True,
        ),
        "timeoutSeconds": n(
            "Connect timeout of one probe, seconds.", minimum=0.05, maximum=10, default=2
        ),
    },
    ["host", "port"],
)

CONDITIONS: Schema = {
    "type": "array",
    "description": "Observations of the object's state (Kubernetes API conventions).",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    "items": obj(
        "One condition.",
        {
            "type": s(
                "Condition type: PullSecretReady, VPNReady, GatewayReady, Approved, Armed, "
                "Enforced, Halted or Ready."
            ),
            "status": s("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": s("CamelCase reason for the last transition."),
            "message": s("Human-readable details."),
            "lastTransitionTime": s("When the status last changed.", format="date-time"),
            "observedGeneration": i("The .metadata.generation this condition was computed from."),
        },
        ["type", "status"],
    ),
}


def status_common(extra: Schema) -> Schema:
    props: Schema = {
        "observedGeneration": i("The .metadata.generation the operator last reconciled."),
        "conditions": CONDITIONS,
        "vpnRttMs": n("Last measured VPN probe round-trip time in milliseconds."),
    }
    props.update(extra)
    return obj("Observed state, written only by the operator.", props)


def printer(
    name: str, path: str, type_: str = "string", priority: int = 0, desc: str = ""
) -> Schema:
    col: Schema = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if desc:
        col["description"] = desc
    return col


READY = printer("Ready", '.status.conditions[?(@.type=="Ready")].status', desc="Ready condition")
AGE = printer("Age", ".metadata.creationTimestamp", "date")

TRADING_BOT_SPEC = obj(
    "Desired state of a trading bot. The operator runs its Deployment at 1 replica only "
    "when the safety gate allows it (docs/safety-gate.md), else at 0.",
    {
        "image": s("Container image of the bot, e.g. myacr.azurecr.io/spy-bot:1.2.3.", minLength=1),
        "gatewayRef": local_ref("the IBGateway the bot sends orders through"),
        "mode": s(
            "paper or live. Must match the gateway's tradingMode; a live bot also needs a "
            "gateway with readOnlyApi false.",
            enum=["paper", "live"],
            default="paper",
        ),
        "armed": b(
            "Request to trade. Effective only with a present, unexpired approval, a Ready "
            "gateway, valid pull secrets, a passing VPN probe (when required) and no global "
            "halt. Defaults to false.",
            default=False,
        ),
        "approval": obj(
            "The second person's approval to arm the bot.",
            {
                "approvedBy": s("Who approved arming (a user name).", minLength=1, maxLength=253),
                "reason": s(
                    "Why the bot may trade; required for live bots.", minLength=1, maxLength=1024
                ),
                "expiresAt": s(
                    "RFC 3339 time after which the approval is void and the bot goes to 0 "
                    "replicas without any edit, e.g. 2026-11-25T21:00:00Z.",
                    format="date-time",
                ),
            },
        ),
        "strategy": obj(
            "Which strategy the bot runs, as data (docs/bot.md): rules that map an anomaly "
            "to a defined-risk vertical on its contract. Without rules the bot fades HIGH "
            "iv_residual anomalies and follows HIGH vol_oi anomalies, 1 lot, 5 wide.",
            {
                "name": s(
                    "A label for the strategy, shown in the audit log.",
                    default="iv-mean-reversion",
                    maxLength=63,
                ),
                "rules": {
                    "type": "array",
                    "maxItems": 32,
                    "description": "Rules in order; the first that matches a signal decides.",
                    "items": obj(
                        "One rule: when an anomaly matches, trade a vertical on its contract.",
                        {
                            "name": s("Rule name, shown in the audit log.", maxLength=63),
                            "when": obj(
                                "Which anomalies the rule matches.",
                                {
                                    "kind": s(
                                        "Anomaly kind, e.g. iv_residual or vol_oi (docs/wire-format.md).",
                                        pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                    ),
                                    "minSeverity": s(
                                        "Lowest severity that matches.",
                                        enum=["LOW", "MEDIUM", "HIGH"],
                                        default="HIGH",
                                    ),
                                },
                                ["kind"],
                            ),
                            "action": s(
                                "fade: sell a rich option / buy a cheap one against the wing "
                                "(credit / debit vertical); follow: buy it against the wing "
                                "(debit vertical).",
                                enum=["fade", "follow"],
                            ),
                            "width": n(
                                "Strike distance to the wing, further out of the money.",
                                minimum=0.5,
                                maximum=100,
                                default=5,
                            ),
                            "quantity": i("Spreads per order.", minimum=1, maximum=1000, default=1),
                            "edge": n(
                                "USD per spread the limit may concede from the mid.",
                                minimum=0,
                                maximum=10,
                                default=0,
                            ),
                        },
                        ["when", "action"],
                    ),
                },
                "parameters": {
                    "type": "object",
                    "description": "Free-form string parameters for strategies of other bot images.",
                    "additionalProperties": {"type": "string", "description": "A parameter value."},
                },
            },
        ),
        "risk": obj(
            "Risk limits enforced by the bot's risk engine before every order (docs/bot.md). "
            "Every limit has a safe default; a refusal names the limit.",
            {
                "maxContracts": i(
                    "Largest total open position, in spreads, over all expiries.",
                    minimum=1,
                    maximum=10000,
                    default=1,
                ),
                "maxContractsPerOrder": i(
                    "Largest order, in spreads.", minimum=1, maximum=10000, default=1
                ),
                "maxPositionPerExpiry": i(
                    "Largest open position in one expiry, in spreads.",
                    minimum=1,
                    maximum=10000,
                    default=1,
                ),
                "maxOrderNotional": n(
                    "Largest max-loss of one order, USD (a debit spread's cost, a credit "
                    "spread's width minus credit, times 100 per spread).",
                    minimum=0,
                    default=5000,
                ),
                "maxOpenOrders": i(
                    "Most working orders at once.", minimum=1, maximum=1000, default=1
                ),
                "maxDailyLoss": n(
                    "Loss in USD (IB's daily P&L, realised + unrealised) at which the bot "
                    "halts until a human resets it.",
                    minimum=0,
                    default=1000,
                ),
                "reduceAtLossFraction": n(
                    "Fraction of maxDailyLoss at which the bot only reduces (opens nothing).",
                    minimum=0,
                    maximum=1,
                    default=0.8,
                ),
                "maxOrdersPerMinute": i("Order rate limit.", minimum=1, maximum=600, default=5),
                "maxConsecutiveRejects": i(
                    "Rejects in a row that trip the circuit breaker (halt until reset).",
                    minimum=1,
                    maximum=100,
                    default=3,
                ),
                "tradingHours": s(
                    "regular: only inside NYSE regular sessions (holidays and half days from "
                    "the exchange calendar); any: no time limit (tests, paper).",
                    enum=["regular", "any"],
                    default="regular",
                ),
                "allowedSymbols": {
                    "type": "array",
                    "maxItems": 16,
                    "description": "Underlyings the bot may trade. Default [SPY].",
                    "items": s("A symbol.", pattern=r"^[A-Z][A-Z0-9.]{0,9}$"),
                },
                "allowedRights": {
                    "type": "array",
                    "maxItems": 2,
                    "description": "Option rights the bot may trade (C, P). Default both.",
                    "items": s("C or P.", enum=["C", "P"]),
                },
                "minDTE": i(
                    "Fewest days to expiry the bot may trade.", minimum=0, maximum=3650, default=1
                ),
                "maxDTE": i(
                    "Most days to expiry the bot may trade.", minimum=0, maximum=3650, default=45
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "!has(self.minDTE) || !has(self.maxDTE) || self.minDTE <= self.maxDTE",
                        "message": "minDTE must not exceed maxDTE",
                        "fieldPath": ".minDTE",
                    }
                ]
            },
        ),
        "backend": obj(
            "Where the bot reads signals: the backend's /api/v1/negotiate (realtime) and "
            "query API (backfill after a reconnect); with tokenSecretRef, where its audit "
            "lines go too (POST /api/v1/audit, docs/bot.md).",
            {
                "url": s(
                    "Backend base URL, e.g. http://spy-backend.spy.svc:8000.", pattern="^https?://"
                ),
                "tokenSecretRef": obj(
                    "Secret with the backend's audit bearer token (SPY_BACKEND_TOKEN).",
                    {
                        "name": s("Secret name.", minLength=1),
                        "key": s("Key in the Secret.", default="token"),
                    },
                    ["name"],
                ),
            },
            ["url"],
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["image", "gatewayRef"],
    **{
        "x-kubernetes-validations": [
            {
                "rule": "!self.armed || (has(self.approval) && has(self.approval.approvedBy) && has(self.approval.expiresAt))",
                "message": "armed: true requires approval.approvedBy and approval.expiresAt",
                "fieldPath": ".approval",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "self.mode != 'live' || !has(self.approval) || (has(self.approval.reason) && self.approval.reason.trim().size() > 0)",
                "message": "mode: live needs an explicit approval.reason",
                "fieldPath": ".approval.reason",
                "reason": "FieldValueRequired",
            },
        ]
    },
)

TRADING_BOT_STATUS = status_common(
    {
        "replicas": i(
            "Replicas of the bot's Deployment as last observed (0 or 1): what the safety "
            "gate allows once the Enforced condition is True."
        ),
        "readyReplicas": i("Ready replicas of the bot's Deployment."),
        "armed": b(
            "Effective armed state: true only when the gate allows trading and the "
            "Deployment carries exactly the operator's manifest (Enforced)."
        ),
        "reason": s("Why the gate allows or holds the bot (CamelCase), e.g. NotArmed."),
        "message": s("Human-readable gate decision."),
        "ibClientId": i("IB API client id allocated to this bot on its gateway."),
        "deployment": s("Name of the bot's Deployment."),
    }
)

IB_GATEWAY_SPEC = obj(
    "Desired state of an Interactive Brokers Gateway (IBC-based image).",
    {
        "image": s(
            "Gateway container image.", minLength=1, default="ghcr.io/gnzsnz/ib-gateway:stable"
        ),
        "tradingMode": s("paper or live account.", enum=["paper", "live"], default="paper"),
        "credentialsSecretRef": obj(
            "Secret holding the IB login; must have keys `username` and `password`.",
            {"name": s("Name of the Secret in the same namespace.", minLength=1)},
            ["name"],
        ),
        "readOnlyApi": b(
            "Start the API in read-only mode (no orders). Live bots need false.", default=True
        ),
        "apiPort": i("TCP port of the TWS API.", minimum=1024, maximum=65535, default=4002),
        "dailyRestartTime": s(
            "Local time HH:MM of IBC's daily auto-restart, e.g. 23:45.",
            pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        ),
        "timezone": s(
            "IANA time zone for dailyRestartTime.", default="America/New_York", minLength=1
        ),
        "storage": obj(
            "PersistentVolumeClaim for the gateway's settings, so 2FA device trust survives restarts.",
            {
                "size": {**QUANTITY, "description": "Requested size.", "default": "1Gi"},
                "storageClassName": s("StorageClass; empty for the cluster default."),
            },
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["credentialsSecretRef"],
)

IB_GATEWAY_STATUS = status_common(
    {
        "endpoint": s("host:port of the TWS API that consumers use; set when Ready."),
        "readyReplicas": i("Ready replicas of the gateway StatefulSet (0 or 1)."),
        "statefulSet": s("Name of the gateway StatefulSet."),
    }
)

OPTIONS_DETECTOR_SPEC = obj(
    "Desired state of the options-anomaly detector.",
    {
        "image": s("Detector container image.", minLength=1),
        "gatewayRef": local_ref("the IBGateway the detector reads market data from"),
        "symbol": s("Underlying symbol.", pattern="^[A-Z]{1,6}$", default="SPY"),
        "shards": i(
            "Detector replicas; shard i of n takes the expiries whose index modulo n is i. "
            "Each shard gets its own IB client id.",
            minimum=1,
            maximum=32,
            default=1,
        ),
        "expiryWindow": obj(
            "Which expiries to watch, in days to expiry (DTE).",
            {
                "minDte": i("Smallest DTE.", minimum=0, maximum=1000, default=0),
                "maxDte": i("Largest DTE.", minimum=0, maximum=1000, default=60),
            },
            **{
                "x-kubernetes-validations": [
                    {"rule": "self.minDte <= self.maxDte", "message": "minDte must be <= maxDte"}
                ]
            },
        ),
        "strikeWindow": obj(
            "Which strikes to watch around the spot price.",
            {
                "percent": n(
                    "Half-width as a fraction of spot, e.g. 0.1 = +/-10%.",
                    minimum=0.005,
                    maximum=1,
                    default=0.1,
                ),
            },
        ),
        "marketDataType": s(
            "IB market data type.",
            enum=["live", "frozen", "delayed", "delayed-frozen"],
            default="delayed",
        ),
        "thresholds": obj(
            "Detection thresholds; each unset field keeps the analytics default "
            "(docs/analytics.md). A z-score or ratio here sets the rule's LOW band.",
            {
                "ivResidualZ": n("IV residual z-score vs the fitted smile (default 5).", minimum=0),
                "minVolume": i("Volume floor of the volume/OI rule (default 500).", minimum=0),
                "minOpenInterest": i(
                    "Open interest floor of the volume/OI rule (default 100).", minimum=0
                ),
                "minPrice": n(
                    "Option price floor of the volume/OI rule, USD (default 0.10).", minimum=0
                ),
                "volOiRatio": n("Volume/open interest ratio (default 1.25).", minimum=0),
                "volumeZ": n(
                    "Volume z-score vs the contract's intraday baseline (default 5).", minimum=0
                ),
                "spreadBlowoutZ": n(
                    "Bid-ask spread z-score vs its own baseline (default 3).", minimum=0
                ),
            },
        ),
        "backend": obj(
            "Where the detector publishes signals.",
            {
                "url": s(
                    "Backend base URL, e.g. http://spy-backend.spy.svc:8000.", pattern="^https?://"
                ),
                "tokenSecretRef": obj(
                    "Secret with the ingest bearer token.",
                    {
                        "name": s("Secret name.", minLength=1),
                        "key": s("Key in the Secret.", default="token"),
                    },
                    ["name"],
                ),
            },
            ["url"],
        ),
        "dividends": obj(
            "The underlying's discrete cash dividends, for the forward, parity and the "
            "American early-exercise bounds (docs/analytics.md).",
            {
                "schedule": {
                    "type": "array",
                    "maxItems": 64,
                    "description": "Known ex-dividend dates and amounts; each replaces the "
                    "projected dividend in its calendar month.",
                    "items": obj(
                        "One cash dividend.",
                        {
                            "exDate": s("Ex-dividend date, YYYY-MM-DD.", format="date"),
                            "amount": n("Cash amount per share, USD.", minimum=0),
                        },
                        ["exDate", "amount"],
                    ),
                },
                "projectedQuarterly": n(
                    "Amount projected on SPY's quarterly ex-dates (third Friday of Mar, Jun, "
                    "Sep, Dec) for a year; 0 projects none. Unset: the detector's default "
                    "(1.85 for SPY, 0 otherwise).",
                    minimum=0,
                ),
            },
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["image", "gatewayRef"],
)

OPTIONS_DETECTOR_STATUS = status_common(
    {
        "readyShards": i("Ready detector replicas."),
        "ibClientIds": {
            "type": "array",
            "description": "IB client ids of the shards, by ordinal.",
            "items": {"type": "integer", "description": "Client id of one shard."},
        },
        "statefulSet": s("Name of the detector StatefulSet."),
    }
)

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


def crd(kind: dict[str, Any]) -> dict[str, Any]:
    plural = kind["plural"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "spyoptions"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind["kind"],
                "listKind": f"{kind['kind']}List",
                "plural": plural,
                "singular": kind["kind"].lower(),
                "shortNames": kind["short"],
                "categories": ["spyoptions"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind["columns"],
                    "schema": {
                        "openAPIV3Schema": obj(
                            kind["doc"],
                            {
                                "apiVersion": s("API version: spyoptions.io/v1alpha1."),
                                "kind": s(f"Kind: {kind['kind']}."),
                                "metadata": {"type": "object"},
                                "spec": kind["spec"],
                                "status": kind["status"],
                            },
                            ["spec"],
                            **{
                                "x-kubernetes-validations": [
                                    {
                                        # Children add suffixes ("-headless", "-detector")
                                        # and the name becomes a label value (<= 63).
                                        "rule": "self.metadata.name.size() <= 50",
                                        "message": "metadata.name must be at most 50 characters",
                                        "reason": "FieldValueInvalid",
                                    }
                                ]
                            },
                        )
                    },
                }
            ],
        },
    }


HEADER = "# Generated by crds/generate.py; edit that file and run `make crds`.\n"


def render(kind: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


DOCS_INTRO = """# API reference: spyoptions.io/v1alpha1

Generated by `crds/generate.py` from the same source as the CRDs (`make crds`); do not
edit by hand. `kubectl explain <kind>.<field>` prints the same descriptions. All three
kinds are namespaced, have a `status` subresource written only by the operator, belong
to the category `spyoptions` (`kubectl get spyoptions`), and report conditions per the
Kubernetes API conventions (see [safety-gate.md](safety-gate.md) for what each
condition means). Examples that apply as they are: [examples/](../examples/).
"""


def _type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = str(schema.get("type", ""))
    if kind == "array":
        return f"[]{_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[string]{_type(schema['additionalProperties'])}"
    return kind


def _rules(schema: Schema, required: bool) -> str:
    parts = ["**required**"] if required else []
    if "default" in schema:
        parts.append(f"default `{json.dumps(schema['default'])}`")
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for key, label in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema and not schema.get("x-kubernetes-int-or-string"):
        parts.append(f"pattern `{schema['pattern']}`")
    if schema.get("format"):
        parts.append(f"format {schema['format']}")
    for rule in schema.get("x-kubernetes-validations", []):
        parts.append(f"rule: {rule['message']}")
    return "; ".join(parts)


def _rows(schema: Schema, path: str, required: bool = False) -> list[str]:
    desc = str(schema.get("description", "")).replace("|", "\\|")
    rows = [f"| `{path}` | {_type(schema)} | {_rules(schema, required)} | {desc} |"]
    if isinstance(schema.get("items"), dict) and schema["items"].get("properties"):
        schema, path = schema["items"], f"{path}[]"
    req = set(schema.get("required", []))
    for key, sub in (schema.get("properties") or {}).items():
        rows += _rows(sub, f"{path}.{key}", key in req)
    return rows


def render_docs() -> str:
    out = [DOCS_INTRO]
    for kind in KINDS:
        out.append(f"\n## {kind['kind']} (`{kind['plural']}`, short name `{kind['short'][0]}`)\n")
        out.append(kind["doc"] + "\n")
        cols = ", ".join(
            f"{col['name']}{' (wide)' if col.get('priority') else ''}" for col in kind["columns"]
        )
        out.append(f"`kubectl get {kind['plural']}` columns: {cols}.\n")
        for part in ("spec", "status"):
            out.append(f"\n### {part}\n")
            for rule in kind[part].get("x-kubernetes-validations", []):
                out.append(f"- Rule (CEL `{rule['rule']}`): {rule['message']}")
            out.append("\n| field | type | validation and default | description |")
            out.append("|---|---|---|---|")
            out += _rows(kind[part], part)[1:]
    return "\n".join(out) + "\n"


def defaults_of(schema: Schema, path: str) -> dict[str, Any]:
    """Every `default` in a schema by dotted path (spec.mode, spec.vpn.required, ...)."""
    out: dict[str, Any] = {}
    if "default" in schema:
        out[path] = schema["default"]
    for key, sub in (schema.get("properties") or {}).items():
        out.update(defaults_of(sub, f"{path}.{key}"))
    return out


DEFAULTS_HEADER = '''"""Schema defaults of the three CRDs, by kind and dotted path. Generated by
crds/generate.py (`make crds`) from the same source as the CRDs; do not edit.

The apiserver applies these to stored objects; spy_operator.api applies the same
values when it builds its typed views, so an object read before a default existed (or
a parent object that was absent) gets the same answer from one place.
"""

from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
'''


def render_defaults() -> str:
    lines = [DEFAULTS_HEADER]
    for kind in KINDS:
        lines.append(f'    "{kind["kind"]}": {{\n')
        for path, value in defaults_of(kind["spec"], "spec").items():
            literal = json.dumps(value) if isinstance(value, str) else repr(value)
            lines.append(f'        "{path}": {literal},\n')
        lines.append("    },\n")
    lines.append("}\n")
    return "".join(lines)


def main(argv: list[str]) -> int:
    root = Path(__file__).parent.parent
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    for kind in KINDS:
        (out_dir / f"{kind['plural']}.yaml").write_text(render(kind))
    docs = Path(argv[2]) if len(argv) > 2 else root / "docs" / "api.md"
    docs.write_text(render_docs())
    defaults = Path(argv[3]) if len(argv) > 3 else root / "operator/spy_operator/crd_defaults.py"
    defaults.write_text(render_defaults())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
