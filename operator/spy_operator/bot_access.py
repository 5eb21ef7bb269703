"""The bot's own API identity: a ServiceAccount, a Role and a RoleBinding per TradingBot.

Pure builders, called by reconcile_bot.py (which server-side applies them through
writes.apply_owned before the bot's Deployment). The Role allows `get` and `watch` on
that one TradingBot (`resourceNames`) and nothing else: the bot reads its own object
before every order (docs/bot.md, "Defence in depth") and can read no other bot, list
nothing and write nothing. The operator may grant only what it holds itself (RBAC
escalation check), and it holds get/watch on tradingbots. All three are owned by the
TradingBot, so garbage collection removes them with it.
"""

from __future__ import annotations

from spy_operator import constants as c
from spy_operator.api import TradingBot
from spy_operator.builders import Manifest, child_metadata

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
BOT_VERBS = ("get", "watch")


def bot_service_account_name(bot_name: str) -> str:
    """Also the Role's and the RoleBinding's name (one identity per bot)."""
    return f"{bot_name}-bot"


def build_bot_service_account(bot: TradingBot) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": child_metadata(bot.meta, bot_service_account_name(bot.meta.name)),
        # Only the bot's pod mounts a token (the Deployment says so); no other pod
        # that happens to run as this account gets one by default.
        "automountServiceAccountToken": False,
    }


def build_bot_role(bot: TradingBot) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": child_metadata(bot.meta, bot_service_account_name(bot.meta.name)),
        "rules": [
            {
                "apiGroups": [c.GROUP],
                "resources": [c.PLURAL[c.KIND_BOT]],
                "resourceNames": [bot.meta.name],
                "verbs": list(BOT_VERBS),
            }
        ],
    }


def build_bot_role_binding(bot: TradingBot) -> Manifest:
    name = bot_service_account_name(bot.meta.name)
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": child_metadata(bot.meta, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": bot.meta.namespace}],
    }


def build_bot_access(bot: TradingBot) -> list[Manifest]:
    """In apply order: the binding refers to the Role and the account by name."""
    return [build_bot_service_account(bot), build_bot_role(bot), build_bot_role_binding(bot)]
