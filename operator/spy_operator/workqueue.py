"""A de-duplicating work queue (after client-go's workqueue).

Handlers add keys; a key is never processed by two workers at once; a key added while
it is being processed is processed again afterwards; `add_after` schedules a key
(approval expiry, retry backoff). Keys from watch events go before keys from the
periodic resync, so a hand scale-up is reverted even while a resync of hundreds of
objects is under way. Used by controller.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from spy_operator import metrics

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._urgent: deque[K] = deque()
        self._background: deque[K] = deque()
        self._ready = asyncio.Event()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K, urgent: bool = True) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            if urgent and key in self._background:
                # Promote: an event for a key already waiting in the resync batch.
                self._background.remove(key)
                self._urgent.append(key)
            return
        self._queued.add(key)
        (self._urgent if urgent else self._background).append(key)
        self._ready.set()
        metrics.QUEUE_DEPTH.set(len(self._queued))

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending schedule wins."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        existing = self._timers.get(key)
        if existing is not None and not existing.cancelled() and existing.when() <= when:
            return
        if existing is not None:
            existing.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_at(when, fire)

    async def get(self) -> K:
        while not (self._urgent or self._background):
            self._ready.clear()
            await self._ready.wait()
        key = self._urgent.popleft() if self._urgent else self._background.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        metrics.QUEUE_DEPTH.set(len(self._queued))
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)
