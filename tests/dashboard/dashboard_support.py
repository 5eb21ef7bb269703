"""Helpers of the dashboard browser tests (imported by conftest.py and test modules; the
unique module name keeps it apart from other folders' helpers on sys.path)."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "dashboard"
ARTIFACTS = REPO / "test-artifacts"


# ------------------------------------------------------------------ TCP proxy


class TcpProxy:
    """Loopback TCP proxy in front of the backend, so a test can cut every connection
    (the hub's WebSocket included) the way a network blip or a backend restart would."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.refusing = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # the other side (or drop_all) closed the socket
        finally:
            self._close(src, dst)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with self._lock:
                self._sockets.discard(s)
            with contextlib.suppress(OSError):  # already shut by the peer
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def drop_all(self) -> int:
        """Cut every open connection; returns how many sockets were cut."""
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)
        return len(socks)

    def close(self) -> None:
        self._listener.close()
        self.drop_all()


# ------------------------------------------------------------------ backend


@dataclass
class Backend:
    """The running backend as the tests see it: where it is and how to ingest."""

    url: str
    token: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def ingest(self, **batch: list[dict[str, Any]]) -> dict[str, Any]:
        res = self.client.post(
            "/api/v1/ingest", json=batch, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert res.status_code == 200, res.text
        return res.json()


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions and failed requests seen by a page."""

    console: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.console + self.exceptions + self.failed_requests


# ------------------------------------------------------------------ page

LIVE = "#conn[data-state='live']"  # the hub connection is up


def open_dashboard(page: Page, proxy: TcpProxy) -> None:
    page.goto(proxy.url + "/")
    page.wait_for_selector(LIVE, timeout=10_000)


def feed_row(page: Page, anomaly_id: str) -> str:
    return f"#feed-body tr[data-id='{anomaly_id}']"


def after_next_frame(page: Page) -> None:
    """Return once the browser has run two animation frames, so a repaint requested
    before this call (the dashboard batches them in requestAnimationFrame) is done."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
