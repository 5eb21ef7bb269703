"""Run the app under uvicorn in a background thread on a pre-bound loopback socket.

Used by `devserver` (the demo), the backend tests and the benchmarks: the socket is bound
before uvicorn starts, so the port is known and free of races.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from spy_backend import logredact
from spy_backend.realtime.local_hub import MAX_CLIENT_FRAME
from spy_backend.settings import Settings, secret_values

# Clients of the local hub only send joinGroup/leaveGroup (a few hundred bytes): uvicorn
# refuses bigger frames (close 1009) before buffering them, unlike its 16 MiB default.
HUB_MAX_FRAME_BYTES = MAX_CLIENT_FRAME


class BackgroundServer:
    """uvicorn serving `app` in a daemon thread; `url` is where it listens."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
            ws_max_size=HUB_MAX_FRAME_BYTES,
        )
        self._server = uvicorn.Server(config)
        settings = getattr(app.state, "settings", None)
        if isinstance(settings, Settings):
            logredact.install(secret_values(settings))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"backend did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
