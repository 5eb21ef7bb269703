"""TradingBot's child: the bot Deployment, whose replicas are the gate's decision and
nothing else, and its environment. Pure; called by reconcile_bot.py (and enforce.py
for the Deployment's name).
"""

from __future__ import annotations

import json
from typing import Any

from spy_operator import constants as c
from spy_operator.api import TradingBot
from spy_operator.builders.metadata import Manifest, child_metadata, labels, selector
from spy_operator.builders.pods import _container, _env, _pod_spec


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
