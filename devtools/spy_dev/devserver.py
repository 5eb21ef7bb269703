"""Backend + Azurite + local hub + dashboard for `make demo` (and manual runs).

From Python: `stack = start_dev_stack(port=8080)`; `stack.url` serves the dashboard at
`/` (files of ./dashboard), the API at `/api/v1`, the hub at `/client/hubs/spy`;
`stack.stop()` ends both processes. From a shell:
`python -m spy_dev.devserver --port 8080 --seed 1` (Ctrl-C stops).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from spy_backend.app import create_app
from spy_backend.server import BackgroundServer
from spy_backend.settings import DEV_INGEST_TOKEN, Settings, quiet_libraries

from spy_dev.azurite import REPO_ROOT, Azurite, AzuriteError, free_port
from spy_dev.samplefeed import sample_batch

log = logging.getLogger(__name__)
DASHBOARD_DIR = REPO_ROOT / "dashboard"


@dataclass
class DevStack:
    azurite: Azurite
    server: BackgroundServer
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ingest_url(self) -> str:
        return f"{self.server.url}/api/v1/ingest"

    @property
    def ingest_token(self) -> str:
        return self.settings.ingest_token.get_secret_value()

    def stop(self) -> None:
        self.server.stop()
        self.azurite.stop()


def start_dev_stack(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dashboard_dir: Path | None = DASHBOARD_DIR,
    azurite_location: Path | None = None,
    ingest_token: str = DEV_INGEST_TOKEN,
    **settings: Any,
) -> DevStack:
    """Start Azurite (free port) and the backend (port 0 = free) with the local hub."""
    azurite = Azurite(location=azurite_location).start()
    try:
        config = Settings(
            environment="development",
            storage_connection_string=SecretStr(azurite.connection_string),
            ingest_token=SecretStr(ingest_token),
            dashboard_dir=dashboard_dir,
            realtime="local",
            **settings,
        )
        server = BackgroundServer(create_app(config), host=host, port=port).start()
    except BaseException:
        azurite.stop()
        raise
    return DevStack(azurite=azurite, server=server, settings=config)


def seed_loop(stack: DevStack, interval: float, stop: threading.Event) -> None:
    """Post a sample batch every `interval` seconds until `stop` is set."""
    rng = random.Random(42)
    spot = 600.0
    headers = {"Authorization": f"Bearer {stack.ingest_token}"}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            spot = round(spot * (1 + rng.gauss(0, 0.0004)), 2)
            body = sample_batch(datetime.now(UTC), rng, spot=spot, anomalies=rng.randint(0, 2))
            try:
                client.post(stack.ingest_url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("sample feed post failed", extra={"error": str(exc)})
            stop.wait(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spy_dev.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--dashboard-dir", type=Path, default=DASHBOARD_DIR)
    parser.add_argument("--azurite-location", type=Path, help="persist Azurite data here")
    parser.add_argument("--seed", type=float, default=0, help="post sample data every N s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    quiet_libraries()
    try:
        stack = start_dev_stack(
            host=args.host,
            port=args.port,
            dashboard_dir=args.dashboard_dir,
            azurite_location=args.azurite_location,
        )
    except AzuriteError as exc:
        print(f"[backend] {exc}", file=sys.stderr)
        return 1
    print(f"[backend] dashboard {stack.url}/  API {stack.url}/docs  Azurite :{stack.azurite.port}")
    # The development token is public (settings.DEV_INGEST_TOKEN); any other is a secret.
    shown = stack.ingest_token if stack.ingest_token == DEV_INGEST_TOKEN else "<your token>"
    print(f"[backend] ingest: POST {stack.ingest_url} (Authorization: Bearer {shown})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seeder = None
    if args.seed > 0:
        seeder = threading.Thread(target=seed_loop, args=(stack, args.seed, stop), daemon=True)
        seeder.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()
    if seeder is not None:
        seeder.join(5)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class BackendProcess:
    """`python -m spy_backend` in a child process (benchmarks; a demo that wants one).

    `env` holds SPY_BACKEND_* settings; the process listens on a free loopback port.
    """

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30.0) -> BackendProcess:
        cmd = [
            sys.executable,
            "-m",
            "spy_backend",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self._process = subprocess.Popen(cmd, env=self._env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass  # not listening yet
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"backend process did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
