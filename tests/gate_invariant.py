"""The gate invariant watcher: samples the cluster at 10 Hz and records every bot
Deployment or set of running bot pods that stays above the gate's allowance
(gate_allowance.py) for longer than the revert window.

Used by the operator's cluster tests (the `gate_watcher` fixture in
tests/operator/conftest.py, through operator_support.py) and by the chaos suite
(chaos_runner.py, bench/chaos.py). The cluster is seen through list+watch caches
(kube_watch.py, read by gate_world.ClusterWorld), so a sample costs no API call; a
sample is taken only while every cache is current.

Windows. An excess must end within `revert_window` seconds of first being seen. While
nothing can act (the harness declares an `outage()`: the operator or kube-apiserver
down or frozen) excess is not counted; after the outage ends, whatever is above the
gate must be set back within `restart_window` seconds of the end. Each excess is an
episode; its length is an enforcement latency, and the worst one is reported.

`violations` are the gate's: a Deployment above the allowance, or pods above it while
their Deployment is too. Pods that outlive a Deployment lowered in time are recorded
apart as `pod_lag` (kube-controller-manager had not deleted them yet).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gate_allowance import Excess, excesses
from gate_world import ClusterWorld
from kube_watch import api_client, wait_synced


@dataclass
class Violation:
    """An excess that outlived its window: what, how far above, why, and during what."""

    key: str
    kind: str
    replicas: int
    allowed: int
    reason: str
    seconds: float
    during: str = ""
    # pods only: when the window ran out their Deployment was already at or under the
    # allowance (the gate had acted; the ReplicaSet controller had not caught up)
    deployment_lowered: bool = False

    @property
    def deployment(self) -> str:
        return self.key

    def describe(self) -> str:
        lag = " (its Deployment already lowered)" if self.deployment_lowered else ""
        return (
            f"{self.key}: {self.kind} at {self.replicas} > {self.allowed} ({self.reason}) "
            f"for {self.seconds:.1f} s during {self.during or 'steady state'}{lag}"
        )


@dataclass
class _Episode:
    since: float  # when enforcement could start: first seen, or the outage's end
    deadline: float  # a violation if still above the gate after this
    during: str
    worst: Excess
    after_outage: bool = False
    violation: Violation | None = None


class GateInvariantWatcher(threading.Thread):
    """Samples at `interval` and records violations (see the module docstring).

    `kubeconfig` is a path or anything with a `.kubeconfig` (and `.context`), such as
    k8s_support.Kubectl; `namespace_ok` limits the watch to some namespaces.
    """

    def __init__(
        self,
        kubeconfig: Any,
        revert_window: float = 2.0,
        restart_window: float = 5.0,
        namespace_ok: Callable[[str], bool] | None = None,
        interval: float = 0.1,
    ) -> None:
        super().__init__(daemon=True, name="gate-invariant-watcher")
        path = Path(getattr(kubeconfig, "kubeconfig", kubeconfig))
        context = getattr(kubeconfig, "context", None)
        self.world = ClusterWorld(lambda: api_client(path, context, timeout=10))
        self.revert_window = revert_window
        self.restart_window = restart_window
        self.namespace_ok = namespace_ok
        self.interval = interval
        # Every violation in order; `violations` are the gate's, `pod_lag` the pods
        # that outlived a Deployment lowered in time (kube-controller-manager's delay).
        self.recorded: list[Violation] = []
        # One per closed episode, seconds: from first seen (or the outage's end) to
        # back under the gate; split by whether the episode followed an outage.
        self.revert_latencies: list[float] = []
        self.outage_latencies: list[float] = []
        self.excess_pod_uids: set[str] = set()
        self.samples = 0
        self.blind_samples = 0
        self.label = ""  # what the harness is doing now; episodes remember it
        self._episodes: dict[str, _Episode] = {}
        self._outages = 0
        self._outage_end: float | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self.world.start()
        wait_synced(self.world.all)
        super().start()

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)
        self.world.stop()
        with self._lock:
            now = time.monotonic()
            for key in list(self._episodes):
                self._close(key, now)

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """While the operator (or the apiserver) is down nothing can act: excess is not
        counted; when the outage ends the restart window starts."""
        with self._lock:
            self._outages += 1
            self._episodes.clear()
        try:
            yield
        finally:
            with self._lock:
                self._outages -= 1
                self._episodes.clear()
                self._outage_end = time.monotonic()

    @property
    def violations(self) -> list[Violation]:
        return [v for v in self.recorded if not v.deployment_lowered]

    @property
    def pod_lag(self) -> list[Violation]:
        return [v for v in self.recorded if v.deployment_lowered]

    @property
    def latencies(self) -> list[float]:
        return self.revert_latencies + self.outage_latencies

    @property
    def max_excess_seconds(self) -> float:
        return max(self.latencies, default=0.0)

    def open_excess(self, namespace_ok: Callable[[str], bool] | None = None) -> list[str]:
        """Keys above the gate right now (for a harness waiting for a quiet world)."""
        with self._lock:
            keys = list(self._episodes)
        return [k for k in keys if namespace_ok is None or namespace_ok(k.split("/")[0])]

    # ----------------------------------------------------------------- sampling
    def _close(self, key: str, now: float) -> None:
        ep = self._episodes.pop(key)
        latency = now - ep.since
        (self.outage_latencies if ep.after_outage else self.revert_latencies).append(latency)
        if ep.violation is not None:
            ep.violation.seconds = latency

    def _open(self, ex: Excess, now: float) -> _Episode:
        end = self._outage_end
        if end is not None and now - end <= self.restart_window:
            # Possibly left over from the outage: counted from its end, with the
            # restart window (and never less than the revert window from now).
            deadline = max(end + self.restart_window, now + self.revert_window)
            return _Episode(end, deadline, f"{self.label} (after an outage)", ex, True)
        return _Episode(now, now + self.revert_window, self.label, ex)

    def sample(self) -> None:
        if not self.world.synced:
            self.blind_samples += 1
            return
        found = excesses(self.world.view(), self.namespace_ok)
        now = time.monotonic()
        with self._lock:
            self.samples += 1
            if self._outages:
                return
            for ex in found:
                ep = self._episodes.get(ex.key)
                if ep is None:
                    ep = self._open(ex, now)
                    self._episodes[ex.key] = ep
                if ex.found - ex.allowance.replicas > ep.worst.found - ep.worst.allowance.replicas:
                    ep.worst = ex
                if ex.kind != "pods" or (
                    ex.deployment_replicas is None or ex.deployment_replicas > ex.allowance.replicas
                ):
                    ep.deployment_lowered = False
                self.excess_pod_uids.update(ex.pod_uids)
                elapsed = now - ep.since
                if now > ep.deadline and ep.violation is None:
                    ep.violation = Violation(
                        ex.key,
                        ex.kind,
                        ep.worst.found,
                        ep.worst.allowance.replicas,
                        ep.worst.allowance.reason,
                        elapsed,
                        ep.during,
                        deployment_lowered=ex.kind == "pods"
                        and ex.deployment_replicas is not None
                        and ex.deployment_replicas <= ex.allowance.replicas,
                    )
                    self.recorded.append(ep.violation)
                if ep.violation is not None:
                    ep.violation.seconds = elapsed
            current = {ex.key for ex in found}
            for key in [k for k in self._episodes if k not in current]:
                self._close(key, now)

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            # A failed read is not evidence either way; the next sample tries again.
            with contextlib.suppress(httpx.HTTPError, OSError, RuntimeError):
                self.sample()
            self._stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))
