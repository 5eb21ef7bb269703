"""Delivering one batch to the backend's ingest endpoint: encode, POST, and on a
rejected batch drop only its bad items (named by the 422, or isolated by halving);
counts every drop and failure.

A mixin of ``publisher.Publisher`` (its only user), whose run loop calls ``_deliver``
for the batch at the head of the buffer; the buffer and the client are the
publisher's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import httpx

from spy_detector.ingest_wire import encode, ingest_body, rejected_items
from spy_detector.metrics import DetectorMetrics

# The publisher's logger: these lines are the publisher's, wherever the code sits.
log = logging.getLogger("spy_detector.publisher")

_Item = tuple[int, str, dict[str, Any]]  # (sequence, type, payload)
_Encoded = tuple[_Item, bytes]  # an item and its JSON text


class IngestDelivery:
    """POSTs batches; the state it shares with the publisher is set in ``Publisher``."""

    _url: str
    _headers: dict[str, str]
    _metrics: DetectorMetrics
    _buffer: deque[_Item]
    _client: httpx.AsyncClient | None
    consecutive_failures: int
    last_success: float | None

    async def _deliver(self, batch: list[_Item]) -> tuple[int | None, bool]:
        """POST ``batch``; returns (last sequence resolved, hit a transient failure).

        Items that cannot be JSON-encoded (NaN/inf, unknown types) are dropped first
        (counted). Items are resolved in order, so everything up to the returned
        sequence was either acknowledged or dropped.
        """
        encoded: list[_Encoded] = []
        unencodable: set[int] = set()
        for item in batch:
            try:
                encoded.append((item, encode(item[2])))
            except (TypeError, ValueError) as exc:
                unencodable.add(item[0])
                self._drop(item, "unencodable", repr(exc))
        if unencodable:
            self._discard(unencodable)
        if not encoded:
            return batch[-1][0], False
        return await self._send(encoded)

    async def _send(self, items: list[_Encoded]) -> tuple[int | None, bool]:
        """POST encoded items; a rejected batch (422 invalid, 413 too large) loses only
        its offending items.

        When the 422 names them (FastAPI ``detail[*].loc == ["body", type, index,
        ...]``), exactly those are dropped and the rest resent: one extra round trip.
        Otherwise the batch is split in halves until the bad items are isolated.
        """
        last = items[-1][0][0]
        while True:
            outcome, bad = await self._post(items)
            if outcome == "ok":
                return last, False
            if outcome == "retry":
                return None, True
            if bad:
                for i in sorted(bad):
                    self._drop(items[i][0], "rejected", None)
                self._discard({items[i][0][0] for i in bad})
                items = [x for i, x in enumerate(items) if i not in bad]
                if not items:
                    return last, False
                continue
            if len(items) == 1:
                self._drop(items[0][0], "rejected", None)
                return last, False
            mid = len(items) // 2
            first, failed = await self._send(items[:mid])
            if failed:
                return first, True
            second, failed = await self._send(items[mid:])
            return (second if second is not None else first), failed

    def _drop(self, item: _Item, why: str, error: str | None) -> None:
        kind = item[1]
        self._metrics.publish_drops.labels(type=kind).inc()
        log.error("ingest item dropped", extra={"type": kind, "why": why, "error": error})

    def _discard(self, seqs: set[int]) -> None:
        """Remove the given items from the head of the buffer (they sit in the batch
        being delivered; any displaced meanwhile are simply not found)."""
        top = max(seqs)
        head: list[_Item] = []
        while self._buffer and self._buffer[0][0] <= top:
            head.append(self._buffer.popleft())
        for item in reversed(head):
            if item[0] not in seqs:
                self._buffer.appendleft(item)
        self._metrics.publish_buffered.set(len(self._buffer))

    async def _post(self, items: list[_Encoded]) -> tuple[str, set[int] | None]:
        """("ok" | "retry" | "rejected", indices into ``items`` named by a 422)."""
        assert self._client is not None
        groups, content = ingest_body([(kind, text) for (_, kind, _), text in items])
        headers = {**self._headers, "Content-Type": "application/json"}
        try:
            resp = await self._client.post(self._url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            # Backend unreachable or slow: keep the batch and retry with backoff.
            self._failed("network", exc)
            return "retry", None
        if resp.status_code == 200:
            self.consecutive_failures = 0
            self.last_success = asyncio.get_running_loop().time()
            for kind, idx in groups.items():
                self._metrics.publish_items.labels(type=kind).inc(len(idx))
            return "ok", None
        if resp.status_code in (413, 422):
            # The batch itself is unacceptable (invalid item, too large): resending it
            # as is cannot help; the caller drops the named items or splits it.
            log.warning(
                "ingest rejected batch",
                extra={"status": resp.status_code, "detail": resp.text[:500]},
            )
            self._metrics.publish_failures.labels(reason="rejected").inc()
            bad = rejected_items(resp, groups) if resp.status_code == 422 else None
            return "rejected", bad
        reason = "auth" if resp.status_code in (401, 403) else f"http_{resp.status_code}"
        self._failed(reason, None)
        return "retry", None

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
