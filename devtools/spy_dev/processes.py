"""Child processes of the local control plane: spawning, waiting, signalling, stopping.

Called by spy_dev.devcluster (whole-cluster start/stop and the single-component
stop/freeze/thaw/restart of DevCluster) and by its `down` command, which only has the
pids recorded in cluster.json.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

# Start order; stopping goes the other way (kwok and controllers before the apiserver,
# etcd last) so nothing logs a storm of connection errors on the way down.
START_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """The control plane could not be started; the message says which part and why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def spawn(name: str, argv: list[str], logs: Path, detach: bool) -> subprocess.Popen[bytes]:
    out = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
    )


def wait(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    logs: Path | None = None,
) -> None:
    """Poll `check` until true; fail early with the log's tail if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if logs is not None and logs.exists():
                tail = "\n".join(logs.read_text(errors="replace").splitlines()[-15:])
            raise ClusterError(f"{what}: process exited with {proc.returncode}\n{tail}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if check():
                return
        time.sleep(0.1)
    raise ClusterError(f"{what}: not ready after {timeout:.0f} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    # Our own children stay zombies (and "alive" to kill 0) until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_pids(pids: dict[str, int], timeout: float = 10.0) -> None:
    """SIGTERM in reverse start order, SIGKILL whatever is left after `timeout`.

    A frozen (SIGSTOPped) process cannot act on SIGTERM, so it is continued first.
    """
    order = [n for n in reversed(START_ORDER) if n in pids] + [
        n for n in pids if n not in START_ORDER
    ]
    for name in order:
        pid = pids[name]
        if pid and alive(pid):
            signal_pid(pid, signal.SIGTERM)
            signal_pid(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for name in order:
        pid = pids[name]
        while pid and alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if pid and alive(pid):
            signal_pid(pid, signal.SIGKILL)
            _reap(pid)
