"""Fixtures for the dashboard browser tests: Debian's Chromium driven by Playwright, the
backend serving dashboard/ (behind a TCP proxy the tests can cut), and seeded data.

Chromium is never downloaded by Playwright: it must be /usr/bin/chromium (or $CHROMIUM),
installed by `make chromium` (mk/dashboard.mk). When it is missing the tests fail with
that instruction instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import dashboard_seed as seed
import pytest
from dashboard_support import DASHBOARD_DIR, Backend, PageProblems, TcpProxy
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from spy_dev.azurite import AzuriteError
from spy_dev.devserver import start_dev_stack

TOKEN = "dashboard-test-ingest-token-0123456789"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Flags from docs of this machine: headless, no sandbox as root, and nothing that
# reaches out to Google (the network is closed; those attempts log errors).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make chromium` (apt-get install chromium) "
            "or set CHROMIUM=/path/to/chromium. The dashboard tests need a real browser.",
            pytrace=False,
        )
    return CHROMIUM


# Module scope, not session: Playwright's sync API keeps an event loop running in the
# main thread while it is open, and every pytest-asyncio test collected after this
# folder (tests/detector, tests/operator) would fail with "Runner.run() cannot be
# called from a running event loop".
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    """The real backend, as `make demo` runs it: Azurite, the local hub, dashboard/ at /."""
    try:
        stack = start_dev_stack(port=0, dashboard_dir=DASHBOARD_DIR, ingest_token=TOKEN)
    except AzuriteError as exc:
        pytest.fail(f"the backend's Azurite could not start: {exc}", pytrace=False)
    client = Backend(url=stack.url, token=stack.ingest_token)
    yield client
    client.client.close()
    stack.stop()


@pytest.fixture(scope="session")
def proxy(backend: Backend) -> Iterator[TcpProxy]:
    port = int(backend.url.rsplit(":", 1)[1])
    p = TcpProxy(port)
    yield p
    p.close()


@pytest.fixture(scope="session")
def seeded(backend: Backend) -> seed.Seed:
    """Market state, GEX, flow history and a few anomalies, ingested once."""
    data = seed.build()
    backend.ingest(**data.batch())
    return data


# ------------------------------------------------------------------ page


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, problems: PageProblems) -> Iterator[Page]:
    # A fresh context per test: empty localStorage, English browser, UTC clock.
    context = browser.new_context(
        viewport={"width": 1440, "height": 1000}, locale="en-US", timezone_id="UTC"
    )
    pg = context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.console.append(f"{msg.text} @ {msg.location.get('url')}")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: problems.exceptions.append(str(exc)))
    pg.on("requestfailed", lambda r: problems.failed_requests.append(f"{r.url}: {r.failure}"))
    yield pg
    context.close()
