"""The chaos steps: what each kind of chaos (chaos_plan.Kind) does to one run's world,
and how it undoes it. A method per kind, named after it.

Mixed into chaos_runner.Run, which adds the run's lifecycle (baseline, restore,
settle) around them. Every write goes through chaos_world.Api as a hand change; the
deliberate chaos pauses (`time.sleep(step.pause)`) are the only sleeps; waits for the
world are conditions. What a run is given and reports is chaos_harness.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from chaos_faults import Refusal, ToggleListener
from chaos_harness import Harness, RunResult, Settings
from chaos_plan import Kind, RunPlan, Step
from chaos_world import (
    NAMESPACE_PREFIX,
    Api,
    approval_in,
    bot_body,
    gateway_body,
    path,
)
from gate_allowance import foreign_template_managers, gateway_runs_spec
from gate_invariant import GateInvariantWatcher
from k8s_support import wait_for
from kube_watch import wait_synced
from operator_support import credentials, pull_secret
from spy_operator.api import IBGateway

APISERVER = "kube-apiserver"


class Steps:
    """One run's state and its steps (see the module docstring)."""

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
                try:
                    self.while_down(step, undo=False)  # may be refused by a policy
                    time.sleep(step.pause)
                finally:
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
            try:
                self.while_down(trigger, undo=False)  # may be refused by a policy
                time.sleep(step.pause)
            finally:
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
