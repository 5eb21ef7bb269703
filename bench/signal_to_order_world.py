"""The world bench/signal_to_order.py (its only user) sets up: an armed TradingBot with
an operator-like status on the dev control plane, the bot process's environment and
its readiness wait, and the anomalies the publisher sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from spy_dev.devcluster import free_port
from spy_dev.fake_tws import FakeChain

NS, NAME = "bench", "bot"


def anomaly(chain: FakeChain, i: int, ts: datetime) -> dict[str, Any]:
    expiry = datetime.strptime(chain.expiries[1 + i % 3], "%Y%m%d").date()
    strike = 590.0 + 5 * (i % 4)
    text = f"bench|{i}|{ts.isoformat()}"
    return {
        "id": hashlib.sha1(text.encode()).hexdigest(),
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "symbol": "SPY",
        "kind": "iv_residual",
        "severity": "HIGH",
        "score": 4.2,
        "reason": f"bench anomaly {i}",
        "contract": {"expiry": expiry.isoformat(), "strike": strike, "right": "C"},
        "iv": 0.31,
        "fitted_iv": 0.28,
    }


def kubectl(dev_bin: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    import subprocess

    out = subprocess.run(
        [str(dev_bin / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout


def armed_tradingbot(dev_bin: Path, kubeconfig: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    kubectl(dev_bin, kubeconfig, "apply", "-f", str(repo / "crds"))
    kubectl(
        dev_bin, kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"
    )
    kubectl(dev_bin, kubeconfig, "create", "namespace", NS)
    expires = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tb = {
        "apiVersion": "spyoptions.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "image": "example.invalid/spy-bot:bench",
            "gatewayRef": {"name": "gw"},
            "armed": True,
            "approval": {"approvedBy": "bob", "reason": "bench", "expiresAt": expires},
        },
    }
    kubectl(dev_bin, kubeconfig, "apply", "-f", "-", stdin=json.dumps(tb))
    gen = json.loads(
        kubectl(dev_bin, kubeconfig, "get", "tradingbot", NAME, "-n", NS, "-o", "json")
    )["metadata"]["generation"]
    conds = [{"type": t, "status": "True" if t != "Halted" else "False", "reason": t, "message": "bench",
              "lastTransitionTime": expires, "observedGeneration": gen} for t in ("Approved", "Armed", "Halted")]  # fmt: skip
    status = {
        "status": {
            "observedGeneration": gen,
            "armed": True,
            "replicas": 1,
            "reason": "Armed",
            "conditions": conds,
        }
    }
    kubectl(
        dev_bin,
        kubeconfig,
        "patch",
        "tradingbot",
        NAME,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def bot_env(tws_port: int, backend_url: str, kubeconfig: Path, tmp: Path) -> dict[str, str]:
    """The bot's environment: paper mode on the fake TWS, limits that never bind."""
    risk = {"tradingHours": "any", "maxContractsPerOrder": 1, "maxContracts": 10000, "maxPositionPerExpiry": 10000,
            "maxOpenOrders": 1000, "maxOrdersPerMinute": 600, "maxOrderNotional": 100000}  # fmt: skip
    return {
        **os.environ,
        "SPY_TRADINGBOT_NAME": NAME,
        "SPY_TRADINGBOT_NAMESPACE": NS,
        "SPY_BOT_MODE": "paper",
        "SPY_IB_HOST": "127.0.0.1",
        "SPY_IB_PORT": str(tws_port),
        "SPY_IB_CLIENT_ID": "21",
        "SPY_RISK": json.dumps(risk),
        "SPY_BACKEND_URL": backend_url,
        "KUBECONFIG": str(kubeconfig),
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(free_port()),
        "SPY_LOG_LEVEL": "WARNING",
        "SPY_AUDIT_FILE": str(tmp / "audit.jsonl"),
    }


async def wait_ready(bot: asyncio.subprocess.Process, port: str) -> None:
    """Until the bot's /readyz answers 200 (at most ~60 s); RuntimeError if it exits."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if bot.returncode is not None:
                raise RuntimeError(f"the bot exited with {bot.returncode}")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
