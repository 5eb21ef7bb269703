"""Process, wait and kubectl helpers for `make demo` (spy_dev.demo and demo_stages).

Every process the demo starts runs in its own session with its output in
<state dir>/logs/<name>.log, so `make demo-down` can stop its whole group.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT, ClusterState

PY = sys.executable
KUBECTL = str(DEFAULT_BIN / "kubectl")


def say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


class DemoError(RuntimeError):
    pass


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def spawn(state_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> int:
    log = (state_dir / "logs" / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait(what: str, probe: Any, timeout: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
            got = probe()
            if got:
                return got
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise DemoError(f"{what}: not ready after {timeout:.0f} s{tail}")


def kubectl(state: ClusterState, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [KUBECTL, f"--kubeconfig={state.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout
