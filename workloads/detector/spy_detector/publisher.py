"""Publishes detector output to the backend's ingest endpoint (docs/wire-format.md).

``service.Detector`` calls ``Publisher.submit()`` for every analysed snapshot; a
background task drains the bounded buffer with ``POST {base}/api/v1/ingest`` in
batches of at most 1000 items. While the backend is down the buffer holds everything
up to ``max_items``; beyond that the oldest items are dropped and counted in
``spy_detector_publish_drops``. An item leaves the buffer only after a 200, so a
backend outage loses nothing up to the bound. Anomaly ids are stable, so a retry
after a lost response is deduplicated by the backend. A batch the backend rejects
(422/413) loses only its bad items (counted): those a 422 names by location are
dropped in one round trip, otherwise the batch is split until they are isolated. An
item that cannot be encoded as strict JSON (NaN/inf) is dropped (counted) before
sending. The run loop never dies: an unexpected error is logged, counted as a failure
(``reason="internal"``) and retried with backoff. ``not_ready()`` feeds /readyz.
Delivering a batch is ingest_delivery.py (a mixin); the request body and the
reading of a 422 are ingest_wire.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from spy_detector.backoff import Backoff
from spy_detector.ingest_delivery import IngestDelivery, _Item
from spy_detector.ingest_wire import (
    INGEST_PATH,
    ITEM_TYPES,
    MAX_BATCH,
)
from spy_detector.metrics import DetectorMetrics

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = Backoff(initial=0.2, maximum=30.0)
#: /readyz fails after this many consecutive failed posts (docs/detector.md).
UNHEALTHY_AFTER = 10


class Publisher(IngestDelivery):
    def __init__(
        self,
        base_url: str,
        token: str,
        metrics: DetectorMetrics,
        *,
        max_items: int = 50_000,
        batch_size: int = MAX_BATCH,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        unhealthy_after: int = UNHEALTHY_AFTER,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self._url = base_url.rstrip("/") + INGEST_PATH
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._metrics = metrics
        self._max_items = max_items
        self._batch_size = max(1, min(batch_size, MAX_BATCH))
        self._backoff = backoff
        self._timeout = timeout
        self._transport = transport
        self._unhealthy_after = max(1, unhealthy_after)
        self._buffer: deque[_Item] = deque()
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.consecutive_failures = 0
        self.last_success: float | None = None

    # -- producer side --------------------------------------------------------------
    def submit(self, items: Mapping[str, Sequence[dict[str, Any]]]) -> int:
        """Queue items by type ("anomalies", "market", ...); never blocks.

        Returns how many older items were dropped to make room.
        """
        dropped = 0
        for kind, payloads in items.items():
            if kind not in ITEM_TYPES:
                raise ValueError(f"unknown ingest item type {kind!r}")
            for payload in payloads:
                if len(self._buffer) >= self._max_items:
                    _, old_kind, _ = self._buffer.popleft()
                    self._metrics.publish_drops.labels(type=old_kind).inc()
                    dropped += 1
                self._seq += 1
                self._buffer.append((self._seq, kind, payload))
        if self._buffer:
            self._idle.clear()
            self._wakeup.set()
        self._metrics.publish_buffered.set(len(self._buffer))
        if dropped:
            log.warning("publish buffer full", extra={"dropped": dropped})
        return dropped

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        self._task = asyncio.create_task(self._run(), name="publisher")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Try to flush what is buffered for up to ``drain_timeout``, then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        except TimeoutError:
            log.warning("publish buffer not drained at stop", extra={"left": len(self._buffer)})
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def wait_idle(self, within: float | None = None) -> None:
        """Wait until the buffer is empty (everything acknowledged)."""
        await asyncio.wait_for(self._idle.wait(), within)

    # -- health --------------------------------------------------------------------
    def not_ready(self) -> list[str]:
        """Reasons the publisher is not healthy (part of /readyz); [] when it is.

        Not ready when the background task has ended (it never should while started),
        or when the last ``unhealthy_after`` posts in a row failed (backend down, wrong
        token, or the loop itself hitting an unexpected error).
        """
        reasons: list[str] = []
        task = self._task
        if task is not None and task.done():
            exc = None if task.cancelled() else task.exception()
            reasons.append(f"publisher stopped: {exc!r}" if exc else "publisher stopped")
        if self.consecutive_failures >= self._unhealthy_after:
            reasons.append(f"publisher: {self.consecutive_failures} consecutive failed posts")
        return reasons

    # -- consumer side -------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            if not self._buffer:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            try:
                resolved, failed = await self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must never die
                # A bug (or an exotic transport error) must not end publishing for the
                # life of the pod: count it, back off, try again.
                log.exception("publisher error, will retry")
                self._failed("internal", exc)
                resolved, failed = None, True
            if resolved is not None:
                # Drops may have removed part of the batch while it was in flight;
                # whatever of it is left sits at the head, up to the resolved sequence.
                self._remove_through(resolved)
            if not failed:
                attempt = 0
                continue
            delay = self._backoff.delay(attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _remove_through(self, last_seq: int) -> None:
        while self._buffer and self._buffer[0][0] <= last_seq:
            self._buffer.popleft()
        self._metrics.publish_buffered.set(len(self._buffer))
