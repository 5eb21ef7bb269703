"""The bot process: ``run_bot(settings)`` (``python -m spy_bot run``, from __main__).

It wires ``service.Bot`` to the health server, the gateway, the signal feed and the
backend's copy of the audit, runs the bot's loops until SIGTERM (or until one of them
ends, which is a bug), then shuts down in order and returns the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as signals_
from typing import TYPE_CHECKING, Any

from spy_bot.audit import AuditLog
from spy_bot.audit_shipper import AuditShipper
from spy_bot.broker import Broker
from spy_bot.kube import TradingBotReader
from spy_bot.metrics import BotMetrics
from spy_bot.service import Bot
from spy_bot.settings import Settings

if TYPE_CHECKING:
    from spy_bot.feed import SignalFeed

log = logging.getLogger(__name__)


def _audit_shipper(settings: Settings, audit: AuditLog, metrics: BotMetrics) -> AuditShipper | None:
    """The backend's copy of the audit (audit_shipper.py), when a token is configured."""
    if not (settings.backend_url and settings.backend_token):
        return None
    shipper = AuditShipper(settings.backend_url, settings.backend_token, metrics)
    audit.sinks.append(shipper.offer)
    return shipper


async def _stop_shipping(shipper: AuditShipper | None, task: asyncio.Task[None] | None) -> None:
    if shipper is None or task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await shipper.close()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signals_.SIGTERM, signals_.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def _feed(settings: Settings, bot: Bot, audit: AuditLog, metrics: BotMetrics) -> SignalFeed:
    from spy_bot.feed import SignalFeed

    def invalid(why: str, raw: dict[str, Any]) -> None:
        audit.write("signal_invalid", why=why, id=raw.get("id"))

    return SignalFeed(
        settings.backend_url, settings.symbol, bot.offer, invalid=invalid,
        on_state=lambda live: metrics.hub_connected.set(1 if live else 0),
        overlap=settings.backfill_overlap,
    )  # fmt: skip


def _start_loops(bot: Bot, feed: SignalFeed) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(bot.keep_connected(), name="gateway"),
        asyncio.create_task(bot.watch(), name="watch"),
        asyncio.create_task(bot.consume(), name="consume"),
        asyncio.create_task(feed.run(), name="feed"),
    ]


async def _until_stopped(
    stopping: asyncio.Task[Any], loops: list[asyncio.Task[None]]
) -> list[asyncio.Task[Any]]:
    """Wait for ``stopping`` or a loop to end, cancel the rest; the loops that ended."""
    done, _ = await asyncio.wait([stopping, *loops], return_when=asyncio.FIRST_COMPLETED)
    # A part that ended on its own is a bug (each loops forever): stop cleanly and exit
    # non-zero so the kubelet restarts the pod, rather than run half a bot.
    crashed = [t for t in done if t is not stopping]
    for task in crashed:
        log.error(
            "bot task ended", extra={"task": task.get_name(), "error": repr(task.exception())}
        )
    for task in [stopping, *loops]:
        task.cancel()
    await asyncio.gather(stopping, *loops, return_exceptions=True)
    return crashed


async def run_bot(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """The process: health server, gateway, feed, consumer, watcher; SIGTERM stops it."""
    from spy_bot.health import HealthServer
    from spy_bot.kube import credentials

    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    metrics = BotMetrics()
    audit = AuditLog(settings.bot, settings.audit_file)
    audit.keep = False  # a long-running process keeps its audit in files, not memory
    shipper = _audit_shipper(settings, audit, metrics)
    reader = TradingBotReader(
        credentials(settings.kubeconfig), settings.bot_namespace, settings.bot_name
    )
    broker = Broker(settings.ib_host, settings.ib_port, settings.ib_client_id, settings.ib_timeout)
    bot = Bot(settings, broker, reader, audit, metrics)
    feed = _feed(settings, bot, audit, metrics)

    def readiness() -> list[str]:
        reasons = []
        if not feed.live:
            reasons.append("not joined to the realtime hub")
        if not broker.connected:
            reasons.append("not connected to IB Gateway")
        return reasons

    health = HealthServer(metrics, readiness, settings.http_host, settings.http_port)
    port = await health.start()
    audit.write("startup", settings=settings.redacted(), http_port=port)
    loops = _start_loops(bot, feed)
    stopping = asyncio.create_task(stop.wait(), name="stop")
    # Not among `loops`: the backend's copy of the audit never stops the bot.
    shipping = asyncio.create_task(shipper.run(), name="audit") if shipper else None
    crashed = await _until_stopped(stopping, loops)
    await bot.shutdown(f"task {crashed[0].get_name()} ended" if crashed else "SIGTERM")
    await _stop_shipping(shipper, shipping)  # the shutdown line included, within a deadline
    await feed.close()
    await reader.close()
    await health.stop()
    return 1 if crashed else 0
