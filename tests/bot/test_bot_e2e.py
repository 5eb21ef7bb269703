"""End to end on the real control plane, operator and backend: detector (synthetic) ->
backend -> realtime hub -> bot (paper, fake TWS) -> order, only while armed; disarm ->
the Deployment goes to 0 and the bot cancels its open orders; SIGTERM -> clean exit.

The bot runs as a local process (`python -m spy_bot run`, KWOK pods run nothing) with
the environment the operator put in its Deployment, except the gateway address (the
fake TWS on 127.0.0.1) and what the operator does not set yet (backend URL, kubeconfig).
It reads its TradingBot with a service-account token whose Role allows `get` on that
one object. IB Gateway is spy_dev.fake_tws (the real TWS wire protocol).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from bot_support import until
from k8s_support import Cluster, Kubectl
from operator_support import OperatorProcess, bot, paper_world, wait_bot
from spy_dev.devcluster import free_port
from spy_dev.devserver import DevStack
from spy_dev.fake_tws import FakeTWS, demo_chain

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RISK = {
    "tradingHours": "any",  # the test must pass at night too
    "maxContractsPerOrder": 1,
    "maxOpenOrders": 3,
    "maxContracts": 50,
    "maxPositionPerExpiry": 10,
    "maxOrdersPerMinute": 60,
    "maxOrderNotional": 2000,
    "maxDTE": 60,
}
STRATEGY = {
    "name": "e2e",
    "rules": [
        {
            "name": "fade",
            "when": {"kind": "iv_residual", "minSeverity": "MEDIUM"},
            "action": "fade",
            "width": 5,
        },
        {
            "name": "follow",
            "when": {"kind": "vol_oi", "minSeverity": "MEDIUM"},
            "action": "follow",
            "width": 5,
        },
    ],
}


def bot_kubeconfig(
    cluster: Cluster, kubectl: Kubectl, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig for a service account that may only `get` this one TradingBot."""
    kubectl("create", "serviceaccount", "spy-bot", "-n", namespace)
    kubectl(
        "create", "role", "spy-bot", "-n", namespace, "--verb=get",
        "--resource=tradingbots.spyoptions.io", f"--resource-name={name}",
    )  # fmt: skip
    kubectl(
        "create",
        "rolebinding",
        "spy-bot",
        "-n",
        namespace,
        "--role=spy-bot",
        f"--serviceaccount={namespace}:spy-bot",
    )
    token = kubectl("create", "token", "spy-bot", "-n", namespace, "--duration=1h").strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "spy-bot", "user": {"token": token}}],
        "contexts": [
            {
                "name": "spy-bot",
                "context": {"cluster": admin["clusters"][0]["name"], "user": "spy-bot"},
            }
        ],
        "current-context": "spy-bot",
    }
    path.write_text(yaml.safe_dump(config))
    # least privilege holds: the same token may not list bots nor read another one
    assert (
        kubectl.run(
            "--kubeconfig", str(path), "get", "tradingbots", "-n", namespace, check=False
        ).returncode
        != 0
    )
    return path


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def operator_env(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """The environment the operator put in the bot's Deployment."""
    deployment = kubectl.get("deployment", "bot-bot", namespace)
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    # the operator passes spec.risk / spec.strategy (with the schema's defaults filled in)
    assert RISK.items() <= json.loads(env["SPY_RISK"]).items()
    assert json.loads(env["SPY_STRATEGY"])["rules"][0]["when"]["kind"] == "iv_residual"
    return env


def detector_env(backend: DevStack) -> dict[str, str]:
    return {
        **os.environ,
        "SPY_SOURCE": "synthetic",
        "SPY_SYNTHETIC_INTERVAL": "1",
        "SPY_BACKEND_URL": backend.url,
        "SPY_BACKEND_TOKEN": backend.ingest_token,
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(free_port()),
    }


async def start_module(module: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """`python -m <module> run`, its stderr to `log`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip


def with_audit_and_logs(exc: AssertionError, audit: Path, logs: list[Path]) -> AssertionError:
    """The failure, with the audit events counted and the tail of each log."""
    counts: dict[str, int] = {}
    for r in audit_lines(audit):
        key = r["event"] if r["event"] != "decision" else f"decision:{r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs}
    return AssertionError(f"{exc}\naudit: {counts}\nlogs: {tails}")


async def test_detector_to_order_only_while_armed(
    cluster: Cluster,
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    backend: DevStack,
    tmp_path: Path,
) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("bot", armed=False, strategy=STRATEGY, risk=RISK), namespace)
    wait_bot(kubectl, namespace, "bot", 0, "NotArmed")
    env = operator_env(kubectl, namespace)

    tws = FakeTWS(demo_chain())  # every expiry to 70 days, $1 strikes 450..750
    await tws.start()
    tws.book.fill_mode = "manual"  # orders stay working until disarm cancels them
    audit = tmp_path / "audit.jsonl"
    bot_env = {
        **os.environ,
        **env,  # what the operator sets: name, namespace, mode, client id, strategy, risk
        "SPY_IB_HOST": "127.0.0.1",  # the Service DNS name does not resolve outside a cluster
        "SPY_IB_PORT": str(tws.port),
        "SPY_BACKEND_URL": backend.url,
        "KUBECONFIG": str(
            bot_kubeconfig(cluster, kubectl, namespace, "bot", tmp_path / "bot.kubeconfig")
        ),
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(free_port()),
        "SPY_AUDIT_FILE": str(audit),
        "SPY_ARMED_CHECK_SECONDS": "0.5",
    }
    logs = [tmp_path / "bot.log", tmp_path / "detector.log"]
    bot_proc = await start_module("spy_bot", bot_env, logs[0])
    detector = await start_module("spy_detector", detector_env(backend), logs[1])
    try:
        await e2e_flow(kubectl, namespace, tws, audit, bot_env, bot_proc)
    except AssertionError as exc:
        raise with_audit_and_logs(exc, audit, logs) from exc
    finally:
        for proc in (bot_proc, detector):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await tws.stop()


def set_armed(kubectl: Kubectl, namespace: str, armed: bool) -> None:
    patch = json.dumps({"spec": {"armed": armed}})
    kubectl("patch", "tradingbot", "bot", "-n", namespace, "--type=merge", "-p", patch)


def refusals(audit: Path, reason: str) -> list[dict[str, Any]]:
    return [r for r in audit_lines(audit) if r["event"] == "decision" and r["reason"] == reason]


async def e2e_flow(
    kubectl: Kubectl,
    namespace: str,
    tws: FakeTWS,
    audit: Path,
    bot_env: dict[str, str],
    bot_proc: asyncio.subprocess.Process,
) -> None:
    # disarmed: signals arrive and are refused, nothing reaches the gateway
    await until("a refusal while disarmed", lambda: refusals(audit, "NotArmed"), within=120)
    assert tws.book.placed() == [] and tws.book.what_ifs, (
        "refused after the what-if, before any order"
    )

    # arm: the operator opens the gate; the bot's own check now passes
    set_armed(kubectl, namespace, True)
    await asyncio.to_thread(wait_bot, kubectl, namespace, "bot", 1, "Armed")
    await orders_placed_while_armed(tws, audit, bot_env["SPY_HTTP_PORT"])

    # disarm: Deployment to 0, and the running bot cancels what is still working
    set_armed(kubectl, namespace, False)
    await asyncio.to_thread(wait_bot, kubectl, namespace, "bot", 0, "NotArmed")
    await orders_cancelled_and_refused_again(tws, audit)

    # every signal seen has exactly one decision
    lines = audit_lines(audit)
    seen = [r["signal"]["id"] for r in lines if r["event"] == "signal"]
    decided = [r["signal_id"] for r in lines if r["event"] == "decision"]
    assert len(seen) == len(set(seen)) and seen[: len(decided)] == decided

    # SIGTERM (the pod going away): exits within the grace period, audit closed
    bot_proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(bot_proc.wait(), 15) == 0
    assert audit_lines(audit)[-1]["event"] == "shutdown"


async def orders_placed_while_armed(tws: FakeTWS, audit: Path, http_port: str) -> None:
    await until("an order at the fake gateway", tws.book.placed, within=60)
    lines = audit_lines(audit)
    orders = [r for r in lines if r["event"] == "order"]
    assert orders and {o["order_ref"] for o in orders} <= {o.order_ref for o in tws.book.placed()}
    refs = [o.order_ref for o in tws.book.placed()]
    assert len(refs) == len(set(refs)), "one order per signal"
    # probes and metrics, like the detector's
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        metrics = (await http.get("/metrics")).text
    assert 'spy_bot_decisions_total{decision="order",reason="Accepted"}' in metrics
    assert "spy_bot_armed 1.0" in metrics


async def orders_cancelled_and_refused_again(tws: FakeTWS, audit: Path) -> None:
    await until(
        "every order cancelled",
        lambda: all(o.status != "Submitted" for o in tws.book.placed()),
        within=20,
    )
    assert {o.status for o in tws.book.placed()} == {"Cancelled"}
    cancels = [r for r in audit_lines(audit) if r["event"] == "cancel"]
    assert {c["order_ref"] for c in cancels} == {o.order_ref for o in tws.book.placed()}
    placed_before = len(tws.book.placed())
    n_refused = len(refusals(audit, "NotArmed"))
    await until(
        "signals refused again after the disarm",
        lambda: len(refusals(audit, "NotArmed")) > n_refused,
        within=60,
    )
    assert len(tws.book.placed()) == placed_before
