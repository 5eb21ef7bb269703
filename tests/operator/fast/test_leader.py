"""LeaderElector on the in-memory API server: acquire, renew, takeover, never two leaders.

Each elector talks through its own FakeKube (its own user, so faults can hit one
replica only). Virtual time: a Lease period passes in microseconds, and a monitor
samples both replicas every 50 ms of it to check that two never lead at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from spy_dev.fake_kube import FakeApiServer, FakeKube
from spy_operator import constants as c
from spy_operator.leader import LeaderElector
from virtual_time import virtual_time

NS = c.DEFAULT_OPERATOR_NAMESPACE
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{c.LEASE_NAME}"


def elector(api: FakeApiServer, user: str, **kwargs: object) -> LeaderElector:
    return LeaderElector(FakeKube(api, user=user), NS, c.LEASE_NAME, **kwargs)  # type: ignore[arg-type]


def lease(api: FakeApiServer) -> dict[str, object]:
    found = api.get("Lease", NS, c.LEASE_NAME)
    assert found is not None
    return dict(found["spec"])


@contextmanager
def running(*electors: LeaderElector) -> Iterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(e.run()) for e in electors]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()


class Overlap:
    """Samples every elector; records any moment when two believe they lead."""

    def __init__(self, *electors: LeaderElector) -> None:
        self.electors = electors
        self.both: list[float] = []
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if sum(e.is_leader for e in self.electors) > 1:
                self.both.append(loop.time())
            await asyncio.sleep(0.05)


async def until(probe: object, within: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not probe():  # type: ignore[operator]
        if loop.time() - start > within:
            raise AssertionError(f"not within {within} virtual seconds")
        await asyncio.sleep(0.05)
    return loop.time() - start


@virtual_time
async def test_first_replica_creates_the_lease_and_leads() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    elected: list[float] = []
    a = elector(api, "a", on_elected=lambda: elected.append(asyncio.get_running_loop().time()))
    with running(a):
        await until(lambda: a.is_leader, 1)
        await asyncio.sleep(60)
    spec = lease(api)
    assert spec["holderIdentity"] == a.identity
    assert spec["leaseTransitions"] == 0
    assert len(elected) == 1, "renewals must not re-announce the election"
    assert a.elected.is_set()


@virtual_time
async def test_a_standby_never_takes_a_lease_that_is_being_renewed() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a, b = elector(api, "a"), elector(api, "b")
    with running(a):
        await until(lambda: a.is_leader, 1)
        with running(b):
            overlap = Overlap(a, b)
            await asyncio.sleep(300)
            assert a.is_leader and not b.is_leader
            assert overlap.both == []
    assert lease(api)["holderIdentity"] == a.identity


@virtual_time
async def test_a_dead_leaders_lease_is_taken_over_after_one_lease_period_not_before() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a, b = elector(api, "a"), elector(api, "b")
    with running(a) as (task_a,):
        await until(lambda: a.is_leader, 1)
        with running(b):
            await asyncio.sleep(10)
            task_a.cancel()  # SIGKILL: no release
            last_renew = max(r.time for r in api.requests if r.user == "a" and r.is_write)
            took = await until(lambda: b.is_leader, 30)
            waited = asyncio.get_running_loop().time() - last_renew
    assert 15 <= waited <= 15 + 2 * 2 + 0.1, f"takeover {waited} s after the last renew"
    assert took > 0
    spec = lease(api)
    assert spec["holderIdentity"] == b.identity
    assert spec["leaseTransitions"] == 1


@virtual_time
async def test_a_frozen_leader_stops_acting_before_a_standby_can_take_over() -> None:
    """A holder whose renewals hang (a paused process, a partition) must believe it
    leads for less than the Lease period, so the two never act at once."""
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a, b = elector(api, "a"), elector(api, "b")
    with running(a):
        await until(lambda: a.is_leader, 1)
        with running(b):
            overlap = Overlap(a, b)
            await asyncio.sleep(5)
            freeze = asyncio.Event()
            api.fail(None, LEASE_PATH, user="a", times=None, hang=freeze)
            await until(lambda: b.is_leader, 40)
            assert not a.is_leader
            freeze.set()  # a wakes up: its stale renewal must not win
            api.faults.clear()
            await asyncio.sleep(60)
            assert b.is_leader and not a.is_leader
            assert overlap.both == []


@virtual_time
async def test_the_standby_judges_expiry_on_its_own_clock_not_the_leaders() -> None:
    """The leader's clock is an hour behind: its renewTime looks ancient, yet it renews."""
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    skewed = elector(api, "a", clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    b = elector(api, "b")
    with running(skewed):
        await until(lambda: skewed.is_leader, 1)
        with running(b):
            await asyncio.sleep(120)
            assert skewed.is_leader and not b.is_leader


@virtual_time
async def test_failed_renewals_end_leadership_and_recovery_restores_it() -> None:
    loop = asyncio.get_running_loop()
    api = FakeApiServer(clock=loop.time)
    elected: list[float] = []
    a = elector(api, "a", on_elected=lambda: elected.append(loop.time()))
    with running(a):
        await until(lambda: a.is_leader, 1)
        await asyncio.sleep(5)  # a few renewals
        api.fail("PUT", LEASE_PATH, 500, times=None)
        last_ok = max(r.time for r in api.requests if r.verb == "PUT" and r.status == 200)
        await until(lambda: not a.is_leader, 20)
        lapsed = loop.time() - last_ok
        # lease 15 s, renew 2 s: the holder stops acting 11 s after its last renewal
        assert 10.9 <= lapsed <= 11.1 + 2
        await until(lambda: not a.elected.is_set(), 3)  # the loop has seen the loss
        api.faults.clear()
        await until(lambda: a.is_leader, 5)
    assert len(elected) == 2, "regaining leadership must announce it (the controller re-queues)"


@virtual_time
async def test_every_return_of_leadership_is_announced() -> None:
    """is_leader turns False on its own 11 s after the last renewal (the controller then
    defers every key); if the very next renewal succeeds, the election loop must still
    see the lapse and call on_elected, or the deferred keys wait for the next resync
    (up to 30 s). Failed before the fix."""
    loop = asyncio.get_running_loop()
    api = FakeApiServer(clock=loop.time)
    elected: list[float] = []
    a = elector(api, "a", on_elected=lambda: elected.append(loop.time()))
    with running(a):
        await until(lambda: a.is_leader, 1)
        await asyncio.sleep(5)
        api.fail("PUT", LEASE_PATH, 500, times=None)
        await until(lambda: not a.is_leader, 20)
        api.faults.clear()  # before the election loop's next round
        await until(lambda: a.is_leader, 5)
    assert len(elected) == 2


@virtual_time
async def test_a_lost_update_race_409_is_not_leadership() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a = elector(api, "a")
    with running(a):
        await until(lambda: a.is_leader, 1)
        api.fail("PUT", LEASE_PATH, 409, "the object has been modified", times=None)
        await until(lambda: not a.is_leader, 20)
        api.faults.clear()
        await until(lambda: a.is_leader, 5)


@virtual_time
async def test_two_replicas_starting_together_elect_exactly_one() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a, b = elector(api, "a"), elector(api, "b")
    with running(a, b):
        overlap = Overlap(a, b)
        await asyncio.sleep(60)
        assert a.is_leader != b.is_leader
        assert overlap.both == []
    creates = [r for r in api.requests if r.verb == "POST"]
    assert [r.status for r in creates].count(201) == 1


@virtual_time
async def test_a_malformed_lease_does_not_end_election() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    api.apply(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": c.LEASE_NAME, "namespace": NS},
            "spec": {"holderIdentity": "someone", "leaseDurationSeconds": "fifteen"},
        }
    )
    a = elector(api, "a")
    with running(a) as (task,):
        await asyncio.sleep(10)
        assert not a.is_leader
        assert not task.done(), "the election loop must survive a malformed Lease"
        api.patch("Lease", NS, c.LEASE_NAME, {"spec": {"leaseDurationSeconds": 15}})
        await until(lambda: a.is_leader, 30)


@virtual_time
async def test_release_hands_the_lease_to_the_standby_at_once() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    a, b = elector(api, "a"), elector(api, "b")
    with running(a) as (task_a,):
        await until(lambda: a.is_leader, 1)
        with running(b):
            await asyncio.sleep(5)
            task_a.cancel()
            await asyncio.sleep(0)
            await a.release()
            assert not a.is_leader
            took = await until(lambda: b.is_leader, 15)
    assert took <= 2 + 0.1, "a released Lease is taken at the standby's next attempt"
