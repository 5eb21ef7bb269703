"""Behaviour the fast tier cannot reach yet: each test is written against the seam it
needs and is a strict xfail until the seam exists (the reason names it)."""

from __future__ import annotations

import asyncio

from operator_harness import NS, Harness, armed_at, bot
from spy_dev.fake_kube import FakeApiServer, FakeKube
from virtual_time import virtual_time

DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments/*"


@virtual_time
async def test_a_429_is_retried_no_sooner_than_retry_after() -> None:
    """Kube turns Status.details.retryAfterSeconds into ApiError.retry_after; the
    controller's backoff waits at least that long (failed on the code before)."""
    h = await Harness().start()
    h.paper_world()
    await h.idle(0.5)
    h.api.fail("PATCH", DEPLOYMENTS, 429, "too many requests", retry_after=7)
    h.create(bot("b"))
    await h.wait_until("armed", armed_at(h, "b"), within=30)
    tries = [r.time for r in h.api.requests if r.verb == "PATCH" and "/deployments/" in r.path]
    assert tries[1] - tries[0] >= 7
    await h.stop()


@virtual_time
async def test_a_vpn_result_older_than_max_age_closes_the_gate() -> None:
    from spy_operator.api import VpnTarget
    from spy_operator.vpn import ProbeResult, VpnProber

    loop = asyncio.get_running_loop()
    hang = asyncio.Event()

    async def probe(host: str, port: int, timeout: float) -> ProbeResult:  # noqa: ASYNC109
        if hang.is_set():
            await asyncio.Event().wait()  # a blackholed tunnel: never answers
        return ProbeResult(True, 5.0)

    prober = VpnProber(ttl=5, max_age=60, clock=loop.time, probe=probe)
    target = VpnTarget("10.8.0.1", 443, 2.0, True)
    prober.result(target)
    await asyncio.sleep(1)
    assert prober.result(target) == ProbeResult(True, 5.0)
    hang.set()
    await asyncio.sleep(61)
    assert prober.result(target) is None


@virtual_time
async def test_the_operator_as_started_refuses_writes_until_elected() -> None:
    from spy_operator import handlers

    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    kube = FakeKube(api)
    build = handlers.build_controller
    controller = build(kube, {"SPY_LEADER_ELECTION": "true", "SPY_OPERATOR_NAMESPACE": "spy"})
    assert controller.leader is not None
    assert kube.may_write() is False
    controller.start()
    await asyncio.sleep(1)
    assert kube.may_write() is True
    await controller.stop()
