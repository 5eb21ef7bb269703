"""The bot against the fake IB Gateway and the real Kubernetes API: a signal gives
exactly one order, duplicates none, and every signal exactly one decision line (also
after an internal error); stale signals and a live account in paper mode are refused.
Risk refusals are test_bot_refusals.py; orders in flight (halt, reconnect, shutdown)
are test_bot_orders_in_flight.py.

IB Gateway cannot run here, so spy_dev.fake_tws stands in: it speaks the real TWS wire
protocol (placeOrder, openOrder, orderStatus, execDetails, what-if, cancel, positions,
P&L) to the real ib_async client. The bot's own TradingBot lives on the real local
control plane; each test writes the status the operator would write.
"""

from __future__ import annotations

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
from spy_bot.broker import order_ref
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
