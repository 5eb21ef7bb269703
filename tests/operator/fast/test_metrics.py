"""The operator's metrics the chart's alerts and dashboard need (helm/spy-options/
files/): the VPN probe's RTT and each bot's approval expiry, read from the process's
Prometheus registry while the real controller runs on the in-memory API server."""

from __future__ import annotations

import asyncio

from operator_harness import EPOCH, NS, Harness, armed_at, bot
from prometheus_client import REGISTRY
from spy_operator.api import VpnTarget
from spy_operator.vpn import ProbeResult, VpnProber
from virtual_time import virtual_time

EXPIRY = "spy_operator_bot_approval_expiry_timestamp_seconds"
RTT = "spy_operator_vpn_rtt_seconds"


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@virtual_time
async def test_approval_expiry_is_exported_per_bot_and_dropped_with_the_bot() -> None:
    h = await Harness().start()
    h.paper_world()
    h.create(bot("exp-a", expires_in=600))
    h.create(bot("exp-b", expires_in=None))  # no approval: no series
    await h.wait_until("armed", armed_at(h, "exp-a"))
    await h.idle(1)
    expires = sample(EXPIRY, namespace=NS, bot="exp-a")
    assert expires is not None
    assert abs(expires - (EPOCH.timestamp() + 600)) < 2
    assert sample(EXPIRY, namespace=NS, bot="exp-b") is None
    h.api.delete("TradingBot", NS, "exp-a")
    await h.wait_until(
        "series dropped", lambda: sample(EXPIRY, namespace=NS, bot="exp-a") is None, within=5
    )
    await h.stop()


@virtual_time
async def test_vpn_rtt_is_exported_in_seconds_and_dropped_when_the_probe_fails() -> None:
    answers = [ProbeResult(True, 42.0), ProbeResult(False, None, "timed out after 2 s")]

    async def probe(host: str, port: int, timeout: float) -> ProbeResult:  # noqa: ASYNC109
        return answers.pop(0)

    loop = asyncio.get_running_loop()
    prober = VpnProber(ttl=5, max_age=60, clock=loop.time, probe=probe)
    target = VpnTarget("10.77.0.1", 8443, 2.0, True)
    prober.result(target)
    await asyncio.sleep(1)
    assert sample(RTT, target="10.77.0.1:8443") == 0.042
    await asyncio.sleep(5)
    prober.result(target)  # older than ttl: probes again, and this probe fails
    await asyncio.sleep(1)
    assert sample(RTT, target="10.77.0.1:8443") is None
