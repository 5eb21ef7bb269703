"""The bot's working orders against the fake IB Gateway and the real Kubernetes API: a
halt mid-order cancels, a reconnect mid-order keeps following the order, and shutdown
cancels what is working and closes the audit.

The fake gateway and the TradingBot's status are set up as test_bot_orders.py says.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bot_support import (
    anomaly,
    armed_tradingbot,
    disarm,
    start_bot,
    until,
)
from k8s_support import Cluster, Kubectl
from spy_bot.risk import Mode
from spy_dev.fake_tws import FakeTWS

pytestmark = pytest.mark.cluster


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
