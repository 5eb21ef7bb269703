"""Publishes detector output to the backend's ingest endpoint (docs/wire-format.md).

``service.Detector`` calls ``Publisher.submit()`` for every analysed snapshot; a
background task drains the bounded buffer with ``POST {base}/api/v1/ingest`` in
batches of at most 1000 items. While the backend is down the buffer holds everything
up to ``max_items``; beyond that the oldest items are dropped and counted in
``spy_detector_publish_drops``. An item leaves the buffer only after a 200, so a
backend outage loses nothing up to the bound. Anomaly ids are stable, so a retry
after a lost response is deduplicated by the backend. A batch the backend rejects
(422/413) is split until the bad items are isolated; only those are dropped (counted).
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
from spy_detector.metrics import DetectorMetrics

log = logging.getLogger(__name__)

ITEM_TYPES = ("anomalies", "market", "gex", "flow", "signals")
MAX_BATCH = 1000  # the ingest contract's limit per request
INGEST_PATH = "/api/v1/ingest"
DEFAULT_BACKOFF = Backoff(initial=0.2, maximum=30.0)
_Item = tuple[int, str, dict[str, Any]]  # (sequence, type, payload)


class Publisher:
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
            resolved, failed = await self._deliver(batch)
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

    async def _deliver(self, batch: list[_Item]) -> tuple[int | None, bool]:
        """POST ``batch``; returns (last sequence resolved, hit a transient failure).

        A rejected batch (422 invalid, 413 too large) is split in halves until the
        offending items are isolated: one bad item costs itself, not the 999 good
        ones sent with it. Items are resolved in order, so everything up to the
        returned sequence was either acknowledged or dropped as invalid.
        """
        outcome = await self._post(batch)
        if outcome == "ok":
            return batch[-1][0], False
        if outcome == "retry":
            return None, True
        if len(batch) == 1:
            seq, kind, _ = batch[0]
            self._metrics.publish_drops.labels(type=kind).inc()
            log.error("ingest rejected item, dropped", extra={"type": kind})
            return seq, False
        mid = len(batch) // 2
        first, failed = await self._deliver(batch[:mid])
        if failed:
            return first, True
        second, failed = await self._deliver(batch[mid:])
        return (second if second is not None else first), failed

    def _remove_through(self, last_seq: int) -> None:
        while self._buffer and self._buffer[0][0] <= last_seq:
            self._buffer.popleft()
        self._metrics.publish_buffered.set(len(self._buffer))

    async def _post(self, batch: list[_Item]) -> str:
        assert self._client is not None
        body: dict[str, list[dict[str, Any]]] = {}
        for _, kind, payload in batch:
            body.setdefault(kind, []).append(payload)
        try:
            resp = await self._client.post(self._url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            # Backend unreachable or slow: keep the batch and retry with backoff.
            self._failed("network", exc)
            return "retry"
        if resp.status_code == 200:
            self.consecutive_failures = 0
            self.last_success = asyncio.get_running_loop().time()
            for kind, payloads in body.items():
                self._metrics.publish_items.labels(type=kind).inc(len(payloads))
            return "ok"
        if resp.status_code in (413, 422):
            # The batch itself is unacceptable (invalid item, too large): resending it
            # as is cannot help; the caller splits it.
            log.warning(
                "ingest rejected batch",
                extra={"status": resp.status_code, "detail": resp.text[:500]},
            )
            self._metrics.publish_failures.labels(reason="rejected").inc()
            return "rejected"
        reason = "auth" if resp.status_code in (401, 403) else f"http_{resp.status_code}"
        self._failed(reason, None)
        return "retry"

    def _failed(self, reason: str, exc: BaseException | None) -> None:
        self.consecutive_failures += 1
        self._metrics.publish_failures.labels(reason=reason).inc()
        log.warning(
            "ingest failed, will retry",
            extra={
                "reason": reason,
                "error": repr(exc) if exc else None,
                "buffered": len(self._buffer),
            },
        )
