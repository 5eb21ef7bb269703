"""The bot's refusals against the fake IB Gateway and the real Kubernetes API: each risk
limit with its reason, NYSE hours, its own TradingBot not armed now, the daily-loss
halt until a human resets it, and the circuit breaker after consecutive rejects.

The fake gateway and the TradingBot's status are set up as test_bot_orders.py says.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from bot_support import (
    ROOMY,
    anomaly,
    armed_tradingbot,
    start_bot,
    until,
)
from k8s_support import Cluster, Kubectl
from spy_bot.risk import Mode
from spy_bot.strategy import Rule, Strategy
from spy_dev.fake_tws import FakeTWS

pytestmark = pytest.mark.cluster


SATURDAY = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("limits", "signal_kw", "strategy_quantity", "reason"),
    [
        (replace(ROOMY, max_contracts_per_order=1), {}, 2, "TooManyContracts"),
        (replace(ROOMY, max_order_notional=100), {}, 1, "NotionalTooLarge"),
        (replace(ROOMY, min_dte=10), {}, 1, "DTEOutOfRange"),
        (replace(ROOMY, allowed_rights=("P",)), {}, 1, "RightNotAllowed"),
        (replace(ROOMY, allowed_symbols=("QQQ",)), {}, 1, "SymbolNotAllowed"),
        (
            replace(ROOMY, max_position_per_expiry=1),
            {"quantity_first": 1},
            1,
            "PositionLimitPerExpiry",
        ),
        (
            replace(ROOMY, max_contracts=1),
            {"quantity_first": 1, "other_expiry": True},
            1,
            "PositionLimit",
        ),
        (
            replace(ROOMY, max_orders_per_minute=1),
            {"quantity_first": 1, "other_expiry": True},
            1,
            "RateLimited",
        ),
        (
            replace(ROOMY, max_open_orders=1),
            {"quantity_first": 1, "manual": True, "other_expiry": True},
            1,
            "TooManyOpenOrders",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_each_limit_refuses_with_its_reason(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS,
    limits: object, signal_kw: dict[str, object], strategy_quantity: int, reason: str,
) -> None:  # fmt: skip
    armed_tradingbot(kubectl, namespace)
    rule = Rule("fade", "iv_residual", "HIGH", "fade", quantity=strategy_quantity)
    h = await start_bot(cluster, tws, namespace, limits=limits, strategy=Strategy("t", (rule,)))  # type: ignore[arg-type]
    if signal_kw.get("manual"):
        tws.book.fill_mode = "manual"
    if signal_kw.get("quantity_first"):
        await h.handle(anomaly(tws.chain, strike=595.0))
        assert h.last_decision()["decision"] == "order", h.last_decision()
        if not signal_kw.get("manual"):
            await until("filled", lambda: tws.book.placed()[0].status == "Filled")
    before = len(tws.book.placed())
    index = 2 if signal_kw.get("other_expiry") else 1
    await h.handle(anomaly(tws.chain, expiry_index=index))
    d = h.last_decision()
    assert (d["decision"], d["reason"]) == ("refuse", reason), d
    assert d["message"]
    assert len(tws.book.placed()) == before, "a refused signal placed an order"
    h.bot.broker.disconnect()


async def test_outside_nyse_hours_refuses(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(
        cluster, tws, namespace, limits=replace(ROOMY, trading_hours=True), clock=lambda: SATURDAY
    )
    await h.handle(anomaly(tws.chain, ts=SATURDAY))
    assert h.last_decision()["reason"] == "OutsideTradingHours"
    assert tws.book.placed() == []
    h.bot.broker.disconnect()


async def test_refuses_unless_its_tradingbot_is_armed_now(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace, armed=False, expires_in=3600)
    h = await start_bot(cluster, tws, namespace)
    await h.handle(anomaly(tws.chain))
    assert h.last_decision()["reason"] == "NotArmed"
    # spec armed, but the operator has not opened the gate (status for an old generation)
    kubectl(
        "patch",
        "tradingbot",
        "bot",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"armed": true}}',
    )
    await h.handle(anomaly(tws.chain, strike=595.0))
    assert h.last_decision()["reason"] == "StatusStale"
    # an object the bot cannot read (deleted / wrong name): fail closed
    h_missing = await start_bot(cluster, tws, namespace, name="no-such-bot", client_id=12)
    await h_missing.handle(anomaly(tws.chain, strike=590.0))
    assert h_missing.last_decision()["reason"] == "TradingBotUnreadable"
    assert "404" in h_missing.last_decision()["message"]
    assert tws.book.placed() == []
    h.bot.broker.disconnect()
    h_missing.bot.broker.disconnect()


async def test_daily_loss_halts_until_a_human_resets(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    await h.bot.check_armed()  # remembers the (absent) reset annotation
    tws.book.fill_mode = "manual"
    await h.handle(anomaly(tws.chain))
    working = tws.book.placed()[0]
    tws.set_pnl(-1200.0, -700.0, -500.0)  # past maxDailyLoss 1000, pushed by IB
    await until("halted", lambda: h.bot.state.mode is Mode.HALTED)
    await until("working order cancelled by the halt", lambda: working.status == "Cancelled")
    assert h.audit.of("risk_state")[-1]["mode"] == "HALTED"
    await h.handle(anomaly(tws.chain, strike=595.0))
    assert h.last_decision()["reason"] == "RiskHalted"
    tws.set_pnl(+300.0)  # a recovery does not lift it
    await asyncio.sleep(0.2)
    await h.bot.check_armed()
    assert h.bot.state.mode is Mode.HALTED
    kubectl(
        "annotate",
        "tradingbot",
        "bot",
        "-n",
        namespace,
        "spyoptions.io/risk-reset=alice-2026-12-02T16:00Z",
    )
    await h.bot.check_armed()
    assert h.bot.state.mode is Mode.ACTIVE
    assert h.audit.of("reset")[0]["by_annotation"] == "alice-2026-12-02T16:00Z"
    tws.book.fill_mode = "auto"
    await h.handle(anomaly(tws.chain, strike=590.0))
    assert h.last_decision()["decision"] == "order", h.last_decision()
    h.bot.broker.disconnect()


async def test_circuit_breaker_after_consecutive_rejects(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace, limits=replace(ROOMY, max_consecutive_rejects=2))
    tws.book.reject_next = 2
    await h.handle(anomaly(tws.chain, strike=600.0))
    await until("first reject", lambda: h.bot.state.consecutive_rejects == 1)
    await h.handle(anomaly(tws.chain, strike=595.0))
    await until("halted by the breaker", lambda: h.bot.state.mode is Mode.HALTED)
    assert "consecutive rejects" in h.audit.of("risk_state")[-1]["reason"]
    await h.handle(anomaly(tws.chain, strike=590.0))
    assert h.last_decision()["reason"] == "RiskHalted"
    assert tws.book.placed() == [] and len(tws.book.rejected) == 2
    h.bot.broker.disconnect()
