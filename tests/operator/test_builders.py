"""Desired-state builders: pure functions from a CR to its children."""

from __future__ import annotations

import json
from typing import Any

import pytest
from spy_operator import bot_access, builders
from spy_operator import constants as c
from spy_operator.api import view


def cr(kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": spec,
    }


BOT = cr(
    "TradingBot",
    {
        "image": "acr.azurecr.io/bot:1",
        "gatewayRef": {"name": "gw"},
        "mode": "paper",
        "risk": {"maxContracts": 2},
        "imagePullSecrets": [{"name": "p"}],
        "resources": {"requests": {"cpu": "100m"}},
    },
)


@pytest.mark.parametrize("replicas", [0, 1])
def test_bot_deployment(replicas: int) -> None:
    dep = builders.build_bot_deployment(view(BOT), replicas, 33, 4002)
    assert dep["metadata"]["name"] == "x-bot"
    assert dep["spec"]["replicas"] == replicas
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert dep["metadata"]["ownerReferences"] == [
        {
            "apiVersion": c.API_VERSION,
            "kind": "TradingBot",
            "name": "x",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod = dep["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["SPY_IB_CLIENT_ID"] == "33" and env["SPY_IB_HOST"] == "gw.ns.svc"
    assert json.loads(env["SPY_RISK"]) == {"maxContracts": 2}
    assert pod["imagePullSecrets"] == [{"name": "p"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m"}}
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )


def test_arming_changes_only_replicas() -> None:
    """Arming must not roll the pod: only spec.replicas may differ."""
    armed = dict(BOT, spec={**BOT["spec"], "armed": True, "approval": {"approvedBy": "b"}})
    off = builders.build_bot_deployment(view(BOT), 0, 1, 4002)
    on = builders.build_bot_deployment(view(armed), 1, 1, 4002)
    assert off["spec"]["template"] == on["spec"]["template"]
    assert builders.desired_hash(off) != builders.desired_hash(on)


def test_bot_identity_reads_only_its_own_bot() -> None:
    """bot_access: ServiceAccount, Role (get/watch on this one bot) and RoleBinding, all
    owned by the bot; the bot's pod runs as it, the only pod that mounts a token."""
    sa, role, binding = bot_access.build_bot_access(view(BOT))
    assert [o["kind"] for o in (sa, role, binding)] == ["ServiceAccount", "Role", "RoleBinding"]
    for obj in (sa, role, binding):
        assert obj["metadata"]["name"] == "x-bot" and obj["metadata"]["namespace"] == "ns"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert role["rules"] == [
        {
            "apiGroups": ["spyoptions.io"],
            "resources": ["tradingbots"],
            "resourceNames": ["x"],
            "verbs": ["get", "watch"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "x-bot",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "x-bot", "namespace": "ns"}]
    assert sa["automountServiceAccountToken"] is False
    pod = builders.build_bot_deployment(view(BOT), 1, 1, 4002)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "x-bot" and pod["automountServiceAccountToken"] is True
    gw = cr("IBGateway", {"credentialsSecretRef": {"name": "c"}, "tradingMode": "paper"})
    gw_pod = builders.build_gateway_statefulset(view(gw))["spec"]["template"]["spec"]
    assert gw_pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in gw_pod


def test_bot_backend_token_is_a_secret_reference() -> None:
    """spec.backend.tokenSecretRef -> SPY_BACKEND_TOKEN from the Secret, never a copy."""
    with_token = dict(
        BOT,
        spec={
            **BOT["spec"],
            "backend": {"url": "http://b:8000", "tokenSecretRef": {"name": "audit"}},
        },
    )
    pod = builders.build_bot_deployment(view(with_token), 0, 1, 4002)["spec"]["template"]
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["SPY_BACKEND_URL"]["value"] == "http://b:8000"
    assert env["SPY_BACKEND_TOKEN"] == {
        "name": "SPY_BACKEND_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "audit", "key": "token"}},
    }
    plain = builders.build_bot_deployment(view(BOT), 0, 1, 4002)["spec"]["template"]
    assert "SPY_BACKEND_TOKEN" not in {e["name"] for e in plain["spec"]["containers"][0]["env"]}


def test_bot_replicas_must_be_zero_or_one() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        builders.build_bot_deployment(view(BOT), 2, 1, 4002)


def test_gateway_children() -> None:
    gw = cr(
        "IBGateway",
        {
            "credentialsSecretRef": {"name": "creds"},
            "tradingMode": "live",
            "readOnlyApi": False,
            "apiPort": 4001,
            "storage": {"size": "2Gi", "storageClassName": "fast"},
            "dailyRestartTime": "23:45",
        },
        name="live",
    )
    sts = builders.build_gateway_statefulset(view(gw))
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "live-headless"
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert (
        claim["resources"]["requests"]["storage"] == "2Gi" and claim["storageClassName"] == "fast"
    )
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRADING_MODE"]["value"] == "live" and env["READ_ONLY_API"]["value"] == "no"
    assert env["AUTO_RESTART_TIME"]["value"] == "23:45"
    assert "value" not in env["TWS_PASSWORD"]  # referenced, never copied
    headless, svc = builders.build_gateway_services(view(gw))
    assert headless["spec"]["clusterIP"] == "None" and svc["metadata"]["name"] == "live"
    assert svc["spec"]["ports"][0]["port"] == 4001
    assert "imagePullSecrets" not in sts["spec"]["template"]["spec"]


def test_detector_statefulset() -> None:
    det = cr(
        "OptionsDetector",
        {
            "image": "d:1",
            "gatewayRef": {"name": "gw"},
            "shards": 3,
            "expiryWindow": {"minDte": 1, "maxDte": 45},
            "thresholds": {"minVolume": 1000, "ivResidualZ": 6},
            "backend": {"url": "http://b:8000", "tokenSecretRef": {"name": "tok"}},
        },
    )
    sts = builders.build_detector_statefulset(view(det), [1, 2, 3], 4002)
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["podManagementPolicy"] == "Parallel"
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SPY_IB_CLIENT_ID_BASE"]["value"] == "1"
    assert env["SPY_DTE_MAX"]["value"] == "45" and env["SPY_SOURCE"]["value"] == "ibkr"
    assert json.loads(env["SPY_THRESHOLDS"]["value"]) == {
        "iv_residual.bands.low": 6,
        "vol_oi.min_volume": 1000,
    }
    assert env["SPY_BACKEND_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "tok", "key": "token"}


def test_threshold_paths_are_real_analytics_settings() -> None:
    """Every CRD threshold maps to a path the detector's AnalyzerConfig accepts."""
    from spy_analytics.config import AnalyzerConfig

    for path in builders.THRESHOLD_PATHS.values():
        AnalyzerConfig().with_overrides({path: 1.0})  # raises KeyError on an unknown path


def test_desired_hash_is_stable_across_key_order() -> None:
    a = {"x": 1, "y": {"b": 2, "a": 1}}
    b = {"y": {"a": 1, "b": 2}, "x": 1}
    assert builders.desired_hash(a) == builders.desired_hash(b)


def test_detector_env_is_what_spy_detector_reads() -> None:
    """Contract with the detector: the StatefulSet's env parses in spy_detector.settings,
    each shard connects with its own id from the reserved block, and the CR's thresholds
    reach the analytics config. valueFrom entries are resolved the way the kubelet would
    (pod-index label -> shard ordinal, secretKeyRef -> the Secret's value)."""
    from spy_analytics.config import AnalyzerConfig
    from spy_detector.settings import Settings

    det = cr(
        "OptionsDetector",
        {
            "image": "d:1",
            "gatewayRef": {"name": "gw"},
            "shards": 3,
            "marketDataType": "delayed-frozen",
            "expiryWindow": {"minDte": 2, "maxDte": 30},
            "strikeWindow": {"percent": 0.05},
            "thresholds": {"minVolume": 1000, "volumeZ": 6},
            "backend": {"url": "http://b:8000", "tokenSecretRef": {"name": "tok"}},
        },
    )
    sts = builders.build_detector_statefulset(view(det), [33, 34, 35], 4002)
    container = sts["spec"]["template"]["spec"]["containers"][0]
    ids = []
    for ordinal in range(3):
        env: dict[str, str] = {}
        for item in container["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in item["valueFrom"]:
                env[item["name"]] = str(ordinal)
            else:
                env[item["name"]] = "s3cret"
        settings = Settings.from_env(env)
        assert settings.source == "ibkr"
        assert settings.shard.index == ordinal and settings.shard.count == 3
        assert (settings.ib.host, settings.ib.port) == ("gw.ns.svc", 4002)
        assert settings.ib.market_data_type == "delayed-frozen"
        assert settings.backend_token == "s3cret"
        assert settings.http_port == container["ports"][0]["containerPort"]
        AnalyzerConfig().with_overrides(settings.analytics_overrides())
        assert settings.analytics_overrides()["vol_oi.min_volume"] == 1000
        ids.append(settings.ib.client_id)
    assert ids == [33, 34, 35]


def test_detector_dividends_reach_the_detector_settings() -> None:
    """OptionsDetector.spec.dividends -> SPY_DIVIDENDS / SPY_DIVIDEND_QUARTERLY, which
    spy_detector.settings parses (the same contract as the other env)."""
    from spy_analytics.dividends import DividendSchedule
    from spy_detector.settings import Settings

    det = cr(
        "OptionsDetector",
        {
            "image": "d:1",
            "gatewayRef": {"name": "gw"},
            "dividends": {
                "schedule": [{"exDate": "2026-12-18", "amount": 1.97}],
                "projectedQuarterly": 1.8,
            },
        },
    )
    sts = builders.build_detector_statefulset(view(det), [1], 4002)
    env = {
        e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SPY_DIVIDENDS"] == "2026-12-18:1.97"
    assert env["SPY_DIVIDEND_QUARTERLY"] == "1.8"
    plain = {k: v for k, v in env.items() if v is not None}
    settings = Settings.from_env({**plain, "SPY_SHARD_INDEX": "0", "SPY_SOURCE": "synthetic"})
    assert settings.dividend_quarterly == 1.8
    assert settings.dividends == DividendSchedule.parse("2026-12-18:1.97")
