"""Browser test that a link cannot point dashboard/ at another server (a stand-in
foreign API records any request that reaches it). Fixtures in conftest.py.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dashboard_seed as seed
from dashboard_support import (
    LIVE,
    TcpProxy,
    after_next_frame,
    feed_row,
)
from playwright.sync_api import Page


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
