"""Fail closed: whatever stops a bot's reconcile, the bot stops. Issue 8 in the fast tier.

Today's paths (refused applies, invalid specs, crashes, failing closes, finalizers,
hand edits) and issue 8's finding 1 as behaviour: it was a strict xfail on the code
before main's b7538b0 (it failed there for the reason the finding gives) and passes
since. A ValidatingAdmissionPolicy is modelled by an admission hook on the fake API
server that answers 403 as kube-apiserver does. Findings 3, 6 and 7 (foreign changes,
the order of halt writes, stray bot Deployments) are test_foreign_changes_and_strays.py.
"""

from __future__ import annotations

import pytest
from operator_harness import NS, Harness, running_bot
from spy_dev.fake_kube import AdmissionRequest
from virtual_time import virtual_time

DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments/*"


def carries_template(req: object) -> bool:
    """An apply or patch that sends the pod template (a replicas-only write does not)."""
    body = getattr(req, "body", None) or {}
    return isinstance(body, dict) and "template" in (body.get("spec") or {})


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
