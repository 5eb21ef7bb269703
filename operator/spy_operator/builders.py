"""Desired children of each custom resource, as plain manifests. Pure functions.

`build_<child>(view, ...)` takes the CR's typed view (api.py) and the facts the
reconciler gathered and returns the manifest the operator server-side applies. Names
are deterministic; every child has an ownerReference to its CR (so garbage
collection removes it) and the standard labels.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from spy_operator import constants as c
from spy_operator.api import IBGateway, Meta, OptionsDetector, TradingBot

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


def owner_reference(meta: Meta) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": meta.kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(meta: Meta, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": meta.namespace,
        "labels": labels(meta.kind, meta.name),
        "ownerReferences": [owner_reference(meta)],
    }


def desired_hash(manifest: Manifest) -> str:
    """Stable hash of a manifest, stored on the child to detect spec changes cheaply."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _pod_spec(pull_secrets: tuple[str, ...], **fields: Any) -> dict[str, Any]:
    """No API token unless `fields` says otherwise: only the bot reads the API."""
    pod: dict[str, Any] = {
        "securityContext": _pod_security(),
        "automountServiceAccountToken": False,
    }
    if pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
    pod.update(fields)
    return pod


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


def _container(resources: Any, **fields: Any) -> dict[str, Any]:
    """A container with the hardened security context and the CR's resources, if any."""
    container: dict[str, Any] = {**fields, "securityContext": _container_security()}
    if resources:
        container["resources"] = {k: dict(v) for k, v in resources.items()}
    return container


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def gateway_endpoint(namespace: str, gateway: str, port: int) -> str:
    return f"{gateway}.{namespace}.svc:{port}"


# --------------------------------------------------------------------------- IBGateway


def build_gateway_statefulset(gw: IBGateway) -> Manifest:
    name = gw.meta.name
    port = gw.api_port
    creds = gw.credentials_secret
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": gw.storage_size}},
    }
    if gw.storage_class:
        pvc_spec["storageClassName"] = gw.storage_class
    env = _env(
        {
            "TRADING_MODE": gw.trading_mode.value,
            "READ_ONLY_API": "yes" if gw.read_only_api else "no",
            "TWS_API_PORT": str(port),
            "TIME_ZONE": gw.timezone,
        }
    )
    if gw.daily_restart_time:
        env.append({"name": "AUTO_RESTART_TIME", "value": gw.daily_restart_time})
    # Credentials are referenced, never copied: the operator does not read them.
    env += [
        {"name": "TWS_USERID", "valueFrom": {"secretKeyRef": {"name": creds, "key": "username"}}},
        {"name": "TWS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": creds, "key": "password"}}},
    ]
    container = _container(
        gw.resources,
        name="ib-gateway",
        image=gw.image,
        env=env,
        ports=[{"name": "tws-api", "containerPort": port, "protocol": "TCP"}],
        readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 10},
        volumeMounts=[{"name": "settings", "mountPath": "/home/ibgateway/Jts"}],
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(gw.meta, name),
        "spec": {
            "replicas": 1,
            # Owned by the operator: an OnDelete or a partition set by hand would leave
            # a pod in the old trading mode running while the spec says otherwise.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "serviceName": f"{name}-headless",
            "selector": {"matchLabels": selector(c.KIND_GATEWAY, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_GATEWAY, name)},
                "spec": _pod_spec(gw.pull_secrets, containers=[container]),
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "settings"}, "spec": pvc_spec},
            ],
        },
    }


def build_gateway_services(gw: IBGateway) -> list[Manifest]:
    name = gw.meta.name
    port = gw.api_port
    ports = [{"name": "tws-api", "port": port, "targetPort": port, "protocol": "TCP"}]
    sel = selector(c.KIND_GATEWAY, name)
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(gw.meta, f"{name}-headless"),
        "spec": {"clusterIP": "None", "selector": sel, "ports": ports},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(gw.meta, name),
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


def analytics_overrides(thresholds: Any) -> dict[str, Any]:
    return {THRESHOLD_PATHS[k]: v for k, v in sorted(thresholds.items()) if k in THRESHOLD_PATHS}


def _detector_env(
    det: OptionsDetector, client_ids: list[int], gateway_port_: int
) -> list[dict[str, Any]]:
    """The detector's environment: names and meanings as spy_detector.settings reads them
    (docs/detector.md)."""
    ns = det.meta.namespace
    gw = det.gateway
    env = _env(
        {
            "SPY_SOURCE": "ibkr",
            "SPY_SYMBOL": det.symbol,
            "SPY_SHARD_COUNT": str(det.shards),
            "SPY_IB_HOST": f"{gw}.{ns}.svc",
            "SPY_IB_PORT": str(gateway_port_),
            # Shard i connects as SPY_IB_CLIENT_ID_BASE + i; the operator reserves the
            # block on the gateway (clientids.py).
            "SPY_IB_CLIENT_ID_BASE": str(client_ids[0] if client_ids else 0),
            "SPY_IB_MARKET_DATA_TYPE": det.market_data_type,
            "SPY_DTE_MIN": str(det.min_dte),
            "SPY_DTE_MAX": str(det.max_dte),
            "SPY_STRIKE_RANGE": str(det.strike_percent),
            "SPY_THRESHOLDS": json.dumps(analytics_overrides(det.thresholds)),
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
    if det.dividends:
        schedule = ",".join(f"{date}:{amount:g}" for date, amount in det.dividends)
        env.append({"name": "SPY_DIVIDENDS", "value": schedule})
    if det.projected_quarterly is not None:
        env.append({"name": "SPY_DIVIDEND_QUARTERLY", "value": f"{det.projected_quarterly:g}"})
    if det.backend_url:
        env.append({"name": "SPY_BACKEND_URL", "value": det.backend_url})
    if det.token_secret:
        ref = {"name": det.token_secret, "key": det.token_key}
        env.append({"name": "SPY_BACKEND_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    return env


def build_detector_statefulset(
    det: OptionsDetector, client_ids: list[int], gateway_port_: int
) -> Manifest:
    name = det.meta.name
    shards = det.shards
    env = _detector_env(det, client_ids, gateway_port_)
    container = _container(
        det.resources,
        name="detector",
        image=det.image,
        args=["run"],
        env=env,
        ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}},
        livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(det.meta, f"{name}-detector"),
        "spec": {
            "replicas": shards,
            "serviceName": f"{name}-detector",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(c.KIND_DETECTOR, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_DETECTOR, name)},
                "spec": _pod_spec(det.pull_secrets, containers=[container]),
            },
        },
    }


# -------------------------------------------------------------------------- TradingBot


def bot_deployment_name(bot_name: str) -> str:
    return f"{bot_name}-bot"


def _bot_env(bot: TradingBot, client_id: int, gateway_port_: int) -> list[dict[str, Any]]:
    """The bot container's environment: what spy_bot.settings reads (docs/bot.md)."""
    name = bot.meta.name
    ns = bot.meta.namespace
    gw = bot.gateway
    env = _env(
        {
            "SPY_TRADINGBOT_NAME": name,
            "SPY_TRADINGBOT_NAMESPACE": ns,
            "SPY_BOT_MODE": bot.mode.value,
            "SPY_IB_HOST": f"{gw}.{ns}.svc",
            "SPY_IB_PORT": str(gateway_port_),
            "SPY_IB_CLIENT_ID": str(client_id),
            "SPY_STRATEGY": json.dumps(bot.strategy, sort_keys=True),
            "SPY_RISK": json.dumps(bot.risk, sort_keys=True),
        }
    )
    # What spy_bot.settings reads beside the above (docs/bot.md).
    env += _env({"SPY_HTTP_PORT": "8080", "SPY_AUDIT_FILE": "/var/log/spy-bot/audit.jsonl"})
    if bot.backend_url:
        env.append({"name": "SPY_BACKEND_URL", "value": bot.backend_url})
    if bot.token_secret:  # the audit lines also go to the backend (docs/bot.md)
        ref = {"name": bot.token_secret, "key": bot.token_key or "token"}
        env.append({"name": "SPY_BACKEND_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    return env


def build_bot_deployment(
    bot: TradingBot, replicas: int, client_id: int, gateway_port_: int
) -> Manifest:
    """The bot's Deployment. `replicas` is the gate's decision and nothing else.

    Only `replicas` depends on arming; the pod template does not, so arming or
    disarming never rolls the pod. Recreate: two live bots would double orders.
    """
    if replicas not in (0, 1):
        raise ValueError(f"a bot runs 0 or 1 replicas, not {replicas}")
    name = bot.meta.name
    container = _container(
        bot.resources,
        name="bot",
        image=bot.image,
        env=_bot_env(bot, client_id, gateway_port_),
        ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}},
        livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}},
        volumeMounts=[{"name": "audit", "mountPath": "/var/log/spy-bot"}],
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(bot.meta, bot_deployment_name(name)),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector(c.KIND_BOT, name)},
            "template": {
                "metadata": {"labels": labels(c.KIND_BOT, name)},
                "spec": _pod_spec(
                    bot.pull_secrets,
                    # bot_access.py: may get/watch this one TradingBot, nothing else.
                    serviceAccountName=bot_deployment_name(name),
                    automountServiceAccountToken=True,
                    terminationGracePeriodSeconds=30,
                    containers=[container],
                    volumes=[{"name": "audit", "emptyDir": {}}],
                ),
            },
        },
    }
