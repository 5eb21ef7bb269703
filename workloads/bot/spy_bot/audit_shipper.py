"""Ships the audit lines to the backend (`POST /api/v1/audit`, docs/bot.md) in batches.

Wired by ``process.run_bot`` when ``SPY_BACKEND_URL`` and ``SPY_BACKEND_TOKEN`` are set:
``AuditLog`` hands every record to ``offer`` (a deque append: it never waits, so an
order decision never waits on the backend), and ``run`` posts what is buffered every
``interval`` seconds, ``batch`` records at a time. A failed post (network, 5xx, 429,
401/403) keeps the records and retries with exponential back-off; records leave the
buffer only when the backend answered 200 (stored or duplicate: the API is idempotent
on bot, run and seq, so a resend after a lost reply stores nothing twice). The buffer is
bounded: past ``max_buffer`` the oldest record is dropped and counted
(``spy_bot_audit_dropped_total{reason="overflow"}``); the stdout/file audit still has
it. A batch the backend refuses as invalid (413/422) can never succeed and is dropped
and counted (``reason="rejected"``). At shutdown ``close`` flushes within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections import deque
from typing import Any

import httpx

from spy_bot.metrics import BotMetrics

log = logging.getLogger("spy_bot.audit_shipper")

AUDIT_PATH = "/api/v1/audit"
REFUSED = (413, 422)  # the batch itself is wrong: resending cannot help
MAX_RECORD_BYTES = 16 * 1024  # the backend's limit per record (models/audit.py)


def _finite(value: Any) -> Any:
    """NaN and infinities (not JSON) as null, everywhere in a record."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(record: dict[str, Any]) -> str:
    """The record as the audit file has it (non-JSON values as text), NaN as null."""
    try:
        return json.dumps(record, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(record), default=str, separators=(",", ":"))


def refused_indices(reply: httpx.Response) -> set[int]:
    """Which records of the batch a 422 names (loc ["body", "records", i, ...])."""
    try:
        detail = reply.json().get("detail")
    except ValueError:
        return set()
    found = set()
    for error in detail if isinstance(detail, list) else []:
        loc = error.get("loc") if isinstance(error, dict) else None
        named = isinstance(loc, list) and len(loc) > 2 and loc[:2] == ["body", "records"]
        if named and isinstance(loc[2], int):  # type: ignore[index]
            found.add(loc[2])  # type: ignore[index]
    return found


class AuditShipper:
    def __init__(
        self,
        backend_url: str,
        token: str,
        metrics: BotMetrics,
        *,
        batch: int = 200,
        interval: float = 1.0,
        max_buffer: int = 20_000,
        max_backoff: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=backend_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )
        self.metrics = metrics
        self.batch = batch
        self.interval = interval
        self.max_buffer = max_buffer
        self.max_backoff = max_backoff
        self._numbers = itertools.count(1)
        self._buffer: deque[tuple[int, str]] = deque()  # (number, the record as JSON)
        self._delay = interval

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def offer(self, record: dict[str, Any]) -> None:
        """Buffer one audit record. Never blocks, never raises."""
        text = encode(record)
        if len(text.encode()) > MAX_RECORD_BYTES:
            self.metrics.audit_dropped.labels("too_large").inc()
            return
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            self.metrics.audit_dropped.labels("overflow").inc()
        self._buffer.append((next(self._numbers), text))
        self.metrics.audit_buffered.set(len(self._buffer))

    async def run(self) -> None:
        """Post forever; sleeps `interval` between batches, longer after failures."""
        while True:
            await asyncio.sleep(self._delay)
            while self._buffer:
                if not await self.flush_once():
                    self._delay = min(self.max_backoff, max(self.interval, self._delay * 2))
                    break
                self._delay = self.interval

    async def flush_once(self) -> bool:
        """Post up to `batch` buffered records; True when the backend took (or refused
        for good) the batch, False when it should be retried."""
        sent = list(itertools.islice(self._buffer, self.batch))
        if not sent:
            return True
        body = '{"records":[' + ",".join(text for _, text in sent) + "]}"
        try:
            reply = await self._http.post(
                AUDIT_PATH, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            self._failed(type(exc).__name__)
            return False
        bad = refused_indices(reply) if reply.status_code == 422 else set()
        if bad:
            # Only the named records are dropped; the rest go again in the next post.
            log.warning("backend refused audit records", extra={"detail": reply.text[:500]})
            self.metrics.audit_dropped.labels("rejected").inc(len(bad))
            numbers = {sent[i][0] for i in bad if i < len(sent)}
            self._buffer = deque(item for item in self._buffer if item[0] not in numbers)
            self.metrics.audit_buffered.set(len(self._buffer))
            return True
        if reply.status_code in REFUSED:
            log.warning(
                "backend refused audit batch",
                extra={"status": reply.status_code, "detail": reply.text[:500]},
            )
            self.metrics.audit_dropped.labels("rejected").inc(len(sent))
        elif reply.status_code != 200:
            self._failed(str(reply.status_code))
            return False
        else:
            self.metrics.audit_shipped.inc(len(sent))
        self._forget_through(sent[-1][0])
        return True

    def _failed(self, why: str) -> None:
        self.metrics.audit_post_failures.labels(why).inc()
        log.info("audit post failed; kept for retry", extra={"why": why, "buffered": self.buffered})

    def _forget_through(self, number: int) -> None:
        # Records dropped for overflow meanwhile are already gone: forget by number.
        while self._buffer and self._buffer[0][0] <= number:
            self._buffer.popleft()
        self.metrics.audit_buffered.set(len(self._buffer))

    async def close(self, deadline: float = 3.0) -> None:
        """Flush what is buffered (bounded in time), then close the client."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                while self._buffer and await self.flush_once():
                    pass
        if self._buffer:
            log.warning("audit records not shipped at exit", extra={"count": self.buffered})
        await self._http.aclose()
