"""Runs chaos plans (chaos_plan.py) against a cluster with the operator running, under
the gate invariant watcher (gate_invariant.py), and sums up what happened as one
JSON-ready dict.

Called by bench/chaos.py (100 runs on its own control plane) and by
tests/operator/test_chaos_cluster.py (a few runs on the session's). Each run builds
a fresh namespace (chaos_world.py), waits for the gate's baseline, performs its
steps, undoes what each step changed, waits for the world to settle, and deletes
the namespace. Waits are for conditions; the only sleeps are the plan's deliberate
chaos pauses and the quiet gaps between steps.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import httpx
from chaos_harness import Harness, OperatorControl, RunResult, Settings
from chaos_plan import APISERVER_KINDS, BOTS, Kind, Step, plan_runs
from chaos_steps import APISERVER, Steps
from chaos_world import Api, RefusedError, create_world, path, recycle_volumes
from gate_allowance import bot_allowance, running
from gate_invariant import GateInvariantWatcher
from k8s_support import wait_for
from kube_watch import api_client

__all__ = ["Harness", "OperatorControl", "RunResult", "Settings", "available_kinds", "run_chaos"]


def available_kinds(h: Harness) -> frozenset[Kind]:
    kinds = set(Kind)
    if h.plane is None:
        kinds -= APISERVER_KINDS
    if h.operator_user is None or h.operator_kubeconfig is None:
        kinds.discard(Kind.ADMISSION_REFUSAL)
    return frozenset(kinds)


def kind_of(during: str) -> str:
    """'r003 operator-sigkill:scale:exp (after an outage)' -> 'operator-sigkill'."""
    parts = during.split()
    return parts[1].split(":")[0] if len(parts) > 1 else "setup"


class Run(Steps):
    """One plan, executed: baseline, steps (chaos_steps.py), restore, settle."""

    def wait_baseline(self) -> bool:
        """Every bot's Deployment exists at its allowance, and allowed bots run a pod."""

        def probe() -> bool:
            view = self.watcher.world.view()
            for name in BOTS:
                allowed = bot_allowance(view.bots.get((self.ns, name)), view).replicas
                dep = view.deployments.get((self.ns, f"{name}-bot"))
                if dep is None or int(dep["spec"].get("replicas", 1)) != allowed:
                    return False
                pods = [
                    p
                    for (pns, _), p in view.pods.items()
                    if pns == self.ns
                    and p["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == name
                    and running(p)
                ]
                if allowed and not pods:
                    return False
            return True

        try:
            wait_for(f"{self.ns} baseline", probe, self.s.baseline_seconds)
        except AssertionError:
            return False
        return True

    # ------------------------------------------------------------ lifecycle
    def restore(self) -> None:
        """Undo whatever a failed step left behind, in dependency order."""
        plane, op = self.h.plane, self.h.operator
        actions: list[tuple[str, Callable[[], None]]] = []
        if plane is not None and self.frozen:
            actions.append(("thaw the apiserver", lambda: plane.thaw(APISERVER)))
        if plane is not None and self.apiserver_down:
            actions.append(("start the apiserver", lambda: plane.start(APISERVER)))
        actions.append(("start the operator", lambda: None if op.alive() else op.start()))
        if self.refusal is not None:
            actions.append(("lift the refusal", self.refusal.remove))
        if self.halted:
            actions.append(("lift the halt", self.api.lift_halt))
        actions.append(("VPN up", self.listener.up))
        for what, action in actions:
            try:
                action()
            except (AssertionError, httpx.HTTPError, RuntimeError, OSError) as err:
                self.result.errors.append(f"restore: {what}: {err}")
        self.frozen = self.apiserver_down = self.halted = False
        self.refusal = None

    def settle(self) -> bool:
        """No excess left in this run's namespace (within the settle time)."""
        try:
            wait_for(
                f"{self.ns} settled",
                lambda: not self.watcher.open_excess(self.bot_ns),
                self.s.settle_seconds,
            )
        except AssertionError:
            return False
        return True

    def teardown(self) -> None:
        """Disarm every bot and wait for nothing to run, then delete the namespace:
        a namespace being deleted must not change under a later watcher (the VPN
        listener closing would close a still-armed bot's gate)."""
        try:
            for name in BOTS:
                self.api.merge(self.bot_path(name), {"spec": {"armed": False}})
            wait_for(
                f"{self.ns} idle",
                lambda: not self._running_anything(),
                self.s.settle_seconds,
            )
        # Not the harness's fault (pods lagging, say): the run's verdict is already in.
        except (AssertionError, httpx.HTTPError, RefusedError) as err:
            self.h.log(f"{self.ns}: teardown did not reach idle: {err}")
        self.active.discard(self.ns)  # a namespace being deleted is not judged
        self.listener.close()
        try:
            self.api.delete(path("namespace", None, self.ns))
        except (AssertionError, httpx.HTTPError) as err:
            self.result.errors.append(f"namespace deletion: {err}")

    def _running_anything(self) -> bool:
        view = self.watcher.world.view()
        deps = [d for (ns, _), d in view.deployments.items() if ns == self.ns]
        pods = [
            p
            for (ns, _), p in view.pods.items()
            if ns == self.ns
            and p["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "trading-bot"
            and running(p)
        ]
        return bool(pods) or any(int(d["spec"].get("replicas", 1)) > 0 for d in deps)

    def execute(self) -> RunResult:
        started = time.monotonic()
        before = len(self.watcher.recorded)
        h = self.h
        h.log(f"run {self.plan.index} in {self.ns}: gateway {self.mode}, {self.result.steps}")
        try:
            recycle_volumes(self.api)
            self.label("setup")
            self.exp_at = time.time() + self.plan.expiry_seconds
            self.active.add(self.ns)
            try:
                create_world(
                    self.api, self.ns, self.mode, self.listener.port, self.plan.expiry_seconds
                )
            # The control plane still catching up after an earlier outage: this run is
            # lost (reported), the next one starts afresh.
            except (AssertionError, httpx.HTTPError) as err:
                self.result.errors.append(f"setup: {type(err).__name__}: {err}")
                steps: tuple[Step, ...] = ()
            else:
                self.result.baseline_reached = self.wait_baseline()
                steps = self.plan.steps
            for step in steps:
                self.label(step.label())
                begun = time.monotonic()
                try:
                    getattr(self, "_" + step.kind.value.replace("-", "_"))(step)
                    h.log(f"  {step.label()} done in {time.monotonic() - begun:.1f} s")
                except RefusedError as err:
                    h.log(f"{self.ns}: {step.label()} refused by a prevention policy: {err}")
                except (AssertionError, httpx.HTTPError, RuntimeError, OSError) as err:
                    self.result.errors.append(f"{step.label()}: {type(err).__name__}: {err}")
                    self.restore()
                self.label(f"gap-after-{step.kind.value}")
                time.sleep(step.gap)
        finally:
            self.label("settle")
            self.restore()
            self.result.settled = self.settle()
            self.teardown()
        self.result.violations = self.watcher.recorded[before:]
        self.result.seconds = time.monotonic() - started
        for v in self.result.violations:
            h.log(f"VIOLATION {v.describe()}")
        return self.result


def summarize(
    results: list[RunResult], watcher: GateInvariantWatcher, s: Settings, api: Api, seconds: float
) -> dict[str, Any]:
    violations = [v for r in results for v in r.violations]
    actions = collections.Counter(lab.split(":")[0] for r in results for lab in r.steps)

    def worst(values: list[float]) -> float:
        return round(max(values, default=0.0), 2)

    lag = [v for v in violations if v.deployment_lowered]
    return {
        "runs": len(results),
        "runs_planned": s.runs,
        "seed": s.seed,
        "violations": len(violations),
        # Pods still running after their Deployment was lowered in time: the gate
        # acted, the ReplicaSet controller had not (yet) deleted them.
        "pod_lag_violations": len(lag),
        "gate_violations": len(violations) - len(lag),
        "violations_by_kind": dict(collections.Counter(kind_of(v.during) for v in violations)),
        "violations_by_reason": dict(collections.Counter(v.reason for v in violations)),
        "violations_by_object": dict(
            collections.Counter(
                "pods (Deployment already lowered)" if v.deployment_lowered else v.kind
                for v in violations
            )
        ),
        "violation_list": [v.describe() for v in violations][:60],
        "worst_enforcement_latency_s": worst(watcher.latencies),
        "worst_revert_latency_s": worst(watcher.revert_latencies),
        "worst_latency_after_outage_s": worst(watcher.outage_latencies),
        "excess_episodes": len(watcher.latencies),
        "excess_pods_seen": len(watcher.excess_pod_uids),
        "actions": dict(sorted(actions.items())),
        "hand_writes_refused": api.refused,
        "baseline_misses": sum(not r.baseline_reached for r in results),
        "settle_misses": sum(not r.settled for r in results),
        "harness_errors": [f"run {r.index}: {e}" for r in results for e in r.errors][:30],
        "samples": watcher.samples,
        "blind_samples": watcher.blind_samples,  # while a watch was broken (apiserver down)
        "sample_hz": round(watcher.samples / seconds, 1) if seconds else 0.0,
        "revert_window_s": s.revert_window,
        "restart_window_s": s.restart_window,
        "seconds": round(seconds, 1),
    }


def nodes_ready(api: Api) -> bool:
    """Every node Ready again: after a long kube-apiserver outage KWOK's node leases
    lapse and the nodes go NotReady (tainted) until KWOK renews them."""
    nodes = (api.get("/api/v1/nodes") or {}).get("items", [])
    return bool(nodes) and all(
        any(
            cond["type"] == "Ready" and cond["status"] == "True"
            for cond in node.get("status", {}).get("conditions", [])
        )
        and not any(
            t.get("key", "").startswith("node.kubernetes.io/")
            for t in node.get("spec", {}).get("taints") or []
        )
        for node in nodes
    )


def run_chaos(h: Harness, s: Settings) -> dict[str, Any]:
    """Every planned run (until `max_seconds`), then the summary."""
    kinds = available_kinds(h) if s.kinds is None else s.kinds & available_kinds(h)
    plans = plan_runs(s.seed, s.runs, s.steps, kinds, s.pace)
    watcher = GateInvariantWatcher(
        h.kubeconfig,
        revert_window=s.revert_window,
        restart_window=s.restart_window,
        namespace_ok=lambda ns: ns in active,
    )
    results: list[RunResult] = []
    active: set[str] = set()
    started = time.monotonic()
    operator_api = (
        api_client(h.operator_kubeconfig, timeout=5) if h.operator_kubeconfig is not None else None
    )
    watcher.start()
    try:
        with api_client(h.kubeconfig, timeout=10) as client:
            api = Api(client)
            for plan in plans:
                if time.monotonic() - started > s.max_seconds:
                    h.log(f"time budget of {s.max_seconds:.0f} s spent after {len(results)} runs")
                    break
                results.append(Run(h, s, api, operator_api, watcher, plan, active).execute())
            # Leave the cluster as healthy as we found it (the session goes on).
            wait_for("nodes Ready after the chaos", lambda: nodes_ready(api), 120, 0.5)
    finally:
        watcher.stop()
        if operator_api is not None:
            operator_api.close()
    return summarize(results, watcher, s, api, time.monotonic() - started)
