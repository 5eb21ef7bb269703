"""OptionsDetector's child: the sharded detector StatefulSet and its environment
(thresholds mapped to spy_analytics setting paths). Pure; called by
reconcile.reconcile_optionsdetector.
"""

from __future__ import annotations

import json
from typing import Any

from spy_operator import constants as c
from spy_operator.api import OptionsDetector
from spy_operator.builders.metadata import Manifest, child_metadata, labels, selector
from spy_operator.builders.pods import _container, _env, _pod_spec

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
