"""Browser tests of dashboard/'s realtime hub connection: reconnect after the connection
drops (with the history reload bringing what was missed), the backoff and the browser's
online event, and the json.webpubsub.azure.v1 protocol details. Fixtures in
conftest.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import dashboard_seed as seed
from dashboard_support import (
    LIVE,
    Backend,
    TcpProxy,
    feed_row,
    open_dashboard,
)
from playwright.sync_api import Page


def test_reconnects_after_the_hub_connection_drops(
    page: Page, backend: Backend, proxy: TcpProxy, seeded: seed.Seed
) -> None:
    open_dashboard(page, proxy)
    # Cut every connection and refuse new ones for a moment (a network blip).
    proxy.refusing = True
    try:
        assert proxy.drop_all() > 0
        page.wait_for_selector("#conn[data-state='reconnecting']", timeout=3_000)
        assert re.search(r"Reconnecting in \d+ s \(attempt \d+\)", page.inner_text("#conn"))
        # Published while the dashboard is away: only the history reload can bring it.
        missed = seed.anomaly(datetime.now(UTC), seeded.expiries[1], 605.0, "P", severity="MEDIUM")
        backend.ingest(anomalies=[missed])
        page.wait_for_timeout(800)  # absence can only be observed over a window
        assert page.locator(feed_row(page, missed["id"])).count() == 0
    finally:
        proxy.refusing = False
    page.wait_for_selector(LIVE, timeout=10_000)
    page.wait_for_selector(feed_row(page, missed["id"]), timeout=3_000)
    # Joined the group again: live messages flow.
    after = seed.anomaly(datetime.now(UTC), seeded.expiries[0], 598.0, "P", severity="LOW")
    backend.ingest(anomalies=[after])
    page.wait_for_selector(feed_row(page, after["id"]), timeout=2_000)


def test_backoff_doubles_and_online_event_reconnects(
    page: Page, proxy: TcpProxy, seeded: seed.Seed
) -> None:
    """Negotiate failing: each retry waits in [cap/2, cap], cap = 0.5 s x 2^(attempt-1)."""
    page.route("**/api/v1/negotiate", lambda route: route.fulfill(status=503, json={}))
    page.goto(proxy.url + "/")
    # Read state and delay in one evaluation: between retries the state is "connecting".
    waiting = """n => {
      const c = window.spyDashboard?.state.conn;
      return c?.name === 'reconnecting' && c.info.attempt === n && c.info.delayMs;
    }"""
    delays = [
        page.wait_for_function(waiting, arg=attempt, timeout=5_000).json_value()
        for attempt in (1, 2, 3)
    ]
    for attempt, delay in enumerate(delays, start=1):
        cap = 500 * 2 ** (attempt - 1)
        assert cap / 2 <= delay <= cap, (attempt, delays)
    # The network is back: the browser's online event reconnects without waiting.
    page.unroute("**/api/v1/negotiate")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector(LIVE, timeout=1_000)


def test_web_pubsub_protocol_details(page: Page, proxy: TcpProxy, seeded: seed.Seed) -> None:
    """Against a scripted Azure-shaped peer: a refused join shows and is retried, text
    frames carrying JSON are parsed, other groups and junk frames are ignored."""
    page.route(
        "**/api/v1/negotiate",
        lambda route: route.fulfill(
            json={"url": "wss://example.webpubsub.azure.com/client/hubs/spy?access_token=t"}
        ),
    )
    ours = seed.anomaly(datetime.now(UTC), seeded.expiries[2], 640.0, "C", severity="MEDIUM")
    other = seed.anomaly(datetime.now(UTC), seeded.expiries[2], 650.0, "C", severity="HIGH")
    connections: list[Any] = []
    requests: list[dict[str, Any]] = []

    def peer(ws: Any) -> None:
        connections.append(ws)
        ws.send(json.dumps({"type": "system", "event": "connected", "connectionId": "c1"}))

        def on_message(raw: str | bytes) -> None:
            msg = json.loads(raw)
            requests.append(msg)
            if len(connections) == 1:
                error = {"name": "Forbidden", "message": "no role for SPY"}
                ws.send(
                    json.dumps(
                        {"type": "ack", "ackId": msg["ackId"], "success": False, "error": error}
                    )
                )
                return
            ws.send(json.dumps({"type": "ack", "ackId": msg["ackId"], "success": True}))
            ws.send("not json")
            for group, item in (("QQQ", other), ("SPY", ours)):
                envelope = json.dumps({"type": "anomaly", "data": item})
                frame = {"type": "message", "from": "group", "group": group}
                ws.send(json.dumps({**frame, "dataType": "text", "data": envelope}))

        ws.on_message(on_message)

    page.route_web_socket(re.compile(r"wss://example\.webpubsub\.azure\.com/.*"), peer)
    page.goto(proxy.url + "/")
    page.wait_for_selector("#conn[data-state='denied']", timeout=5_000)
    assert "no role for SPY" in page.inner_text("#conn")
    page.wait_for_selector(LIVE, timeout=5_000)
    page.wait_for_selector(feed_row(page, ours["id"]), timeout=2_000)
    assert page.locator(feed_row(page, other["id"])).count() == 0
    assert connections[0].protocols == ["json.webpubsub.azure.v1"]
    assert requests[0] == {"type": "joinGroup", "group": "SPY", "ackId": 1}
