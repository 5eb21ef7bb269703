"""IBGateway's children: the gateway StatefulSet (credentials referenced, never
copied) and its two Services. Pure; called by reconcile.reconcile_ibgateway.
"""

from __future__ import annotations

from typing import Any

from spy_operator import constants as c
from spy_operator.api import IBGateway
from spy_operator.builders.metadata import Manifest, child_metadata, labels, selector
from spy_operator.builders.pods import _container, _env, _pod_spec


def gateway_endpoint(namespace: str, gateway: str, port: int) -> str:
    return f"{gateway}.{namespace}.svc:{port}"


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
