"""Schema building blocks shared by the three CRDs: typed field helpers, the pull
secret, quantity, resources, VPN probe and conditions sub-schemas, the common status and
printer columns. Written once here so the kinds cannot drift apart; used by the per-kind
modules beside this one (tradingbot.py, ibgateway.py, optionsdetector.py).
"""

from __future__ import annotations

from typing import Any

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
