"""reconcile_ibgateway / reconcile_optionsdetector / reconcile_tradingbot through the
Controller on the in-memory API server: children, status, client ids, VPN facts.

The VPN probe is a scripted stand-in (`ScriptedProber`): the real one opens TCP
connections and keeps its own monotonic clock (see test_seams.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import operator_support as support
import pytest
from operator_harness import NS, Harness, armed_at, bot
from spy_operator.vpn import ProbeResult
from virtual_time import virtual_time


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    return support.condition(obj, type_)


def detector(name: str = "det", shards: int = 2, gw: str = "gw") -> dict[str, Any]:
    return {
        "apiVersion": "spyoptions.io/v1alpha1",
        "kind": "OptionsDetector",
        "metadata": {"name": name},
        "spec": {"image": "spyoptions.azurecr.io/detector:1", "gatewayRef": {"name": gw},
                 "shards": shards},
    }  # fmt: skip


class ScriptedProber:
    """VpnProber's read side with results set by the test."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, int], ProbeResult | None] = {}

    def result(self, target: Any) -> ProbeResult | None:
        return self.results.get((target.host, target.port))


@virtual_time
async def test_a_gateway_gets_its_statefulset_and_services_and_reports_ready() -> None:
    h = await Harness().start()
    h.paper_world()
    await h.wait_until(
        "gateway Ready",
        lambda: condition(h.api.peek("IBGateway", NS, "gw"), "Ready").get("status") == "True",
    )
    sts = h.get("StatefulSet", "gw")
    assert sts is not None and sts["spec"]["replicas"] == 1
    assert {"gw", "gw-headless"} <= {
        name for (_, plural, ns, name) in h.api.objects if plural == "services" and ns == NS
    }
    status = (h.get("IBGateway", "gw") or {})["status"]
    assert status["endpoint"] == "gw.trading.svc:4002"
    assert status["observedGeneration"] == 1
    await h.stop()


@pytest.mark.parametrize(
    ("setup", "reason"),
    [("no-credentials", "CredentialsSecretNotFound"), ("not-rolled-out", "GatewayStarting")],
)
@virtual_time
async def test_a_gateway_that_cannot_run_is_not_ready_and_is_looked_at_again(
    setup: str, reason: str
) -> None:
    h = await Harness().start()
    if setup == "no-credentials":
        h.create(support.gateway())
    else:
        h.api.rollouts = False  # pods never become ready
        h.paper_world()
    await h.wait_until(
        reason,
        lambda: condition(h.api.peek("IBGateway", NS, "gw"), "Ready").get("reason") == reason,
    )
    if setup == "no-credentials":
        h.create(support.credentials())
        await h.wait_until(
            "Ready once the Secret exists",
            lambda: condition(h.api.peek("IBGateway", NS, "gw"), "Ready").get("status") == "True",
            within=1,
        )
    await h.stop()


@virtual_time
async def test_a_detector_gets_one_statefulset_replica_and_a_client_id_per_shard() -> None:
    h = await Harness().start()
    h.paper_world()
    h.create(detector(shards=3))
    await h.wait_until(
        "detector Ready",
        lambda: (
            condition(h.api.peek("OptionsDetector", NS, "det"), "Ready").get("status") == "True"
        ),
    )
    sts = h.get("StatefulSet", "det-detector")
    assert sts is not None and sts["spec"]["replicas"] == 3
    status = (h.get("OptionsDetector", "det") or {})["status"]
    assert status["ibClientIds"] == [1, 2, 3]
    await h.stop()


@virtual_time
async def test_client_ids_are_unique_per_gateway_and_move_up_when_an_older_consumer_goes() -> None:
    h = await Harness().start()
    h.paper_world()
    h.create(bot("first"))
    await h.wait_until("first armed", armed_at(h, "first"))
    await h.idle(2)  # a later creationTimestamp
    h.create(bot("second"))
    await h.wait_until("second armed", armed_at(h, "second"))
    ids = {h.status(n)["ibClientId"] for n in ("first", "second")}
    assert len(ids) == 2
    h.api.delete("TradingBot", NS, "first")
    await h.wait_until("second moved up", lambda: h.status("second").get("ibClientId") == 1)
    env = (h.get("Deployment", "second-bot") or {})["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "SPY_IB_CLIENT_ID", "value": "1"} in env["env"]
    await h.stop()


@virtual_time
async def test_a_required_vpn_gates_the_bot_and_its_return_reopens_it() -> None:
    h = await Harness().start()
    prober = ScriptedProber()
    h.ctx.prober = prober  # type: ignore[assignment]
    h.paper_world()
    h.create(bot("b", vpn={"host": "10.8.0.1", "port": 443, "required": True}))
    await h.wait_until("pending", lambda: h.status("b").get("reason") == "VPNProbePending")
    assert h.replicas("b") == 0
    prober.results[("10.8.0.1", 443)] = ProbeResult(True, 12.0)
    took = await h.wait_until("armed once reachable", armed_at(h, "b"), within=10)
    assert took <= 5.1, "the probe is re-read every vpn_recheck_seconds without an event"
    assert h.status("b")["vpnRttMs"] == 12.0
    prober.results[("10.8.0.1", 443)] = ProbeResult(False, None, "timed out")
    await h.wait_until("closed when down", lambda: h.replicas("b") == 0, within=6)
    assert h.status("b")["reason"] == "VPNUnreachable"
    await h.stop()


@virtual_time
async def test_rtt_jitter_rewrites_status_at_most_once_per_report_period() -> None:
    h = await Harness().start()
    prober = ScriptedProber()
    h.ctx.prober = prober  # type: ignore[assignment]
    target = ("10.8.0.1", 443)
    prober.results[target] = ProbeResult(True, 10.0)
    h.paper_world()
    h.create(bot("b", vpn={"host": "10.8.0.1", "port": 443}))
    await h.wait_until("armed", armed_at(h, "b"))
    status_writes = lambda: len(  # noqa: E731
        [r for r in h.api.writes("tradingbots", "status") if "/b/" in r.path]
    )
    before = status_writes()
    for i in range(11):  # 55 s of a jumpy link, 5 s apart
        prober.results[target] = ProbeResult(True, 10.0 + 30 * (i % 2 + 1))
        await h.idle(5)
    assert status_writes() - before <= 1
    await h.idle(10)
    assert h.status("b")["vpnRttMs"] in (40.0, 70.0)
    await h.stop()


@virtual_time
async def test_a_paper_bot_is_never_armed_while_a_gateway_pod_still_runs_live() -> None:
    """Issue 8 finding 2. The gateway StatefulSet's updateStrategy is set to OnDelete by
    hand, then the IBGateway flips from live to paper: the template changes but the
    running pod may keep the live one. Sampled every 10 ms (virtual): whenever the paper
    bot's Deployment runs, no gateway pod may run TRADING_MODE=live."""
    h = await Harness().start()
    h.paper_world(mode="live")
    h.create(bot("b", mode="paper"))
    await h.wait_until(
        "mode mismatch", lambda: h.status("b").get("reason") == "GatewayModeMismatch"
    )
    violations: list[float] = []

    def live_pods() -> list[str]:
        out = []
        for (_, plural, ns, name), pod in h.api.objects.items():
            if plural != "pods" or ns != NS:
                continue
            for container in pod["spec"].get("containers", []):
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                if env.get("TRADING_MODE") == "live":
                    out.append(name)
        return out

    async def watch() -> None:
        while True:
            if (h.replicas("b") or 0) > 0 and live_pods():
                violations.append(h.api.clock())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    h.api.patch("StatefulSet", NS, "gw", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    await h.idle(1)
    h.api.patch("IBGateway", NS, "gw", {"spec": {"tradingMode": "paper"}})
    await h.idle(10)
    assert violations == [], f"paper bot ran beside a live gateway pod at {violations[:3]}"
    if live_pods():  # OnDelete kept: deleting the pod brings the paper one, then it arms
        h.api.delete("Pod", NS, live_pods()[0])
    await h.wait_until("armed once the gateway runs paper", armed_at(h, "b"), within=15)
    assert violations == []
    watcher.cancel()
    await h.stop()
