"""Start and stop Azurite's table service (the pinned npm package in tools/azurite).

Shared by the backend tests (a session fixture), the benchmarks and `devserver` (the
demo). Azurite listens on a free loopback port, telemetry off, API version check
skipped, loose mode; in memory unless a `location` folder is given (a folder keeps
data across a stop/start, which the outage test relies on).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from spy_backend.settings import azurite_connection_string

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `make azurite` (npm ci in tools/azurite) first"


class AzuriteError(RuntimeError):
    """Azurite could not be found or started; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def azurite_binary() -> Path:
    """`$SPY_AZURITE_BIN`, else tools/azurite/node_modules/.bin/azurite-table."""
    if env := os.environ.get("SPY_AZURITE_BIN"):
        return Path(env)
    for root in (REPO_ROOT, Path.cwd()):
        candidate = root / "tools/azurite/node_modules/.bin/azurite-table"
        if candidate.exists():
            return candidate
    raise AzuriteError(f"Azurite is not installed: {INSTALL_HINT}")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Azurite:
    """One Azurite table service process; restartable on the same port and folder."""

    def __init__(self, location: Path | None = None, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.location = location
        self._log_dir = Path(tempfile.mkdtemp(prefix="azurite-log-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.port, self.host)

    @property
    def pid(self) -> int | None:
        """The Azurite (node) process id while it runs (benchmarks read its CPU time)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90.0) -> Azurite:  # node starts slowly on a loaded machine
        if shutil.which("node") is None:
            raise AzuriteError(
                "node is not on PATH: Azurite needs Node.js 20 (apt-get install nodejs)"
            )
        binary = azurite_binary()
        cmd = [
            str(binary),
            "--tableHost", self.host,
            "--tablePort", str(self.port),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ]  # fmt: skip
        if self.location is None:
            cmd.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            cmd += ["--location", str(self.location)]
        log_path = self._log_dir / "azurite.log"
        with log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.host, self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = log_path.read_text(errors="replace")[-2000:]
                raise AzuriteError(
                    f"Azurite did not start on {self.host}:{self.port} ({INSTALL_HINT}?)\n{tail}"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (Azurite flushes its folder on SIGINT only), then kill."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
