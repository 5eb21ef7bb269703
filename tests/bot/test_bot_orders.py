"""The bot against the fake IB Gateway and the real Kubernetes API.

IB Gateway cannot run here, so spy_dev.fake_tws stands in: it speaks the real TWS wire
protocol (placeOrder, openOrder, orderStatus, execDetails, what-if, cancel, positions,
P&L) to the real ib_async client. The bot's own TradingBot lives on the real local
control plane; each test writes the status the operator would write.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bot_support import (
    ROOMY,
    anomaly,
    armed_tradingbot,
    disarm,
    start_bot,
    until,
)
from k8s_support import Cluster, Kubectl
from spy_bot.broker import order_ref
from spy_bot.risk import Mode
from spy_bot.strategy import Rule, Strategy
from spy_dev.fake_tws import FakeTWS

pytestmark = pytest.mark.cluster


async def test_a_signal_gives_exactly_one_order(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    s = anomaly(tws.chain)
    await h.handle(s)
    ref = order_ref(f"{namespace}/bot", s.id)
    assert h.last_decision()["decision"] == "order", h.last_decision()
    placed = tws.book.placed()
    assert [o.order_ref for o in placed] == [ref]
    order = placed[0]
    # a rich call faded with a credit vertical: SELL the combo BUY 600C / SELL 605C
    assert order.sec_type == "BAG" and order.action == "SELL" and order.quantity == 1
    assert [(leg.action, tws.chain.describe(leg.con_id)[1]) for leg in order.legs] == [
        ("BUY", 600.0),
        ("SELL", 605.0),
    ]
    assert order.order_type == "LMT" and 0 < float(order.lmt_price) < 5
    # what-if first, with the same order
    assert [w.order_ref for w in tws.book.what_ifs] == [ref]
    assert tws.book.what_ifs[0].received_at < order.received_at
    # followed to the fill, and the fill is in the audit
    await until("fill audited", lambda: h.audit.of("fill"))
    statuses = [r["status"] for r in h.audit.of("order_status")]
    assert statuses[-1] == "Filled"
    assert h.audit.of("order")[0]["what_if"]["commission"] > 0
    h.bot.broker.disconnect()


async def test_replayed_or_duplicated_signal_gives_no_order(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    s = anomaly(tws.chain)
    await h.handle(s)
    await h.handle(s)  # duplicated delivery
    assert len(tws.book.placed()) == 1
    assert (
        h.last_decision()["decision"] == "duplicate"
        and h.last_decision()["reason"] == "OrderRefExists"
    )
    await until("filled", lambda: tws.book.placed()[0].status == "Filled")
    h.bot.broker.disconnect()
    # a new process (empty ledger) replays the same signal: the gateway's executions
    # carry the orderRef, so it is still a duplicate
    h2 = await start_bot(cluster, tws, namespace)
    await h2.handle(s)
    assert h2.last_decision()["reason"] == "OrderRefExists"
    assert len(tws.book.placed()) == 1
    h2.bot.broker.disconnect()


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


async def test_halt_mid_order_cancels(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    tws.book.fill_mode = "manual"
    await h.handle(anomaly(tws.chain))
    order = tws.book.placed()[0]
    assert order.status == "Submitted"
    disarm(kubectl, namespace)
    verdict = await h.bot.check_armed()
    assert verdict.reason == "NotArmed"
    await until("cancelled at the gateway", lambda: order.status == "Cancelled")
    cancel = h.audit.of("cancel")
    assert (
        cancel and cancel[0]["order_ref"] == order.order_ref and "NotArmed" in cancel[0]["reason"]
    )
    await until(
        "cancel confirmed in the audit",
        lambda: any(r["status"] == "Cancelled" for r in h.audit.of("order_status")),
    )
    assert h.bot.state.mode is Mode.ACTIVE, "a requested cancel is not a reject"
    h.bot.broker.disconnect()


async def test_reconnect_mid_order(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    tws.book.fill_mode = "manual"
    s = anomaly(tws.chain)
    await h.handle(s)
    order = tws.book.placed()[0]
    keeper = asyncio.create_task(h.bot.keep_connected())
    try:
        tws.drop_connections()
        await until("disconnect noticed", lambda: not h.bot.broker.connected)
        await until("reconnected", lambda: h.bot.broker.connected)
        # the gateway replayed the working order to the new session
        await until(
            "order replayed",
            lambda: any(t.order.orderRef == order.order_ref for t in h.bot.broker.open_trades()),
        )
        await h.handle(s)  # the same signal again after the reconnect
        assert h.last_decision()["decision"] == "duplicate"
        tws.fill(order.order_id)
        await until("fill followed after the reconnect", lambda: h.audit.of("fill"))
        assert len(tws.book.placed()) == 1
    finally:
        keeper.cancel()
        h.bot.broker.disconnect()


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


async def test_every_signal_has_exactly_one_decision_line(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace, limits=replace(ROOMY, max_contracts_per_order=1))
    chain = tws.chain
    signals = [
        anomaly(chain),  # order
        anomaly(chain, kind="vol_oi", strike=595.0),  # order (follow)
        anomaly(chain, severity="LOW", strike=590.0),  # skip: no rule
        anomaly(chain, strike=620.0, expiry_index=0),  # refuse: that contract does not exist
        anomaly(chain, kind="butterfly"),  # skip
    ]
    signals.append(signals[0])  # duplicate
    for s in signals:
        await h.handle(s)
    lines = h.lines()
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1)), "sequence has a gap"
    seen = [r["signal"]["id"] for r in lines if r["event"] == "signal"]
    decided = [r["signal_id"] for r in lines if r["event"] == "decision"]
    assert seen == decided == [s.id for s in signals]
    outcome = [(r["decision"], r["reason"]) for r in lines if r["event"] == "decision"]
    assert outcome == [
        ("order", "Accepted"),
        ("order", "Accepted"),
        ("skip", "NoRuleMatches"),
        ("refuse", "ContractUnavailable"),
        ("skip", "NoRuleMatches"),
        ("duplicate", "OrderRefExists"),
    ]
    orders = [r for r in lines if r["event"] == "order"]
    assert len(orders) == len(tws.book.placed()) == 2
    h.bot.broker.disconnect()


async def test_paper_mode_refuses_a_live_account(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    from bot_support import bot_chain

    live = FakeTWS(bot_chain(), accounts=("U7654321",))
    await live.start()
    try:
        armed_tradingbot(kubectl, namespace)
        h = await start_bot(cluster, live, namespace)
        await h.handle(anomaly(live.chain))
        assert h.last_decision()["reason"] == "AccountNotPaper"
        assert live.book.placed() == [] and live.book.what_ifs == []
        h.bot.broker.disconnect()
    finally:
        await live.stop()


async def test_stale_signal_is_recorded_not_traded(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    await h.handle(anomaly(tws.chain, ts=datetime(2026, 1, 2, tzinfo=UTC)))
    assert h.last_decision()["reason"] == "Stale"
    assert tws.book.placed() == []
    h.bot.broker.disconnect()


async def test_shutdown_cancels_working_orders_and_closes_the_audit(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS, tmp_path: Path
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    tws.book.fill_mode = "manual"
    await h.handle(anomaly(tws.chain))
    await h.handle(anomaly(tws.chain, strike=595.0))
    assert [o.status for o in tws.book.placed()] == ["Submitted", "Submitted"]
    await h.bot.shutdown("SIGTERM", wait=5.0)
    assert [o.status for o in tws.book.placed()] == ["Cancelled", "Cancelled"]
    last = h.lines()[-1]
    assert last["event"] == "shutdown" and last["cancelled"] == 2 and last["still_open"] == []
    assert len(h.audit.of("cancel")) == 2


async def test_an_internal_error_still_gets_a_decision_and_the_next_signal_is_handled(
    cluster: Cluster, kubectl: Kubectl, namespace: str, tws: FakeTWS
) -> None:
    armed_tradingbot(kubectl, namespace)
    h = await start_bot(cluster, tws, namespace)
    real_mids = h.bot.broker.mids

    async def broken(contracts: object) -> list[float]:
        raise KeyError("a bug in quote handling")

    h.bot.broker.mids = broken  # type: ignore[method-assign]  # fault injection
    d = await h.handle(anomaly(tws.chain))
    assert (d["decision"], d["reason"]) == ("refuse", "InternalError") and "KeyError" in d[
        "message"
    ]
    h.bot.broker.mids = real_mids  # type: ignore[method-assign]
    assert (await h.handle(anomaly(tws.chain, strike=595.0)))["decision"] == "order"
    assert len(tws.book.placed()) == 1
    h.bot.broker.disconnect()
