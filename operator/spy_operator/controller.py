"""Runs the reconcilers: a work queue fed by watch events, a periodic resync and the
leader Lease. Created at operator start-up by handlers.py; tests drive it the same way.

Which keys an event queues is routing.py (``EventRouting``); lowering a bot to the
gate's floor outside a reconcile is floor.py (``FloorEnforcement``); both are mixed
into ``Controller`` here, which owns the state, the workers and the retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from spy_operator import clientids, metrics
from spy_operator import constants as c
from spy_operator.context import Context, Outcome, ReconcileKey
from spy_operator.facts import consumers
from spy_operator.floor import FloorEnforcement
from spy_operator.kube import ApiError
from spy_operator.leader import LeaderElector
from spy_operator.reconcile import reconcile_ibgateway, reconcile_optionsdetector
from spy_operator.reconcile_bot import fail_closed, reconcile_tradingbot
from spy_operator.routing import STRAY, EventRouting
from spy_operator.workqueue import WorkQueue

log = logging.getLogger("spy_operator.controller")


class Controller(EventRouting, FloorEnforcement):
    def __init__(
        self,
        ctx: Context,
        leader: LeaderElector | None,
        workers: int = 8,
        resync_seconds: float = 30.0,
    ) -> None:
        self.ctx = ctx
        self.leader = leader
        self.queue: WorkQueue[ReconcileKey] = WorkQueue()
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.synced = asyncio.Event()
        self._allocation: dict[clientids.ConsumerKey, list[int]] | None = None
        self._failures: dict[ReconcileKey, int] = {}
        self._signatures: dict[ReconcileKey, tuple[str, int]] = {}
        self._armed: set[ReconcileKey] = set()
        self._deferred: set[ReconcileKey] = set()
        self._above_floor_since: dict[ReconcileKey, float] = {}
        self._backoff_until: dict[ReconcileKey, float] = {}  # loop time
        self._tasks: list[asyncio.Task[None]] = []
        self._halting: asyncio.Task[int] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"reconcile-worker-{i}"))
        self._tasks.append(asyncio.create_task(self._resync(), name="resync"))
        if self.leader is not None:
            self._tasks.append(asyncio.create_task(self.leader.run(), name="leader-election"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leader is not None:
            await self.leader.release()

    def mark_synced(self, indices: Any) -> None:
        if not self.synced.is_set():
            self.ctx.world.attach(indices)
            self.synced.set()
            log.info("caches synced: enforcing the gate")
            self.enqueue_all()

    @property
    def active(self) -> bool:
        return self.synced.is_set() and (self.leader is None or self.leader.is_leader)

    # ------------------------------------------------------------------ workers
    def allocation(self) -> dict[clientids.ConsumerKey, list[int]]:
        if self._allocation is None:
            self._allocation = clientids.allocate(consumers(self.ctx.world))
        return self._allocation

    async def reconcile(self, key: ReconcileKey) -> Outcome:
        kind, ns, name = key
        if kind == c.KIND_BOT:
            return await reconcile_tradingbot(self.ctx, ns, name, self.allocation())
        if kind == c.KIND_GATEWAY:
            return await reconcile_ibgateway(self.ctx, ns, name)
        return await reconcile_optionsdetector(self.ctx, ns, name, self.allocation())

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                if not self.active:
                    # Standby, or cache not synced yet: keep the key for when this
                    # replica can act (a lapse of leadership must not lose a halt),
                    # and meanwhile enforce what only lowers replicas.
                    if self.synced.is_set():
                        await self._enforce_floor(key, act=self._may_enforce_floor())
                    if key[0] != STRAY:
                        self._deferred.add(key)
                    continue
                if self._deferred:
                    for deferred in self._deferred:
                        self.queue.add(deferred)
                    self._deferred.clear()
                if key[0] == STRAY:
                    await self._enforce_floor(key)
                    continue
                if key[0] == c.KIND_BOT and self._halting and not self._halting.done():
                    # A halt lowers every bot first; statuses wait for it.
                    await asyncio.wait([self._halting])
                backoff = self._backoff_until.get(key, 0.0) - asyncio.get_running_loop().time()
                if backoff > 0:
                    # A failed key waits out its backoff (or the server's Retry-After)
                    # even when an event, such as its own fail-closed status, queues it
                    # again; meanwhile a bot is still lowered at once if it must be.
                    await self._enforce_floor(key, grace=0.0)
                    self.queue.add_after(key, backoff)
                    continue
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: ReconcileKey) -> None:
        kind = key[0]
        started = time.perf_counter()
        if kind == c.KIND_BOT:
            self._record_approval_expiry(key)
        try:
            outcome = await self.reconcile(key)
        except ApiError as err:
            # Transient (API unavailable, conflict) or a refused write: retry with backoff.
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(30.0, 0.25 * 2 ** min(failures, 7))
            if err.retry_after:
                delay = max(delay, min(err.retry_after, 60.0))  # the server's own pacing
            metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
            metrics.RECONCILES.labels(kind=kind, result="error").inc()
            log.warning(
                "reconcile failed; will retry",
                extra={"key": "/".join(key), "error": str(err), "retry_in": delay},
            )
            if kind == c.KIND_BOT:
                # Any refusal, any status: a 403 from a policy, a 409 loop, a timeout.
                await self._fail_closed(key, str(err))
            self._backoff_until[key] = asyncio.get_running_loop().time() + delay
            self.queue.add_after(key, delay)
            return
        except Exception:
            # A bug or a malformed object must not stop the operator: log the traceback,
            # fail closed (a bot whose reconcile cannot finish does not trade), retry.
            metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
            metrics.RECONCILES.labels(kind=kind, result="error").inc()
            log.exception("reconcile crashed", extra={"key": "/".join(key)})
            if kind == c.KIND_BOT:
                await self._fail_closed(key, "internal error (see operator log)")
            self._backoff_until[key] = asyncio.get_running_loop().time() + 30.0
            self.queue.add_after(key, 30.0)
            return
        self._failures.pop(key, None)
        self._backoff_until.pop(key, None)
        metrics.RECONCILE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
        metrics.RECONCILES.labels(kind=kind, result="changed" if outcome.writes else "noop").inc()
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)
        if kind == c.KIND_BOT:
            if outcome.armed:
                self._armed.add(key)
            else:
                self._armed.discard(key)
            metrics.ARMED_BOTS.set(len(self._armed))

    async def _fail_closed(self, key: ReconcileKey, error: str) -> None:
        self._armed.discard(key)
        metrics.ARMED_BOTS.set(len(self._armed))
        try:
            await fail_closed(self.ctx, key[1], key[2], error)
        except Exception:
            # The fail-closed path itself must never kill a worker; the retry comes.
            log.exception("fail-closed path crashed", extra={"key": "/".join(key)})

    async def _resync(self) -> None:
        """Level-triggered safety net: every object is reconciled every resync period."""
        await self.synced.wait()
        while True:
            await asyncio.sleep(self.resync_seconds)
            self.enqueue_all(urgent=False)
