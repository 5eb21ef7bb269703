"""Stop, freeze, thaw and restart one control-plane component (kube-apiserver) alone.

Used by the chaos suite (chaos_runner.py). `ComponentControl` is the small interface
the suite needs. `DevClusterControl` forwards it to spy_dev.devcluster's own
single-component API (bench/chaos.py, which holds its DevCluster). `ProcessControl`
implements it on the recorded pids alone, for the pytest session, whose fixture
hands out the cluster's state but not its DevCluster: it reads the running
component's command line from /proc, signals it, and starts it again with the same
command line, logging to the same file.

A component started here is not known to DevCluster.stop(), so every process started
here is stopped at interpreter exit (and a frozen one is thawed first).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Protocol

import httpx
from spy_dev.devcluster import ClusterState, DevCluster


class ComponentControl(Protocol):
    def stop(self, name: str) -> None: ...
    def start(self, name: str) -> None: ...
    def freeze(self, name: str) -> None: ...
    def thaw(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...


_STARTED: dict[int, subprocess.Popen[bytes]] = {}
_FROZEN: set[int] = set()


def _cleanup() -> None:
    for pid in list(_FROZEN):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    for proc in _STARTED.values():
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()


atexit.register(_cleanup)


def _gone(pid: int) -> bool:
    """True once `pid` has exited (reaping it when it is our child)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


class DevClusterControl:
    """ComponentControl through spy_dev.devcluster's own single-component API, for a
    harness that holds the DevCluster (bench/chaos.py)."""

    def __init__(self, dev: DevCluster) -> None:
        self.dev = dev

    def stop(self, name: str) -> None:
        self.dev.stop_component(name)

    def start(self, name: str) -> None:
        self.dev.start_component(name)

    def freeze(self, name: str) -> None:
        self.dev.freeze(name)

    def thaw(self, name: str) -> None:
        self.dev.thaw(name)

    def restart(self, name: str) -> None:
        self.dev.restart_component(name)


class ProcessControl:
    """ComponentControl on the local processes of a dev cluster (see the module doc)."""

    def __init__(self, state: ClusterState, ready_timeout: float = 60) -> None:
        self.state = state
        self.ready_timeout = ready_timeout
        self._argv: dict[str, list[str]] = {}

    def _pid(self, name: str) -> int:
        return int(self.state.pids[name])

    def _remember_argv(self, name: str) -> list[str]:
        if name not in self._argv:
            raw = Path(f"/proc/{self._pid(name)}/cmdline").read_bytes()
            self._argv[name] = [a.decode() for a in raw.split(b"\0") if a]
        return self._argv[name]

    def stop(self, name: str) -> None:
        self._remember_argv(name)
        pid = self._pid(name)
        self.thaw(name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not _gone(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        old = _STARTED.pop(pid, None)
        if old is not None:
            old.wait(5)

    def start(self, name: str) -> None:
        argv = self._remember_argv(name)
        log = (Path(self.state.state_dir) / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        _STARTED[proc.pid] = proc
        self.state.pids[name] = proc.pid
        if (Path(self.state.state_dir) / "cluster.json").exists():
            self.state.save()  # `devcluster down` must stop the new process
        if name == "kube-apiserver":
            self._wait_ready(proc)

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        ca = ssl.create_default_context(cafile=str(self.state.ca_file))
        headers = {"Authorization": f"Bearer {self.state.tokens['admin']}"}
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited with {proc.returncode} on restart")
            with contextlib.suppress(httpx.HTTPError, OSError):
                url = f"{self.state.server}/readyz"
                if httpx.get(url, headers=headers, verify=ca, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"kube-apiserver not ready {self.ready_timeout:.0f} s after restart")

    def freeze(self, name: str) -> None:
        pid = self._pid(name)
        _FROZEN.add(pid)
        os.kill(pid, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        pid = self._pid(name)
        if pid in _FROZEN:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            _FROZEN.discard(pid)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    @staticmethod
    def stop_started() -> None:
        """Stop every process started here now (also done at interpreter exit)."""
        _cleanup()
        _STARTED.clear()
