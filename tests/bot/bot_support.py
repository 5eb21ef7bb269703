"""Helpers for the bot's tests: TradingBots whose status a test sets as the operator
would, a bot wired to the fake TWS, anomaly records on the fake chain, audit queries.

The Kubernetes API is the real local control plane (the `cluster` fixture); the IB
Gateway is spy_dev.fake_tws speaking the real TWS protocol to the real ib_async.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from k8s_support import Cluster, Kubectl
from operator_support import bot as bot_manifest
from spy_bot.audit import AuditLog
from spy_bot.broker import Broker
from spy_bot.kube import TradingBotReader, credentials
from spy_bot.risk import RiskLimits
from spy_bot.service import Bot
from spy_bot.settings import Settings
from spy_bot.signals import Signal, from_record
from spy_bot.strategy import DEFAULT_RULES, Strategy
from spy_dev.fake_tws import FakeChain, FakeTWS

# Limits roomy enough that a test trips only the one it is about; trading hours "any"
# so tests pass at night (the calendar has its own tests).
ROOMY = RiskLimits(
    max_contracts_per_order=5,
    max_contracts=50,
    max_position_per_expiry=50,
    max_order_notional=50_000,
    max_open_orders=20,
    max_orders_per_minute=100,
    max_daily_loss=1000,
    trading_hours=False,
)


def bot_chain(**kw: Any) -> FakeChain:
    """A fake chain whose verticals have a price (time value falls with distance)."""
    return FakeChain(time_value_decay=10.0, **kw)


def armed_tradingbot(
    kubectl: Kubectl, namespace: str, name: str = "bot", armed: bool = True, **spec: Any
) -> dict[str, Any]:
    """Create a TradingBot and write the status the operator writes when armed."""
    kubectl.apply(bot_manifest(name, armed=armed, **spec), namespace)
    return write_status(kubectl, namespace, name, armed=armed)


def write_status(kubectl: Kubectl, namespace: str, name: str, armed: bool) -> dict[str, Any]:
    tb = kubectl.get("tradingbot", name, namespace)
    gen = tb["metadata"]["generation"]
    status = "True" if armed else "False"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        {
            "type": t,
            "status": s,
            "reason": r,
            "message": "set by the test",
            "lastTransitionTime": now,
            "observedGeneration": gen,
        }
        for t, s, r in (
            ("Approved", status, "Approved"),
            ("Armed", status, "Armed" if armed else "NotArmed"),
            ("Halted", "False", "NoHalt"),
        )
    ]
    body = {
        "status": {
            "observedGeneration": gen,
            "armed": armed,
            "replicas": int(armed),
            "reason": "Armed" if armed else "NotArmed",
            "conditions": conditions,
        }
    }
    kubectl(
        "patch",
        "tradingbot",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(body),
    )
    return kubectl.get("tradingbot", name, namespace)  # type: ignore[no-any-return]


def disarm(kubectl: Kubectl, namespace: str, name: str = "bot") -> None:
    kubectl(
        "patch",
        "tradingbot",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"armed": false}}',
    )


def anomaly_record(
    chain: FakeChain,
    *,
    kind: str = "iv_residual",
    severity: str = "HIGH",
    expiry_index: int = 1,
    strike: float = 600.0,
    right: str = "C",
    rich: bool = True,
    ts: datetime | None = None,
    symbol: str = "SPY",
) -> dict[str, Any]:
    ts = ts or datetime.now(UTC)
    expiry = datetime.strptime(chain.expiries[expiry_index], "%Y%m%d").date()
    text = f"{kind}|{symbol}|{expiry}|{strike:.2f}|{right}|{ts.isoformat()}"
    return {
        "id": hashlib.sha1(text.encode()).hexdigest(),
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "symbol": symbol,
        "kind": kind,
        "severity": severity,
        "score": 4.2 if rich else -4.2,
        "reason": "IV is 4.2 sigma off the fitted smile",
        "contract": {"expiry": expiry.isoformat(), "strike": strike, "right": right},
        "iv": 0.31 if rich else 0.2,
        "fitted_iv": 0.27 if rich else 0.25,
    }


def anomaly(chain: FakeChain, **kw: Any) -> Signal:
    return from_record("anomaly", anomaly_record(chain, **kw))


@dataclass
class Harness:
    bot: Bot
    tws: FakeTWS
    out: io.StringIO

    @property
    def audit(self) -> AuditLog:
        return self.bot.audit

    async def handle(self, s: Signal) -> dict[str, Any]:
        """Handle a signal and wait until any order it sent has reached the gateway."""
        await self.bot.handle(s)
        book = self.tws.book
        await until(
            "the order at the gateway",
            lambda: len(book.placed()) + len(book.rejected) >= len(self.bot.broker.ledger),
        )
        return self.last_decision()

    def decisions(self) -> list[dict[str, Any]]:
        return self.audit.of("decision")

    def last_decision(self) -> dict[str, Any]:
        return self.decisions()[-1]

    def lines(self) -> list[dict[str, Any]]:
        """The audit as written to stdout (what operators collect)."""
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


async def start_bot(
    cluster: Cluster,
    tws: FakeTWS,
    namespace: str,
    name: str = "bot",
    *,
    limits: RiskLimits = ROOMY,
    strategy: Strategy | None = None,
    client_id: int = 11,
    clock: Callable[[], datetime] | None = None,
    market_open: Callable[[datetime], bool] | None = None,
) -> Harness:
    settings = Settings(
        bot_name=name,
        bot_namespace=namespace,
        ib_port=tws.port,
        ib_client_id=client_id,
        ib_timeout=5.0,
        strategy=strategy or Strategy("default", DEFAULT_RULES),
        limits=limits,
        backend_url="http://127.0.0.1:9",
        armed_check_seconds=0.2,
    )
    reader = TradingBotReader(credentials(str(cluster.kubeconfig_for("admin"))), namespace, name)
    broker = Broker("127.0.0.1", tws.port, client_id, timeout=5.0)
    out = io.StringIO()
    kw: dict[str, Any] = {}
    if clock is not None:
        kw["clock"] = clock
    if market_open is not None:
        kw["market_open"] = market_open
    bot = Bot(settings, broker, reader, AuditLog(settings.bot, stream=out), **kw)
    await broker.connect()
    return Harness(bot, tws, out)


async def until(what: str, probe: Callable[[], Any], within: float = 10.0) -> Any:
    """Wait (without blocking the loop the fake gateway runs on) until probe() is truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


def expiry_of(chain: FakeChain, index: int) -> date:
    return datetime.strptime(chain.expiries[index], "%Y%m%d").date()


def days(n: float) -> timedelta:
    return timedelta(days=n)
