"""The Controller's leadership on the in-memory API server: leadership lost mid-write,
a standby taking over, a halt deferred during a lapse, a restarted operator, and a
standby that lowers only after its grace and never fights the leader.

The operator runs as handlers.startup wires it (operator_harness.py), with a
LeaderElector per replica on the same API server; time is virtual.
"""

from __future__ import annotations

import asyncio

from operator_harness import DEPLOYMENT_APPLY, NS, Harness, armed, armed_at, bot
from spy_dev.fake_kube import AdmissionRequest
from spy_operator import constants as c
from virtual_time import virtual_time


@virtual_time
async def test_leadership_lost_mid_write_refuses_the_rest_and_resumes_on_reelection() -> None:
    """The halt's Deployment write hangs in flight while the Lease cannot be renewed: it
    lands late, nothing is sent after leadership lapsed, and once the Lease is held
    again the status catches up."""
    loop = asyncio.get_running_loop()
    h = await Harness(leader=True).start()
    h.paper_world()
    await armed(h, "b")
    assert h.leader is not None
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{c.DEFAULT_OPERATOR_NAMESPACE}/*"
    in_flight = asyncio.Event()
    h.api.fail("PATCH", DEPLOYMENT_APPLY, hang=in_flight, reply_lost=True)
    h.api.fail("PUT", lease_path, 500, times=None)
    h.halt()
    await h.wait_until("lost leadership", lambda: not h.leader.is_leader, within=15)  # type: ignore[union-attr]
    lapsed_at = loop.time()
    await h.wait_until("loop noticed", lambda: not h.leader.elected.is_set(), within=3)  # type: ignore[union-attr]
    in_flight.set()
    await h.idle(40)  # retries and a resync come and go while not leading
    sent_after = [
        r for r in h.api.requests if r.is_write and "leases" not in r.path and r.time > lapsed_at
    ]
    assert sent_after == []
    assert h.replicas("b") == 0, "the write that was in flight landed"
    assert h.status("b")["reason"] == "Armed", "its status write was refused locally"
    h.api.faults.clear()
    took = await h.wait_until(
        "status caught up", lambda: h.status("b").get("reason") == "GlobalHalt", within=5
    )
    assert took <= 2.1
    await h.stop()


@virtual_time
async def test_a_standby_takes_over_and_enforces_a_halt_set_while_nobody_led() -> None:
    first = await Harness(leader=True).start()
    first.paper_world()
    await armed(first, "b")
    standby = await Harness(first.api, leader=True, user="standby").start()
    await standby.idle(5)
    assert standby.leader is not None and not standby.leader.is_leader
    for task in [*first.controller._tasks, *first._tasks]:
        task.cancel()  # SIGKILL: no Lease release
    first.halt()
    took = await standby.wait_until("halt enforced", lambda: standby.replicas("b") == 0, within=30)
    assert took <= 15 + 2 * 2
    await standby.wait_until("status", lambda: standby.status("b").get("reason") == "GlobalHalt")
    await standby.stop()


@virtual_time
async def test_a_halt_deferred_during_a_short_leadership_lapse_is_enforced_on_return() -> None:
    """is_leader lapses 11 s after the last renewal; the halt arriving then is deferred.
    The next renewal succeeds before the election loop noticed the lapse, so on_elected
    (enqueue_all) is not called. Before main's b7538b0 nothing re-queued the deferred
    keys until a resync (a strict xfail then); now a halt is enforced leader or not."""
    h = await Harness(leader=True, resync_seconds=60).start()
    h.paper_world()
    await armed(h, "b")
    assert h.leader is not None
    await h.idle(1)
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{c.DEFAULT_OPERATOR_NAMESPACE}/*"
    h.api.fail("PUT", lease_path, 500, times=None)
    await h.wait_until("lapsed", lambda: not h.leader.is_leader, within=15)  # type: ignore[union-attr]
    h.halt()
    await h.idle(0.05)
    h.api.faults.clear()
    await h.wait_until("leading again", lambda: h.leader.is_leader, within=3)  # type: ignore[union-attr]
    await h.wait_until("halt enforced", lambda: h.replicas("b") == 0, within=5)
    await h.stop()


@virtual_time
async def test_a_restarted_operator_enforces_the_gate_within_5s_of_a_crash() -> None:
    """Issue 8 finding 4. The operator is SIGKILLed (no Lease release); meanwhile a
    disarmed bot is scaled up by hand and an armed bot's approval expires. The restarted
    operator finds the Lease held by its dead predecessor, renewed a moment ago."""
    first = await Harness(leader=True).start()
    first.paper_world()
    first.create(bot("idle", armed=False))
    first.create(bot("expiring", expires_in=8))
    await first.wait_until("settled", armed_at(first, "expiring"))
    await first.wait_until("idle at 0", lambda: first.replicas("idle") == 0)
    await first.idle(4)
    for task in [*first.controller._tasks, *first._tasks]:
        task.cancel()  # SIGKILL: nothing released
    await first.idle(0.5)
    first.api.patch("Deployment", NS, "idle-bot", {"spec": {"replicas": 2}}, manager="kubectl")
    restarted = await Harness(first.api, leader=True, user="spy-operator").start()
    took = await restarted.wait_until(
        "hand scale-up lowered", lambda: restarted.replicas("idle") == 0, within=20
    )
    assert took <= 5, f"the gate was not enforced for {took:.1f} s after the restart"
    took = await restarted.wait_until(
        "expired approval enforced", lambda: restarted.replicas("expiring") == 0, within=20
    )
    assert took <= 5
    await restarted.stop()


async def leader_and_standby() -> tuple[Harness, Harness]:
    leader = await Harness(leader=True).start()
    leader.paper_world()
    await leader.idle(0.5)
    standby = await Harness(leader.api, leader=True, user="standby").start()
    await standby.idle(3)
    assert leader.leader is not None and leader.leader.is_leader
    assert standby.leader is not None and not standby.leader.is_leader
    return leader, standby


def scale_writes(h: Harness, user: str, mark: int) -> list[int]:
    """Replicas set on bot Deployments by `user` since request number `mark`."""
    out = []
    for req in h.api.requests[mark:]:
        if req.user == user and req.is_write and "/deployments/" in req.path:
            replicas = (req.body or {}).get("spec", {}).get("replicas")
            if replicas is not None:
                out.append(int(replicas))
    return out


@virtual_time
async def test_a_standby_lowers_a_hand_scale_up_only_after_its_grace_and_never_raises() -> None:
    leader, standby = await leader_and_standby()
    leader.create(bot("b", armed=False))
    await leader.wait_until("closed", lambda: leader.replicas("b") == 0)
    await leader.idle(1)
    for task in [*leader.controller._tasks, *leader._tasks]:
        task.cancel()  # the leader is gone; the Lease is still valid for ~15 s
    mark = len(standby.api.requests)
    standby.api.patch("Deployment", NS, "b-bot", {"spec": {"replicas": 3}}, manager="kubectl")
    took = await standby.wait_until("lowered", lambda: standby.replicas("b") == 0, within=15)
    # Another pod's standby acts once the holder has not renewed for 3 renew periods
    # (6 s) plus its grace (STANDBY_GRACE_SECONDS); a restarted pod's own predecessor
    # counts as dead at once.
    assert 1.0 <= took <= 8.5, f"lowered after {took:.2f} s"
    assert scale_writes(standby, "standby", mark) == [0]
    await standby.stop()


@virtual_time
async def test_a_standby_with_a_lagging_bot_watch_never_stops_a_bot_the_leader_armed() -> None:
    """kopf runs one watch per resource: the standby's TradingBot stream lags while
    its Deployment stream flows. A bot created armed gets its Deployment from the
    leader; the standby must not lower it (enforce.stop_stray has no grace)."""
    leader, standby = await leader_and_standby()
    standby.pause_watch("tradingbots")
    stopped: list[float] = []

    def refuse_the_standby(req: AdmissionRequest) -> str | None:
        # Record the standby's scale-downs and refuse them: otherwise the two replicas
        # undo each other's writes forever at one instant (a livelock, not a test).
        if req.user == "standby" and req.plural == "deployments":
            stopped.append(leader.api.clock())
            return "the test refuses the standby's writes"
        return None

    leader.api.admission.append(refuse_the_standby)
    leader.create(bot("fresh"))
    await leader.wait_until("armed", armed_at(leader, "fresh"))
    await leader.idle(5)
    assert stopped == [], "the standby tried to stop a bot the leader runs"
    await standby.resume_watch("tradingbots")
    await leader.stop()
    await standby.stop()


@virtual_time
async def test_a_standby_with_a_stale_halt_does_not_fight_the_leader() -> None:
    leader, standby = await leader_and_standby()
    leader.create(bot("b"))
    await leader.wait_until("armed", armed_at(leader, "b"))
    leader.halt()
    await leader.wait_until("halted", lambda: leader.replicas("b") == 0)
    await standby.idle(0.5)
    standby.pause_watch("configmaps")  # the standby keeps seeing the halt
    leader.api.delete("ConfigMap", c.DEFAULT_OPERATOR_NAMESPACE, c.HALT_CONFIGMAP)
    mark = len(leader.api.requests)
    await leader.wait_until("re-armed", armed_at(leader, "b"), within=5)
    await leader.idle(10)
    assert scale_writes(standby, "standby", mark) == [], "the standby lowered a running bot"
    await standby.resume_watch("configmaps")
    await leader.stop()
    await standby.stop()
