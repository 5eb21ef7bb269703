"""Browser tests of dashboard/ in headless Debian Chromium against the running backend:
history from the query API (and its error), live anomalies over the realtime hub within
a second, the bots panel, the feed's filter and keyboard use, and a screenshot kept
under test-artifacts/. The language toggle, the hub connection and foreign API links
are test_dashboard_language.py, test_dashboard_hub.py and test_dashboard_foreign_api.py;
fixtures in conftest.py, page helpers in dashboard_support.py."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import dashboard_seed as seed
from dashboard_support import (
    ARTIFACTS,
    Backend,
    PageProblems,
    TcpProxy,
    after_next_frame,
    feed_row,
    open_dashboard,
)
from playwright.sync_api import Page

# A cheap digest of a canvas's pixels, to see that a chart was redrawn differently.
DIGEST_JS = """id => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
  return h;
}"""


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
