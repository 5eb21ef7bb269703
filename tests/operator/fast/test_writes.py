"""writes.py and the Kube client under it, on the in-memory API server.

Every write is counted on the server side (`api.writes()`), so "no write" is checked
where it matters: nothing reached the API server.
"""

from __future__ import annotations

import pytest
from operator_harness import NS, Harness, bot
from spy_operator import api, bot_access, builders
from spy_operator import constants as c
from spy_operator.context import Outcome
from spy_operator.enforce import lower_to
from spy_operator.kube import ApiError
from spy_operator.world import World
from spy_operator.writes import apply_child, apply_unwatched, write_status
from virtual_time import virtual_time


def deployment_for(h: Harness, name: str = "b", replicas: int = 1) -> dict[str, object]:
    tb = h.create(bot(name))
    return builders.build_bot_deployment(api.TradingBot.from_body(tb), replicas, 1, 4002)


def fields_of(obj: dict[str, object], manager: str, operation: str) -> dict[str, object]:
    for entry in obj["metadata"]["managedFields"]:  # type: ignore[index]
        if entry["manager"] == manager and entry["operation"] == operation:
            return dict(entry["fieldsV1"])
    return {}


@virtual_time
async def test_apply_child_writes_once_then_compares_against_its_own_reply() -> None:
    h = Harness()
    desired = deployment_for(h)
    first = Outcome()
    applied = await apply_child(h.ctx, World.DEPLOYMENTS, desired, first)
    assert first.writes == 1
    assert applied["metadata"]["annotations"][c.ANNOTATION_DESIRED_HASH]
    # The watch has not delivered it yet: the remembered reply is what is compared.
    again = Outcome()
    await apply_child(h.ctx, World.DEPLOYMENTS, deployment_for(h), again)
    assert again.writes == 0
    assert len(h.api.writes("deployments")) == 1
    owned = fields_of(applied, c.FIELD_MANAGER, "Apply")
    assert "f:replicas" in owned["f:spec"]  # type: ignore[operator]


@virtual_time
async def test_apply_child_reapplies_a_hand_edit_and_wins_the_field_back() -> None:
    h = await Harness(workers=0).start()
    desired = deployment_for(h)
    await apply_child(h.ctx, World.DEPLOYMENTS, desired, Outcome())
    await h.idle(0.1)  # the watch delivers our write
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"replicas": 3}}, manager="kubectl-scale")
    await h.deliver()
    outcome = Outcome()
    result = await apply_child(h.ctx, World.DEPLOYMENTS, deployment_for(h), outcome)
    assert outcome.writes == 1
    assert result["spec"]["replicas"] == 1
    assert "f:replicas" not in fields_of(result, "kubectl-scale", "Update").get("f:spec", {})
    await h.stop()


@virtual_time
async def test_apply_child_reapplies_when_the_desired_manifest_changes() -> None:
    h = Harness()
    await apply_child(h.ctx, World.DEPLOYMENTS, deployment_for(h, replicas=1), Outcome())
    outcome = Outcome()
    result = await apply_child(h.ctx, World.DEPLOYMENTS, deployment_for(h, replicas=0), outcome)
    assert outcome.writes == 1
    assert result["spec"]["replicas"] == 0


@virtual_time
async def test_write_status_writes_only_changes_and_removes_dropped_keys() -> None:
    h = await Harness(workers=0).start()  # nothing but this test writes
    h.pause_watch()  # the cache lags: only the remembered reply shows the new status
    h.create(bot("b"))
    await h.resume_watch()
    h.pause_watch()
    tb = h.world.get(World.BOTS, (NS, "b"))
    assert tb is not None
    outcome = Outcome()
    await write_status(h.ctx, c.KIND_BOT, World.BOTS, tb, {"reason": "A", "vpnRttMs": 3}, outcome)
    written = h.world.get(World.BOTS, (NS, "b"))
    assert written is not None and written["status"] == {"reason": "A", "vpnRttMs": 3}
    await write_status(
        h.ctx, c.KIND_BOT, World.BOTS, written, {"reason": "A", "vpnRttMs": 3}, outcome
    )
    assert outcome.writes == 1, "an unchanged status is not written"
    await write_status(h.ctx, c.KIND_BOT, World.BOTS, written, {"reason": "B"}, outcome)
    assert h.status("b") == {"reason": "B"}, "a key no longer reported is removed"
    assert h.get("TradingBot", "b")["metadata"]["generation"] == 1  # type: ignore[index]


@pytest.mark.parametrize(("replicas", "allowed", "writes"), [(2, 0, 1), (1, 1, 0), (0, 0, 0)])
@virtual_time
async def test_lower_to_scales_down_through_scale_and_never_up(
    replicas: int, allowed: int, writes: int
) -> None:
    h = Harness()
    await h.kube.apply(deployment_for(h))
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"replicas": replicas}})
    dep = h.get("Deployment", "b-bot")
    before = len(h.api.writes("deployments"))
    outcome = Outcome()
    await lower_to(h.ctx, dep, allowed, outcome)
    assert outcome.writes == writes
    new = h.api.writes("deployments")[before:]
    assert len(new) == writes
    assert all(r.path.endswith("/scale") for r in new), "replicas only, through /scale"
    assert h.replicas("b") == min(replicas, max(allowed, replicas if not writes else allowed))


@virtual_time
async def test_a_lowering_write_goes_out_without_the_lease_and_nothing_else_does() -> None:
    h = Harness()
    await h.kube.apply(deployment_for(h))
    h.kube.may_write = lambda: False
    await lower_to(h.ctx, h.get("Deployment", "b-bot"), 0, Outcome())
    assert h.replicas("b") == 0
    with pytest.raises(ApiError):
        await h.kube.scale(NS, "b-bot", 1)  # not marked lowering: needs the Lease


@virtual_time
async def test_no_write_leaves_a_replica_that_is_not_the_leader_but_lease_writes_do() -> None:
    h = Harness()
    h.kube.may_write = lambda: False
    with pytest.raises(ApiError) as refused:
        await h.kube.apply(deployment_for(h))
    assert refused.value.status == 0 and "not the leader" in str(refused.value)
    assert h.api.writes("deployments") == []
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": c.DEFAULT_OPERATOR_NAMESPACE},
        "spec": {},
    }
    path = f"/apis/coordination.k8s.io/v1/namespaces/{c.DEFAULT_OPERATOR_NAMESPACE}/leases"
    await h.kube.create(path, lease, "leases")
    assert len(h.api.writes("leases")) == 1


@virtual_time
async def test_a_401_logs_in_again_and_retries_once_with_the_new_token() -> None:
    h = Harness()
    h.kube.relogin = lambda: "rotated"
    h.api.fail("PATCH", "*/deployments/*", 401, "Unauthorized")
    await h.kube.apply(deployment_for(h))
    assert h.kube.headers["Authorization"] == "Bearer rotated"
    assert [r.status for r in h.api.requests if "deployments" in r.path] == [401, 200]


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "denied by policy"), (409, "conflict"), (422, "is invalid"), (429, "slow down")],
)
@virtual_time
async def test_api_errors_carry_the_status_and_the_servers_message(
    status: int, message: str
) -> None:
    h = Harness()
    h.api.fail("PATCH", "*", status, message)
    with pytest.raises(ApiError) as err:
        await h.kube.apply(deployment_for(h))
    assert err.value.status == status
    assert message in str(err.value)


@virtual_time
async def test_a_lost_connection_and_a_lost_reply_are_status_0() -> None:
    h = Harness()
    h.api.fail("PATCH", "*", 0, "connection reset by peer")
    with pytest.raises(ApiError) as reset:
        await h.kube.apply(deployment_for(h))
    assert reset.value.status == 0
    h.api.fail("PATCH", "*", reply_lost=True)
    with pytest.raises(ApiError) as lost:
        await h.kube.apply(deployment_for(h))
    assert lost.value.status == 0
    assert h.replicas("b") == 1, "the write whose reply was lost did land"


@virtual_time
async def test_apply_unwatched_writes_once_per_change_and_restores_after_the_interval() -> None:
    """A bot's ServiceAccount/Role/RoleBinding are not watched: applied once, not again
    while unchanged, again when they change, and again after the re-apply interval (a
    hand deletion heals)."""
    h = Harness()
    tb = api.TradingBot.from_body(h.create(bot("b")))
    for manifest in bot_access.build_bot_access(tb):
        await apply_unwatched(h.ctx, manifest, Outcome())
    assert h.api.get("Role", NS, "b-bot") is not None
    writes = len(h.api.writes("roles"))
    quiet = Outcome()
    for manifest in bot_access.build_bot_access(tb):
        await apply_unwatched(h.ctx, manifest, quiet)
    assert quiet.writes == 0 and len(h.api.writes("roles")) == writes

    h.api.delete("Role", NS, "b-bot")
    h.ctx.monotonic = lambda: 10_000.0  # past unwatched_reapply_seconds
    healed = Outcome()
    await apply_unwatched(h.ctx, bot_access.build_bot_role(tb), healed)
    assert healed.writes == 1 and h.api.get("Role", NS, "b-bot") is not None
