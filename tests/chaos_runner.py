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
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from chaos_plan import (
    APISERVER_KINDS,
    BOTS,
    Kind,
    RunPlan,
    Step,
    plan_runs,
)
from chaos_plane import ComponentControl
from chaos_world import (
    NAMESPACE_PREFIX,
    Api,
    Refusal,
    RefusedError,
    ToggleListener,
    approval_in,
    bot_body,
    create_world,
    gateway_body,
    path,
    recycle_volumes,
)
from gate_allowance import bot_allowance, foreign_template_managers, gateway_runs_spec, running
from gate_invariant import GateInvariantWatcher, Violation
from k8s_support import wait_for
from kube_watch import api_client, wait_synced
from operator_support import credentials, pull_secret
from spy_operator.api import IBGateway

APISERVER = "kube-apiserver"


class OperatorControl(Protocol):
    """The operator process (operator_support.OperatorProcess fits)."""

    def start(self) -> None: ...
    def kill(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...


def _stderr(msg: str) -> None:
    print(f"[chaos] {msg}", file=sys.stderr, flush=True)


@dataclass
class Harness:
    kubeconfig: Path  # the admin user's
    operator: OperatorControl
    operator_user: str | None = None  # its identity; None: no admission refusals
    operator_kubeconfig: Path | None = None
    plane: ComponentControl | None = None  # None: no kube-apiserver chaos
    log: Callable[[str], None] = _stderr


@dataclass(frozen=True)
class Settings:
    runs: int = 100
    seed: int = 1
    steps: int = 4
    pace: float = 1.0  # scales every chaos pause
    revert_window: float = 2.0
    restart_window: float = 5.0
    max_seconds: float = 5400.0  # no new run starts after this
    baseline_seconds: float = 30.0
    settle_seconds: float = 20.0
    kinds: frozenset[Kind] | None = None  # None: every kind the harness can do


@dataclass
class RunResult:
    index: int
    namespace: str
    steps: list[str]
    seconds: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    baseline_reached: bool = False
    settled: bool = False
    errors: list[str] = field(default_factory=list)


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


class Run:
    """One plan, executed (see the module docstring)."""

    def __init__(
        self,
        h: Harness,
        s: Settings,
        api: Api,
        operator_api: httpx.Client | None,
        watcher: GateInvariantWatcher,
        plan: RunPlan,
        active: set[str],
    ) -> None:
        self.h, self.s, self.api, self.watcher, self.plan = h, s, api, watcher, plan
        self.active = active  # namespaces the watcher judges: this run's, while it runs
        self.operator_api = operator_api
        self.ns = f"{NAMESPACE_PREFIX}{plan.index:03d}-{uuid.uuid4().hex[:5]}"
        self.mode = plan.gateway_mode
        self.exp_at = 0.0  # wall-clock expiry of the `exp` bot's approval
        self.listener = ToggleListener()
        self.halted = False
        self.refusal: Refusal | None = None
        self.apiserver_down = False
        self.frozen = False
        self.result = RunResult(plan.index, self.ns, [st.label() for st in plan.steps])

    # -------------------------------------------------------------- helpers
    def label(self, what: str) -> None:
        self.watcher.label = f"r{self.plan.index:03d} {what}"

    def bot_path(self, name: str) -> str:
        return path("tradingbot", self.ns, name)

    def approve(self, name: str) -> None:
        seconds = max(0.5, self.exp_at - time.time()) if name == "exp" else 3600.0
        self.api.merge(self.bot_path(name), {"spec": {"approval": approval_in(seconds)}})

    def arm(self, name: str) -> None:
        self.api.merge(self.bot_path(name), {"spec": {"armed": name != "off"}})

    def bot_ns(self, namespace: str) -> bool:
        return namespace == self.ns

    def observe(self, timeout: float) -> None:
        """Watch until this run's namespace has been under the gate for a second, or
        until `timeout` (an excess still open then is the watcher's to judge)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self.watcher.open_excess(self.bot_ns):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= 1.0:
                return
            time.sleep(0.1)

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

    # ---------------------------------------------------------------- steps
    def while_down(self, step: Step, undo: bool) -> None:
        """What a human (or the clock) does while the operator is down, or its undo."""
        variant, target = step.variant, step.target
        if variant == "scale" and not undo:
            self.api.scale(self.ns, f"{target}-bot", step.replicas)
        elif variant == "disarm":
            if undo:
                self.arm(target)
            else:
                self.api.merge(self.bot_path(target), {"spec": {"armed": False}})
        elif variant == "expire":
            if undo:
                self.approve(target)
            else:
                self.api.merge(self.bot_path(target), {"spec": {"approval": approval_in(0.5)}})
        elif variant == "halt":
            if undo:
                self.api.lift_halt()
            else:
                self.api.halt("chaos: halt while something is down")
            self.halted = not undo

    def _operator(self, step: Step, sigkill: bool) -> None:
        op = self.h.operator
        try:
            with self.watcher.outage():
                op.kill() if sigkill else op.stop()
                self.while_down(step, undo=False)
                time.sleep(step.pause)
                op.start()
            # Whatever happened while it was down must be undone within the window.
            self.observe(self.s.restart_window + 1.0)
        finally:
            self.while_down(step, undo=True)

    def _operator_sigkill(self, step: Step) -> None:
        self._operator(step, sigkill=True)

    def _operator_sigterm(self, step: Step) -> None:
        self._operator(step, sigkill=False)

    def _apiserver(self, step: Step, how: str) -> None:
        plane = self.h.plane
        assert plane is not None
        with self.watcher.outage():
            if how == "freeze":
                self.frozen = True
                plane.freeze(APISERVER)
                time.sleep(step.pause)
                plane.thaw(APISERVER)
                self.frozen = False
            elif how == "stop":
                self.apiserver_down = True
                plane.stop(APISERVER)
                time.sleep(step.pause)
                plane.start(APISERVER)
                self.apiserver_down = False
            else:
                self.apiserver_down = True
                plane.restart(APISERVER)
                self.apiserver_down = False
            wait_synced(self.watcher.world.all, 60)
        self.observe(self.s.restart_window + 1.0)

    def _apiserver_stop(self, step: Step) -> None:
        self._apiserver(step, "stop")

    def _apiserver_freeze(self, step: Step) -> None:
        self._apiserver(step, "freeze")

    def _apiserver_restart(self, step: Step) -> None:
        self._apiserver(step, "restart")

    def _hand_scale_up(self, step: Step) -> None:
        self.api.scale(self.ns, f"{step.target}-bot", step.replicas)
        time.sleep(step.pause)

    def _template_edit(self, step: Step) -> None:
        dep_path = path("deployment", self.ns, f"{step.target}-bot")
        edits: dict[str, dict[str, Any]] = {
            "command": {"containers": [{"name": "bot", "command": ["/bin/sh", "-c", "trade"]}]},
            "sidecar": {"containers": [{"name": "helper", "image": "busybox:1.36"}]},
        }
        if step.variant == "strategy":
            rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
            self.api.merge(dep_path, {"spec": {"strategy": rolling}})
        else:
            patch = {"spec": {"template": {"spec": edits[step.variant]}}}
            self.api.merge(dep_path, patch, strategic=True)
        time.sleep(step.pause)
        dep = self.api.get(dep_path)
        if dep is not None and foreign_template_managers(dep):
            self.h.log(f"{self.ns}: foreign template still there; a human deletes the Deployment")
            self.api.delete(dep_path)
        elif dep is not None and dep["spec"].get("strategy", {}).get("type") != "Recreate":
            recreate = {"type": "Recreate", "rollingUpdate": None}
            self.api.merge(dep_path, {"spec": {"strategy": recreate}})

    def _admission_refusal(self, step: Step) -> None:
        assert self.operator_api is not None and self.h.operator_user is not None
        self.refusal = Refusal(self.api, self.operator_api, self.h.operator_user, self.ns)
        self.refusal.install()
        trigger = Step(Kind.OPERATOR_KILL, 0, step.target, step.variant, step.replicas)
        try:
            self.while_down(trigger, undo=False)
            time.sleep(step.pause)
            self.refusal.remove()
            self.refusal = None
        finally:
            self.while_down(trigger, undo=True)

    def _approval_expiry(self, step: Step) -> None:
        approval = approval_in(float(step.variant))
        self.api.merge(self.bot_path(step.target), {"spec": {"approval": approval}})
        time.sleep(step.pause)
        self.approve(step.target)

    def _halt_resume(self, step: Step) -> None:
        self.api.halt("chaos: halt and resume")
        self.halted = True
        time.sleep(step.pause)
        self.api.lift_halt()
        self.halted = False

    def _secret_deletion(self, step: Step) -> None:
        self.api.delete(path("secret", self.ns, step.target))
        time.sleep(step.pause)
        self.api.apply(pull_secret() if step.target == "acr-pull" else credentials(), self.ns)

    def _gateway_deletion(self, step: Step) -> None:
        gw_path = path("ibgateway", self.ns, "gw")
        self.api.delete(gw_path)
        wait_for("gateway gone", lambda: self.api.get(gw_path) is None, 15)
        time.sleep(step.pause)
        self.api.apply(gateway_body(self.mode), self.ns)

    def _vpn_flap(self, step: Step) -> None:
        self.listener.down()
        time.sleep(step.pause)
        self.listener.up()

    def _gateway_mode_flip(self, step: Step) -> None:
        sts_path = path("statefulset", self.ns, "gw")
        gw_path = path("ibgateway", self.ns, "gw")
        if step.variant == "ondelete":
            # A field the operator does not own (issue 8, finding 2).
            on_delete = {"type": "OnDelete", "rollingUpdate": None}
            self.api.merge(sts_path, {"spec": {"updateStrategy": on_delete}})
        original = self.mode
        for mode, pause in (
            ("live" if original == "paper" else "paper", step.pause),
            (original, step.pause / 2),
        ):
            self.api.merge(gw_path, {"spec": {"tradingMode": mode}})
            self.mode = mode
            time.sleep(pause)
        if step.variant == "ondelete":
            self.api.merge(sts_path, {"spec": {"updateStrategy": {"type": "RollingUpdate"}}})
            self._restart_stale_gateway_pods()

    def _restart_stale_gateway_pods(self) -> None:
        """A human deletes a gateway pod that runs something other than its spec."""
        gw = self.api.get(path("ibgateway", self.ns, "gw"))
        if gw is None:
            return
        view = IBGateway.from_body(gw)
        selector = "app.kubernetes.io/component=ib-gateway,app.kubernetes.io/instance=gw"
        pods = self.api.client.get(path("pod", self.ns), params={"labelSelector": selector})
        for pod in pods.json().get("items", []):
            if not gateway_runs_spec(view, [pod])[0]:
                self.api.delete(path("pod", self.ns, pod["metadata"]["name"]))

    def _orphan_under_halt(self, step: Step) -> None:
        """Issue 8, finding 7: a bot's Deployment orphaned and scaled up under a halt."""
        bot_path = self.bot_path(step.target)
        dep_path = path("deployment", self.ns, f"{step.target}-bot")
        self.api.halt("chaos: orphan under halt")
        self.halted = True
        body = self.api.get(bot_path)
        self.api.delete(bot_path, propagation="Orphan")
        wait_for("bot gone", lambda: self.api.get(bot_path) is None, 15)
        try:
            self.api.scale(self.ns, f"{step.target}-bot", 1)
            time.sleep(step.pause)
        finally:
            self.api.delete(dep_path)
            wait_for("orphan gone", lambda: self.api.get(dep_path) is None, 15)
            spec = body["spec"] if body else bot_body(step.target, self.mode, 0, 0)["spec"]
            meta = {"name": step.target, "namespace": self.ns}
            self.api.apply(
                {
                    "apiVersion": body["apiVersion"],
                    "kind": "TradingBot",
                    "metadata": meta,
                    "spec": spec,
                }
            )
            self.api.lift_halt()
            self.halted = False

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

    def execute(self) -> RunResult:
        started = time.monotonic()
        before = len(self.watcher.violations)
        h = self.h
        h.log(f"run {self.plan.index} in {self.ns}: gateway {self.mode}, {self.result.steps}")
        try:
            recycle_volumes(self.api)
            self.label("setup")
            self.exp_at = time.time() + self.plan.expiry_seconds
            self.active.add(self.ns)
            create_world(self.api, self.ns, self.mode, self.listener.port, self.plan.expiry_seconds)
            self.result.baseline_reached = self.wait_baseline()
            for step in self.plan.steps:
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
            self.active.discard(self.ns)  # a namespace being deleted is not judged
            self.listener.close()
            try:
                self.api.delete(path("namespace", None, self.ns))
            except (AssertionError, httpx.HTTPError) as err:
                self.result.errors.append(f"namespace deletion: {err}")
        self.result.violations = self.watcher.violations[before:]
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
    finally:
        watcher.stop()
        if operator_api is not None:
            operator_api.close()
    return summarize(results, watcher, s, api, time.monotonic() - started)
