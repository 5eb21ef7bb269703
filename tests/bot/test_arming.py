"""The bot's own arming check (spy_bot.arming), the NYSE calendar (spy_bot.tradinghours)
and the settings it reads from the operator's env (spy_bot.settings)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from spy_bot.arming import check_armed
from spy_bot.settings import Settings, SettingsError
from spy_bot.tradinghours import is_open

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def armed_object() -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "n", "generation": 3},
        "spec": {
            "armed": True,
            "approval": {"approvedBy": "bob", "expiresAt": "2026-12-02T18:00:00Z"},
        },
        "status": {
            "observedGeneration": 3,
            "armed": True,
            "reason": "Armed",
            "conditions": [
                {"type": "Approved", "status": "True"},
                {"type": "Armed", "status": "True"},
                {"type": "Halted", "status": "False"},
            ],
        },
    }


def edit(path: str, value: Any) -> dict[str, Any]:
    obj = armed_object()
    *parents, last = path.split(".")
    node: Any = obj
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return obj


CASES = [
    ("armed", armed_object(), "Armed"),
    ("unreadable", None, "TradingBotUnreadable"),
    ("no spec", {"metadata": {}}, "TradingBotUnreadable"),
    ("spec disarmed", edit("spec.armed", False), "NotArmed"),
    ("armed as a string", edit("spec.armed", "true"), "NotArmed"),
    ("status for an older generation", edit("metadata.generation", 4), "StatusStale"),
    ("no status", edit("status", KeyError), "StatusStale"),
    ("global halt", edit("status.conditions.2.status", "True"), "GlobalHalt"),
    ("gate closed", edit("status.armed", False), "GateClosed"),
    ("not approved", edit("status.conditions.0.status", "False"), "NotApproved"),
    (
        "expired now though status says armed",
        edit("spec.approval.expiresAt", "2026-12-02T15:59:59Z"),
        "ApprovalExpired",
    ),
    ("unparsable expiry", edit("spec.approval.expiresAt", "tomorrow"), "ApprovalInvalid"),
    (
        "expiry without zone",
        edit("spec.approval.expiresAt", "2026-12-02T18:00:00"),
        "ApprovalInvalid",
    ),
    ("no approval", edit("spec.approval", KeyError), "ApprovalInvalid"),
]


@pytest.mark.parametrize(("name", "obj", "reason"), CASES, ids=[c[0] for c in CASES])
def test_arming_fails_closed(name: str, obj: Any, reason: str) -> None:
    verdict = check_armed(copy.deepcopy(obj), NOW)
    assert verdict.reason == reason
    assert verdict.ok is (reason == "Armed")


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-12-02T15:00:00Z", True),  # Wednesday 10:00 New York
        ("2026-12-02T14:29:00Z", False),  # 09:29, before the bell
        ("2026-12-02T21:00:00Z", False),  # 16:00, closed
        ("2026-12-05T16:00:00Z", False),  # Saturday
        ("2026-12-25T16:00:00Z", False),  # Christmas
        ("2026-11-27T17:30:00Z", True),  # day after Thanksgiving, 12:30
        ("2026-11-27T18:30:00Z", False),  # same day 13:30: half day closed at 13:00
        ("2026-07-03T15:00:00Z", False),  # Independence Day observed (Friday)
        ("2099-01-05T15:00:00Z", False),  # beyond the calendar's data: closed
    ],
)
def test_nyse_hours_from_the_calendar(moment: str, open_: bool) -> None:
    assert is_open(datetime.fromisoformat(moment.replace("Z", "+00:00"))) is open_


BASE = {
    "SPY_TRADINGBOT_NAME": "b",
    "SPY_TRADINGBOT_NAMESPACE": "n",
    "SPY_BACKEND_URL": "http://127.0.0.1:1/",
}


def test_settings_from_the_operators_env() -> None:
    s = Settings.from_env({**BASE, "SPY_RISK": '{"maxDailyLoss": 250}', "SPY_STRATEGY": "{}"})
    assert s.bot == "n/b" and s.mode == "paper" and s.backend_url == "http://127.0.0.1:1"
    assert s.limits.max_daily_loss == 250 and len(s.strategy.rules) == 2


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"SPY_TRADINGBOT_NAME": ""}, "SPY_TRADINGBOT_NAME"),
        ({"SPY_BOT_MODE": "yolo"}, "SPY_BOT_MODE"),
        ({"SPY_BACKEND_URL": ""}, "SPY_BACKEND_URL"),
        ({"SPY_RISK": "{"}, "SPY_RISK"),
        ({"SPY_RISK": '{"maxOpenOrders": 0}'}, "risk.maxOpenOrders"),
        ({"SPY_STRATEGY": '{"rules": [{"action": "fade"}]}'}, "when.kind"),
        ({"SPY_IB_PORT": "x"}, "SPY_IB_PORT"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        Settings.from_env({**BASE, **env})
