"""The Controller end to end on the in-memory API server: events, retries, resync,
expiry, halt and stale caches. Leadership (loss, lapse, takeover, a restarted operator,
the standby's floor) is test_controller_leadership.py.

The operator runs as handlers.startup wires it (tests/operator/fast/operator_harness.py)
with its own index and event handlers; only kopf's watch and the HTTP transport are
stand-ins. Failures are injected per verb and path; time is virtual.
"""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from operator_harness import DEPLOYMENT_APPLY, NS, Harness, armed, armed_at, bot
from spy_operator import constants as c
from virtual_time import virtual_time


def attempts(h: Harness, path_glob: str = DEPLOYMENT_APPLY) -> list[tuple[float, int]]:
    return [
        (r.time, r.status)
        for r in h.api.requests
        if r.verb == "PATCH"
        and fnmatch.fnmatchcase(r.path, path_glob)
        and r.content_type.startswith("application/apply")
    ]


@virtual_time
async def test_a_converged_world_costs_no_writes_on_resync() -> None:
    h = await Harness(resync_seconds=30).start()
    h.paper_world()
    await armed(h, "a", "b")
    h.create(bot("idle", armed=False))
    await h.wait_until("idle closed", lambda: h.status("idle").get("reason") == "NotArmed")
    await h.idle(1)
    before = len(h.api.writes())
    await h.idle(95)  # three resyncs
    assert h.api.writes()[before:] == [], "a level-triggered no-op pass must write nothing"
    await h.stop()


@pytest.mark.parametrize(("armed_", "allowed"), [(True, 1), (False, 0)])
@virtual_time
async def test_a_hand_scale_up_is_set_back_to_what_the_gate_allows(
    armed_: bool, allowed: int
) -> None:
    h = await Harness().start()
    h.paper_world()
    h.create(bot("b", armed=armed_))
    await h.wait_until("bot settled", lambda: h.status("b").get("replicas") == allowed)
    h.api.patch("Deployment", NS, "b-bot", {"spec": {"replicas": 5}}, manager="kubectl-scale")
    took = await h.wait_until("scale-up reverted", lambda: h.replicas("b") == allowed, within=1)
    assert took <= 0.05
    await h.stop()


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        (409, {}),
        (429, {"retry_after": 1}),
        (500, {}),
        (503, {}),
        (504, {}),
        (0, {}),  # connection lost
    ],
    ids=["409", "429", "500", "503", "504", "reset"],
)
@virtual_time
async def test_transient_api_errors_are_retried_with_growing_backoff_until_armed(
    status: int, extra: dict[str, object]
) -> None:
    h = await Harness().start()
    h.paper_world()
    await h.idle(0.5)
    h.api.fail("PATCH", DEPLOYMENT_APPLY, status, f"injected {status}", times=4, **extra)
    h.create(bot("b"))
    await h.wait_until("armed after the errors", armed_at(h, "b"), within=30)
    tries = attempts(h)
    assert len(tries) == 5, tries
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(tries)]
    if extra.get("retry_after"):
        # The server's pacing is a floor under the backoff: it never retries sooner.
        assert all(later >= earlier for earlier, later in itertools.pairwise(gaps)), gaps
        assert min(gaps) >= float(extra["retry_after"])  # type: ignore[arg-type]
    else:
        assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert max(gaps) <= 30
    await h.stop()


@virtual_time
async def test_a_write_whose_reply_was_lost_is_not_repeated_once_the_watch_shows_it() -> None:
    h = await Harness().start()
    h.paper_world()
    await h.idle(0.5)
    h.api.fail("PATCH", DEPLOYMENT_APPLY, reply_lost=True)
    h.create(bot("b"))
    await h.wait_until("armed", armed_at(h, "b"), within=10)
    assert len(attempts(h)) == 1
    await h.stop()


@virtual_time
async def test_a_failed_status_write_is_retried_without_applying_the_child_again() -> None:
    h = await Harness().start()
    h.paper_world()
    await h.idle(0.5)
    h.api.fail("PATCH", f"/apis/{c.API_VERSION}/namespaces/{NS}/tradingbots/b/status", 500)
    h.create(bot("b"))
    await h.wait_until("armed", armed_at(h, "b"), within=10)
    assert len(attempts(h)) == 1, "the retry compares against the remembered apply"
    await h.stop()


@virtual_time
async def test_events_for_a_key_go_before_a_resync_batch_in_the_controller() -> None:
    h = await Harness(workers=1).start()
    h.paper_world()
    names = [f"b{i:02d}" for i in range(30)]
    await armed(h, *names)
    order: list[str] = []
    reconcile = h.controller.reconcile

    async def recording(key: tuple[str, str, str]) -> object:
        order.append(key[2])
        return await reconcile(key)

    h.controller.reconcile = recording  # type: ignore[method-assign]
    h.controller.enqueue_all(urgent=False)  # what the resync timer does
    h.api.patch("Deployment", NS, "b29-bot", {"spec": {"replicas": 3}}, manager="kubectl-scale")
    await h.deliver()  # the event arrives before the worker takes the first key
    await h.wait_until("scale-up reverted", lambda: h.replicas("b29") == 1)
    await h.idle(1)
    assert order.index("b29") <= 1, order[:5]
    await h.stop()


@virtual_time
async def test_a_bot_closes_at_approval_expiry_with_no_event() -> None:
    h = await Harness().start()
    h.paper_world()
    h.create(bot("b", expires_in=100))
    await h.wait_until("armed", armed_at(h, "b"))
    took = await h.wait_until(
        "closed at expiry", lambda: h.replicas("b") == 0, within=120, step=0.05
    )
    assert 99 <= took <= 100.2
    assert h.status("b")["reason"] == "ApprovalExpired"
    await h.stop()


@virtual_time
async def test_a_deleted_credentials_secret_disarms_the_bots_of_that_gateway() -> None:
    h = await Harness().start()
    h.paper_world()
    await armed(h, "a", "b")
    h.api.delete("Secret", NS, "ib-creds")
    await h.wait_until("bots closed", lambda: h.replicas("a") == h.replicas("b") == 0, within=2)
    assert h.status("a")["reason"] == "GatewayNotReady"
    await h.stop()


@virtual_time
async def test_a_halt_closes_every_bot_and_lifting_it_reopens_them() -> None:
    h = await Harness().start()
    h.paper_world()
    names = [f"b{i}" for i in range(12)]
    await armed(h, *names)
    h.halt()
    took = await h.wait_until(
        "all closed", lambda: all(h.replicas(n) == 0 for n in names), within=5
    )
    assert took < 0.5
    assert {h.status(n)["reason"] for n in names} == {"GlobalHalt"}
    h.api.delete("ConfigMap", c.DEFAULT_OPERATOR_NAMESPACE, c.HALT_CONFIGMAP)
    await h.wait_until("all reopened", lambda: all(armed_at(h, n)() for n in names), within=5)
    await h.stop()


@virtual_time
async def test_a_stale_cache_does_not_make_the_operator_write_again() -> None:
    """With the watch stuck, each pass compares against its own remembered writes (for
    World.GHOST_SECONDS; after that an unseen child is taken as deleted and re-applied)."""
    h = await Harness().start()
    h.paper_world()
    await h.idle(0.5)
    h.pause_watch()
    h.create(bot("b"))
    await h.resume_watch()
    h.pause_watch()  # the bot is seen; nothing the operator writes is
    await h.wait_until("armed", armed_at(h, "b"))
    before = len(h.api.writes())
    await h.idle(1)
    h.controller.enqueue_all(urgent=False)  # a resync
    await h.idle(1)
    assert h.api.writes()[before:] == []
    await h.stop()


@virtual_time
async def test_a_child_deleted_while_the_watch_was_expired_is_recreated_by_resync() -> None:
    """410 Gone: the re-list does not report the deletion; the resync finds it missing
    (after the remembered write ages out as a ghost)."""
    h = await Harness(resync_seconds=10).start()
    h.paper_world()
    await armed(h, "b")
    h.pause_watch()
    h.api.delete("Deployment", NS, "b-bot")
    h.api.compact()
    await h.resume_watch()
    assert h.relists == 2
    took = await h.wait_until("recreated", lambda: h.replicas("b") == 1, within=25)
    assert took <= 10 + 0.1
    await h.stop()
