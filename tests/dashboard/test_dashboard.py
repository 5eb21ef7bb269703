"""Browser tests of dashboard/ in headless Debian Chromium against the running backend:
history from the query API, live anomalies over the realtime hub within a second, the
EN/ES toggle on every label (DOM, attributes and text drawn on the canvases), reconnect
after the connection drops, and a screenshot kept under test-artifacts/."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dashboard_seed as seed
from dashboard_support import ARTIFACTS, Backend, PageProblems, TcpProxy
from playwright.sync_api import Page

LIVE = "#conn[data-state='live']"

# A cheap digest of a canvas's pixels, to see that a chart was redrawn differently.
DIGEST_JS = """id => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
  return h;
}"""

# Every piece of text a user can meet except data from the backend (the feed's reasons,
# written by the detector): text nodes, accessible-name attributes, the title, and the
# strings drawn on each canvas (recorded by charts.js as canvas.drawnText).
VISIBLE_TEXT_JS = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest('td.reason, script, style')) out.push(n.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder]')) {
    for (const a of ['aria-label', 'title', 'placeholder']) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  for (const c of document.querySelectorAll('canvas')) out.push(...(c.drawnText || []));
  return out.join('\\n');
}"""


def open_dashboard(page: Page, proxy: TcpProxy) -> None:
    page.goto(proxy.url + "/")
    page.wait_for_selector(LIVE, timeout=10_000)


def feed_row(page: Page, anomaly_id: str) -> str:
    return f"#feed-body tr[data-id='{anomaly_id}']"


def label_pattern(label: str) -> re.Pattern[str]:
    """A label as a regex: placeholders match anything, whole words only."""
    parts = [re.escape(p) for p in re.split(r"\{\w+\}", label)]
    return re.compile(r"(?<!\w)" + ".*?".join(parts) + r"(?!\w)")


def leftover_labels(text: str, strings: dict[str, dict[str, str]], shown: str) -> list[str]:
    """Labels of the other language (where the two differ) still present in `text`."""
    other = "en" if shown == "es" else "es"
    return [
        f"{key}: {strings[other][key]!r}"
        for key in strings[other]
        if strings[other][key] != strings[shown][key]
        and label_pattern(strings[other][key]).search(text)
    ]


def after_next_frame(page: Page) -> None:
    """Return once the browser has run two animation frames, so a repaint requested
    before this call (the dashboard batches them in requestAnimationFrame) is done."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_page_loads_history_without_console_errors(
    page: Page, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    open_dashboard(page, proxy)
    for a in seeded.anomalies:
        page.wait_for_selector(feed_row(page, a["id"]), timeout=5_000)
    assert page.inner_text("#spot") == "600.12"
    # The nearest expiry is selected, and every expiry has a button.
    pressed = page.locator("#expiries button[aria-pressed='true']")
    assert pressed.inner_text().startswith(seeded.expiries[0])
    assert page.locator("#expiries button").count() == len(seeded.expiries)
    assert page.inner_text("#flip") == "596.5"
    # net premium is the signed flow, labelled so (it is not call minus put premium)
    net = page.locator("#net-premium").locator("xpath=..")
    assert net.locator("dt").inner_text() == "Net signed premium"
    assert "Not call premium minus put premium" in (net.get_attribute("title") or "")
    # Each chart drew its data (axis titles on the canvas) and describes it accessibly.
    for chart, title in [("smile", "Implied volatility"), ("gex", "Strike"), ("flow", "Time")]:
        assert title in page.evaluate(f"document.getElementById('{chart}').drawnText")
        assert page.get_attribute(f"#{chart}", "role") == "img"
        assert page.get_attribute(f"#{chart}", "aria-label")
    # The bots endpoint does not exist yet: the panel stays hidden, without a 404.
    assert page.locator("#bots-panel").is_hidden()
    # Every button has an accessible name.
    unnamed = page.evaluate(
        "[...document.querySelectorAll('button')]"
        ".filter(b => !(b.getAttribute('aria-label') || b.textContent).trim()).length"
    )
    assert unnamed == 0
    page.wait_for_timeout(300)  # let late async errors surface
    assert problems.all() == []


def test_ingested_anomaly_in_feed_and_on_smile_within_1s(
    page: Page, backend: Backend, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    open_dashboard(page, proxy)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    after_next_frame(page)  # history painted
    before = page.evaluate(DIGEST_JS, "smile")
    aria_before = page.get_attribute("#smile", "aria-label") or ""
    fresh = seed.anomaly(
        datetime.now(UTC),
        seeded.expiries[0],
        612.0,
        "C",
        severity="HIGH",
        iv_bump=0.05,
        reason="IV test spike: 5.0 sigma above the fitted smile",
    )

    start = time.monotonic()
    backend.ingest(anomalies=[fresh])
    page.wait_for_selector(feed_row(page, fresh["id"]), timeout=1_000)
    page.wait_for_function(
        f"before => ({DIGEST_JS})('smile') !== before", arg=before, timeout=1_000
    )
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"anomaly took {elapsed:.3f} s to reach the feed and the smile"

    row = page.inner_text(feed_row(page, fresh["id"]))
    for part in (f"{seeded.expiries[0]} 612 C", "IV residual", "High", fresh["reason"]):
        assert part in row
    # Newest first, and counted among the smile's marked anomalies.
    assert page.get_attribute("#feed-body tr:first-child", "data-id") == fresh["id"]
    marked = re.search(r"(\d+) anomalies marked", page.get_attribute("#smile", "aria-label") or "")
    marked_before = re.search(r"(\d+) anomalies marked", aria_before)
    assert marked and marked_before and int(marked[1]) == int(marked_before[1]) + 1
    assert "High severity anomaly" in page.inner_text("#announcer")
    assert problems.all() == []


def test_language_toggle_switches_every_label_and_is_remembered(
    page: Page, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    open_dashboard(page, proxy)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    strings: dict[str, dict[str, str]] = page.evaluate("import('/js/i18n.js').then(m => m.STRINGS)")
    assert set(strings["en"]) == set(strings["es"]), "EN and ES must have the same keys"
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "en") == []

    page.click("#lang button[data-lang='es']")
    page.wait_for_function("document.documentElement.lang === 'es'")
    after_next_frame(page)  # charts repaint on the next animation frame
    text = page.evaluate(VISIBLE_TEXT_JS)
    assert leftover_labels(text, strings, "es") == []
    for key in ("smileTitle", "feedTitle", "gexTitle", "flowTitle", "connLive", "smileY", "strike"):
        assert strings["es"][key] in text, key
    assert page.title() == strings["es"]["title"]
    assert "Residuo de VI" in page.inner_text("#feed-body")
    assert page.inner_text("#spot") == "600,12"  # Spanish number format

    page.reload()  # remembered in localStorage
    page.wait_for_selector(LIVE)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.get_attribute("#lang button[data-lang='es']", "aria-pressed") == "true"
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "es") == []

    page.click("#lang button[data-lang='en']")
    page.wait_for_function("document.documentElement.lang === 'en'")
    after_next_frame(page)
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "en") == []
    assert problems.all() == []


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


def test_bots_panel_shows_when_the_backend_has_bots(
    page: Page, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    """The bots endpoint is a later issue's: stand it in at the browser's network layer."""
    bots: list[dict[str, Any]] = [
        {"name": "spy-momentum", "mode": "paper", "armed": True, "reason": "Ready"}
    ]

    def openapi(route: Any) -> None:
        body = route.fetch().json()
        body["paths"]["/api/v1/bots"] = {"get": {}}
        route.fulfill(json=body)

    page.route("**/openapi.json", openapi)
    page.route("**/api/v1/bots", lambda route: route.fulfill(json={"items": bots}))
    open_dashboard(page, proxy)
    page.wait_for_selector("#bots-panel:not([hidden])", timeout=3_000)
    assert page.inner_text("#bots-body").split() == ["spy-momentum", "paper", "Yes", "Ready"]
    assert problems.all() == []


def test_screenshot_artifact(page: Page, proxy: TcpProxy, seeded: seed.Seed) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    open_dashboard(page, proxy)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    after_next_frame(page)
    paths = {"en": ARTIFACTS / "dashboard-en.png", "es": ARTIFACTS / "dashboard-es.png"}
    page.screenshot(path=str(paths["en"]), full_page=True)
    page.click("#lang button[data-lang='es']")
    after_next_frame(page)
    page.screenshot(path=str(paths["es"]), full_page=True)
    # One column below 1000 px: the feed must keep its rows visible, not collapse.
    page.set_viewport_size({"width": 820, "height": 1000})
    after_next_frame(page)
    paths["narrow"] = ARTIFACTS / "dashboard-narrow-es.png"
    page.screenshot(path=str(paths["narrow"]), full_page=True)
    feed = page.locator("#feed-panel .scroll").bounding_box()
    assert feed and feed["height"] > 150, feed
    for path in paths.values():
        assert path.stat().st_size > 20_000, f"{path} looks empty"


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


def test_history_error_is_shown_and_clears_when_storage_recovers(
    page: Page, proxy: TcpProxy, seeded: seed.Seed
) -> None:
    """The query API answers 503 while storage is down: say so, keep the live feed, and
    retry until the history loads."""
    page.route(
        "**/api/v1/gex?*",
        lambda route: route.fulfill(status=503, json={"detail": "storage unavailable; retry"}),
    )
    open_dashboard(page, proxy)
    page.wait_for_selector("#history-error:not([hidden])", timeout=3_000)
    assert "HTTP 503" in page.inner_text("#history-error")
    assert page.inner_text("#flip") == "—"
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))  # the rest loaded
    page.unroute("**/api/v1/gex?*")
    page.wait_for_selector("#history-error", state="hidden", timeout=7_000)
    assert page.inner_text("#flip") == "596.5"
    # net premium is the signed flow, labelled so (it is not call minus put premium)
    net = page.locator("#net-premium").locator("xpath=..")
    assert net.locator("dt").inner_text() == "Net signed premium"
    assert "Not call premium minus put premium" in (net.get_attribute("title") or "")


def test_feed_filter_and_keyboard_jump_to_the_smile(
    page: Page, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    open_dashboard(page, proxy)
    vol_oi = seeded.anomalies[2]  # on the second expiry, HIGH
    page.wait_for_selector(feed_row(page, vol_oi["id"]))

    page.select_option("#min-severity", "2")  # High only
    # The feed repaints on the next animation frame: wait for it, then check every row.
    page.wait_for_function(
        "() => { const s = [...document.querySelectorAll('#feed-body .sev')];"
        " return s.length > 0 && s.every((e) => e.textContent === 'High'); }"
    )
    severities = page.locator("#feed-body .sev").all_inner_texts()
    assert severities and set(severities) == {"High"}

    # Keyboard only: focus the contract button of the row, press Enter.
    page.focus(f"{feed_row(page, vol_oi['id'])} button")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "exp => document.getElementById('smile').getAttribute('aria-label').includes(exp)",
        arg=seeded.expiries[1],
    )
    pressed = page.locator("#expiries button[aria-pressed='true']").inner_text()
    assert pressed.startswith(seeded.expiries[1])
    assert "selected" in (page.get_attribute(feed_row(page, vol_oi["id"]), "class") or "")
    assert problems.all() == []


class ForeignApi:
    """Another server on loopback that answers like a backend would (CORS open to all),
    with a record no real detector wrote. Records which requests reached it."""

    def __init__(self) -> None:
        fake = {
            **seed.anomaly(datetime.now(UTC), "2026-12-19", 600.0, "C", severity="HIGH"),
            "reason": "FAKE: sell everything",
        }
        body = json.dumps({"items": [fake], "next_cursor": None}).encode()
        self.requests: list[str] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_link_can_not_point_the_dashboard_at_another_server(
    page: Page, proxy: TcpProxy, seeded: seed.Seed
) -> None:
    """Issue 12, finding 3: `/?api=http://elsewhere` on the real dashboard origin showed
    what that server said. The data source is this origin (or the build's meta tag)."""
    foreign = ForeignApi()
    try:
        page.goto(f"{proxy.url}/?api={foreign.url}")
        page.wait_for_selector("#feed-body tr", timeout=10_000)  # history, from somewhere
        after_next_frame(page)
        assert foreign.requests == []
        assert "FAKE" not in page.inner_text("#feed-body")
        page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]), timeout=5_000)
        page.wait_for_selector(LIVE, timeout=10_000)
    finally:
        foreign.close()
