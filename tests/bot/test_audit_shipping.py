"""The bot's audit lines at the backend (spy_bot.audit_shipper) against the real backend
on real Azurite: batches arrive once and complete; a backend outage loses nothing (the
bounded buffer keeps every record and ships it when the backend is back, counting the
failed posts); past the bound the oldest records are dropped and counted; a record the
backend refuses is dropped alone, the rest of its batch still arrives; offering never
waits on the backend."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import httpx
from pydantic import SecretStr
from spy_backend.app import create_app
from spy_backend.server import BackgroundServer
from spy_backend.settings import DEV_AUDIT_TOKEN, Settings
from spy_bot.audit import AuditLog
from spy_bot.audit_shipper import AuditShipper
from spy_bot.metrics import BotMetrics
from spy_dev.devcluster import free_port
from spy_dev.devserver import DevStack


def trail(url: str, bot: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {DEV_AUDIT_TOKEN}"}) as c:
        while True:
            params = {"bot": bot, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = c.get("/api/v1/audit", params=params).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def metric(metrics: BotMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def drain(shipper: AuditShipper, within: float = 60.0) -> None:
    """Post until the buffer is empty; a post that fails (a 503 from a loaded storage)
    keeps its records and is simply retried, as the shipper's own loop does."""
    deadline = time.monotonic() + within
    while shipper.buffered and time.monotonic() < deadline:
        await shipper.flush_once()
    assert shipper.buffered == 0, f"{shipper.buffered} records still buffered"


def audit_for(bot: str, shipper: AuditShipper) -> AuditLog:
    audit = AuditLog(bot, stream=open("/dev/null", "w"))  # noqa: SIM115
    audit.sinks.append(shipper.offer)
    return audit


async def test_lines_arrive_once_and_complete(backend: DevStack) -> None:
    bot = f"t-{uuid.uuid4().hex[:6]}/b"
    metrics = BotMetrics()
    shipper = AuditShipper(backend.url, DEV_AUDIT_TOKEN, metrics, batch=50)
    audit = audit_for(bot, shipper)
    audit.write("startup", settings={"bot": bot}, http_port=1)
    for i in range(120):
        audit.write("decision", signal_id=f"s{i}", decision="skip", reason="NoRuleMatches")
    audit.write("order", signal_id="s1", order_ref="spy-x", limit=math.nan)  # NaN -> null
    await drain(shipper)
    await shipper.close()
    items = trail(backend.url, bot)
    assert sorted(r["seq"] for r in items) == list(range(1, 123))
    assert {r["run"] for r in items} == {audit.run}
    order = next(r for r in items if r["event"] == "order")
    assert order["order_ref"] == "spy-x" and order["limit"] is None
    assert metric(metrics, "spy_bot_audit_shipped_total") == 122


async def test_outage_loses_nothing_and_overflow_is_counted(backend: DevStack) -> None:
    bot = f"t-{uuid.uuid4().hex[:6]}/b"
    port = free_port()  # nothing listens here yet: the backend is down
    metrics = BotMetrics()
    shipper = AuditShipper(f"http://127.0.0.1:{port}", DEV_AUDIT_TOKEN, metrics, max_buffer=300)
    audit = audit_for(bot, shipper)
    started = time.perf_counter()
    for i in range(250):
        audit.write("decision", signal_id=f"s{i}", decision="skip", reason="NoRuleMatches")
    assert time.perf_counter() - started < 1.0, "offering never waits on the backend"
    assert not await shipper.flush_once()
    assert not await shipper.flush_once()
    assert shipper.buffered == 250
    failures = metrics.registry.get_sample_value
    assert (failures("spy_bot_audit_post_failures_total", {"why": "ConnectError"}) or 0) == 2

    settings = Settings(
        environment="development",
        storage_connection_string=SecretStr(backend.azurite.connection_string),
        table_prefix="s" + uuid.uuid4().hex[:10],
    )
    server = BackgroundServer(create_app(settings, run_purge=False), port=port).start()
    try:
        for i in range(250, 400):  # 100 more than the buffer holds while it waits
            audit.write("decision", signal_id=f"s{i}", decision="skip", reason="NoRuleMatches")
        assert metric(metrics, "spy_bot_audit_dropped_total", {"reason": "overflow"}) == 100
        await drain(shipper)
        seqs = sorted(r["seq"] for r in trail(server.url, bot))
        assert seqs == list(range(101, 401)), "the oldest 100 dropped, everything else shipped"
    finally:
        await shipper.close()
        server.stop()


async def test_a_refused_record_is_dropped_alone(backend: DevStack) -> None:
    bot = f"t-{uuid.uuid4().hex[:6]}/b"
    metrics = BotMetrics()
    shipper = AuditShipper(backend.url, DEV_AUDIT_TOKEN, metrics)
    audit = audit_for(bot, shipper)
    for i in range(5):
        audit.write("decision", signal_id=f"s{i}", decision="skip", reason="NoRuleMatches")
    shipper.offer({**audit.records[0], "seq": 0})  # invalid (seq starts at 1)
    for i in range(5, 10):
        audit.write("decision", signal_id=f"s{i}", decision="skip", reason="NoRuleMatches")
    await drain(shipper)
    await shipper.close()
    assert sorted(r["seq"] for r in trail(backend.url, bot)) == list(range(1, 11))
    assert metric(metrics, "spy_bot_audit_dropped_total", {"reason": "rejected"}) == 1
