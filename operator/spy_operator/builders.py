"""Desired children of each custom resource, as plain manifests. Pure functions.

`build_<child>(obj, ...)` takes the CR (a dict as read from the API) and the facts the
reconciler gathered and returns the manifest the operator server-side applies. Names
are deterministic; every child has an ownerReference to its CR (so garbage
collection removes it) and the standard labels.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from spy_operator import constants as c

Manifest = dict[str, Any]


def labels(kind: str, name: str) -> dict[str, str]:
    return {
        c.LABEL_NAME: c.COMPONENT[kind],
        c.LABEL_INSTANCE: name,
        c.LABEL_COMPONENT: c.COMPONENT[kind],
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }


def selector(kind: str, name: str) -> dict[str, str]:
    return {c.LABEL_COMPONENT: c.COMPONENT[kind], c.LABEL_INSTANCE: name}


def owner_reference(obj: Manifest) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": c.API_VERSION,
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(obj: Manifest, name: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": labels(obj["kind"], meta["name"]),
        "ownerReferences": [owner_reference(obj)],
    }


def desired_hash(manifest: Manifest) -> str:
    """Stable hash of a manifest, stored on the child to detect spec changes cheaply."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _pod_spec(spec: Manifest, **fields: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"securityContext": _pod_security()}
    secrets = [{"name": r["name"]} for r in spec.get("imagePullSecrets") or [] if "name" in r]
    if secrets:
        pod["imagePullSecrets"] = secrets
    pod.update(fields)
    return pod


def _resources(spec: Manifest) -> dict[str, Any]:
    res = spec.get("resources") or {}
    return {k: dict(v) for k, v in res.items() if k in ("requests", "limits") and v}


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _container(spec: Manifest, **fields: Any) -> dict[str, Any]:
    """A container with the hardened security context and the CR's resources, if any."""
    container: dict[str, Any] = {**fields, "securityContext": _container_security()}
    if res := _resources(spec):
        container["resources"] = res
    return container


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def gateway_endpoint(namespace: str, gateway: str, port: int) -> str:
    return f"{gateway}.{namespace}.svc:{port}"


# --------------------------------------------------------------------------- IBGateway


def gateway_port(gw: Manifest) -> int:
    return int(gw.get("spec", {}).get("apiPort", 4002))


def build_gateway_statefulset(gw: Manifest) -> Manifest:
    spec = gw.get("spec", {})
    name = gw["metadata"]["name"]
    port = gateway_port(gw)
    creds = spec["credentialsSecretRef"]["name"]
    storage = spec.get("storage") or {}
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(storage.get("size", "1Gi"))}},
    }
    if storage.get("storageClassName"):
        pvc_spec["storageClassName"] = storage["storageClassName"]
    env = _env(
        {
            "TRADING_MODE": spec.get("tradingMode", "paper"),
            "READ_ONLY_API": "yes" if spec.get("readOnlyApi", True) else "no",
            "TWS_API_PORT": str(port),
            "TIME_ZONE": spec.get("timezone", "America/New_York"),
        }
    )
    if spec.get("dailyRestartTime"):
        env.append({"name": "AUTO_RESTART_TIME", "value": spec["dailyRestartTime"]})
    # Credentials are referenced, never copied: the operator does not read them.
    env += [
        {"name": "TWS_USERID", "valueFrom": {"secretKeyRef": {"name": creds, "key": "username"}}},
        {"name": "TWS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": creds, "key": "password"}}},
    ]
    container = _container(
        spec,
        name="ib-gateway",
        image=spec.get("image", "ghcr.io/gnzsnz/ib-gateway:stable"),
        env=env,
        ports=[{"name": "tws-api", "containerPort": port, "protocol": "TCP"}],
        readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 10},
        volumeMounts=[{"name": "settings", "mountPath": "/home/ibgateway/Jts"}],
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(gw, name),
        "spec": {
            "replicas": 1,
            "serviceName": f"{name}-headless",
            "selector": {"matchLabels": selector(c.KIND_GATEWAY, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_GATEWAY, name)},
                "spec": _pod_spec(spec, containers=[container]),
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "settings"}, "spec": pvc_spec},
            ],
        },
    }


def build_gateway_services(gw: Manifest) -> list[Manifest]:
    name = gw["metadata"]["name"]
    port = gateway_port(gw)
    ports = [{"name": "tws-api", "port": port, "targetPort": port, "protocol": "TCP"}]
    sel = selector(c.KIND_GATEWAY, name)
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(gw, f"{name}-headless"),
        "spec": {"clusterIP": "None", "selector": sel, "ports": ports},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(gw, name),
        "spec": {"type": "ClusterIP", "selector": sel, "ports": ports},
    }
    return [headless, service]


# --------------------------------------------------------------------- OptionsDetector

# OptionsDetector spec.thresholds -> spy_analytics setting paths (AnalyzerConfig).
# Only what the user sets is passed; the analytics defaults apply to the rest.
THRESHOLD_PATHS = {
    "ivResidualZ": "iv_residual.bands.low",
    "minVolume": "vol_oi.min_volume",
    "minOpenInterest": "vol_oi.min_open_interest",
    "minPrice": "vol_oi.min_price",
    "volOiRatio": "vol_oi.bands.low",
    "volumeZ": "volume_z.bands.low",
    "spreadBlowoutZ": "spread_blowout.bands.low",
}


def analytics_overrides(thresholds: Manifest) -> dict[str, Any]:
    return {THRESHOLD_PATHS[k]: v for k, v in sorted(thresholds.items()) if k in THRESHOLD_PATHS}


def build_detector_statefulset(
    det: Manifest, client_ids: list[int], gateway_port_: int
) -> Manifest:
    spec = det.get("spec", {})
    name = det["metadata"]["name"]
    ns = det["metadata"]["namespace"]
    shards = int(spec.get("shards", 1))
    window = spec.get("expiryWindow") or {}
    gw = spec["gatewayRef"]["name"]
    # Names and meanings as spy_detector.settings reads them (docs/detector.md).
    env = _env(
        {
            "SPY_SOURCE": "ibkr",
            "SPY_SYMBOL": spec.get("symbol", "SPY"),
            "SPY_SHARD_COUNT": str(shards),
            "SPY_IB_HOST": f"{gw}.{ns}.svc",
            "SPY_IB_PORT": str(gateway_port_),
            # Shard i connects as SPY_IB_CLIENT_ID_BASE + i; the operator reserves the
            # block on the gateway (clientids.py).
            "SPY_IB_CLIENT_ID_BASE": str(client_ids[0] if client_ids else 0),
            "SPY_IB_MARKET_DATA_TYPE": spec.get("marketDataType", "delayed"),
            "SPY_DTE_MIN": str(window.get("minDte", 0)),
            "SPY_DTE_MAX": str(window.get("maxDte", 60)),
            "SPY_STRIKE_RANGE": str((spec.get("strikeWindow") or {}).get("percent", 0.1)),
            "SPY_THRESHOLDS": json.dumps(analytics_overrides(spec.get("thresholds") or {})),
            "SPY_HTTP_PORT": "8080",
        }
    )
    env.append(
        {
            "name": "SPY_SHARD_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
            },
        }
    )
    backend = spec.get("backend") or {}
    if backend.get("url"):
        env.append({"name": "SPY_BACKEND_URL", "value": backend["url"]})
    token = backend.get("tokenSecretRef")
    if token:
        ref = {"name": token["name"], "key": token.get("key", "token")}
        env.append({"name": "SPY_BACKEND_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    container = _container(
        spec,
        name="detector",
        image=spec["image"],
        args=["run"],
        env=env,
        ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}},
        livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(det, f"{name}-detector"),
        "spec": {
            "replicas": shards,
            "serviceName": f"{name}-detector",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(c.KIND_DETECTOR, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_DETECTOR, name)},
                "spec": _pod_spec(spec, containers=[container]),
            },
        },
    }


# -------------------------------------------------------------------------- TradingBot


def bot_deployment_name(bot: Manifest) -> str:
    return f"{bot['metadata']['name']}-bot"


def build_bot_deployment(
    bot: Manifest, replicas: int, client_id: int, gateway_port_: int
) -> Manifest:
    """The bot's Deployment. `replicas` is the gate's decision and nothing else.

    Only `replicas` depends on arming; the pod template does not, so arming or
    disarming never rolls the pod. Recreate: two live bots would double orders.
    """
    if replicas not in (0, 1):
        raise ValueError(f"a bot runs 0 or 1 replicas, not {replicas}")
    spec = bot.get("spec", {})
    name = bot["metadata"]["name"]
    ns = bot["metadata"]["namespace"]
    gw = (spec.get("gatewayRef") or {}).get("name", "")
    env = _env(
        {
            "SPY_TRADINGBOT_NAME": name,
            "SPY_TRADINGBOT_NAMESPACE": ns,
            "SPY_BOT_MODE": spec.get("mode", "paper"),
            "SPY_IB_HOST": f"{gw}.{ns}.svc",
            "SPY_IB_PORT": str(gateway_port_),
            "SPY_IB_CLIENT_ID": str(client_id),
            "SPY_STRATEGY": json.dumps(spec.get("strategy") or {}, sort_keys=True),
            "SPY_RISK": json.dumps(spec.get("risk") or {}, sort_keys=True),
        }
    )
    container = _container(spec, name="bot", image=spec.get("image", ""), env=env)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(bot, bot_deployment_name(bot)),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector(c.KIND_BOT, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_BOT, name)},
                "spec": _pod_spec(spec, terminationGracePeriodSeconds=30, containers=[container]),
            },
        },
    }
