"""Runs the reconcilers: a work queue fed by watch events, a periodic resync and the
leader Lease. Created at operator start-up by handlers.py; tests drive it the same way.

Event -> keys: a bot event queues the bot; a gateway event queues the gateway and
every bot and detector that refers to it; a Secret event queues what refers to the
Secret; a child's event queues its owner; the halt ConfigMap queues every bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from spy_operator import clientids, metrics
from spy_operator import constants as c
from spy_operator.api import gateway_ref
from spy_operator.context import Context, Outcome, ReconcileKey
from spy_operator.facts import consumers, id_count
from spy_operator.kube import ApiError
from spy_operator.leader import LeaderElector
from spy_operator.pullsecrets import pull_secret_names
from spy_operator.reconcile import (
    reconcile_ibgateway,
    reconcile_optionsdetector,
    reconcile_tradingbot,
)
from spy_operator.workqueue import WorkQueue
from spy_operator.world import Body, World
from spy_operator.writes import close_bot_deployment

log = logging.getLogger("spy_operator.controller")

_INDEX = {c.KIND_BOT: World.BOTS, c.KIND_GATEWAY: World.GATEWAYS, c.KIND_DETECTOR: World.DETECTORS}


class Controller:
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
        self._tasks: list[asyncio.Task[None]] = []

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
            self.enqueue_all()

    @property
    def active(self) -> bool:
        return self.synced.is_set() and (self.leader is None or self.leader.is_leader)

    # ------------------------------------------------------------------- events
    def enqueue_all(self, urgent: bool = True) -> None:
        for kind, index in _INDEX.items():
            for ns, name in self.ctx.world.keys(index):
                self.queue.add((kind, ns, name), urgent=urgent)

    def consumers_changed(self) -> None:
        self._allocation = None

    def on_custom_resource(self, kind: str, namespace: str, name: str) -> None:
        self.queue.add((kind, namespace, name))
        if kind in (c.KIND_BOT, c.KIND_DETECTOR):
            key = (kind, namespace, name)
            signature = self._consumer_signature(kind, namespace, name)
            if self._signatures.get(key) != signature:
                # Created, deleted, or moved gateway/shards: client ids of the other
                # consumers of that gateway may shift. Status writes change nothing here.
                old = self._signatures.pop(key, None)
                if signature is not None:
                    self._signatures[key] = signature
                self.consumers_changed()
                for sig in (old, signature):
                    if sig is not None:
                        self._queue_referrers(
                            namespace, lambda obj, gw=sig[0]: gateway_ref(obj) == gw
                        )
        if kind == c.KIND_GATEWAY:
            self._queue_referrers(namespace, lambda obj: gateway_ref(obj) == name)

    def on_secret(self, namespace: str, name: str) -> None:
        def refers(obj: Body) -> bool:
            spec = obj.get("spec") or {}
            creds = (spec.get("credentialsSecretRef") or {}).get("name")
            return name in pull_secret_names(spec) or creds == name

        self._queue_referrers(namespace, refers, kinds=tuple(_INDEX))

    def on_child(self, body: Body, deleted: bool = False) -> None:
        meta = body.get("metadata", {})
        if deleted:
            # A child deleted by hand must be recreated, not remembered from our write.
            index = World.CHILD_INDEX.get(str(body.get("kind")))
            if index is not None:
                self.ctx.world.forget(index, (meta.get("namespace", ""), meta.get("name", "")))
        for ref in meta.get("ownerReferences") or []:
            if ref.get("apiVersion") == c.API_VERSION and ref.get("kind") in _INDEX:
                self.queue.add((ref["kind"], meta.get("namespace", ""), ref["name"]))

    def on_halt(self) -> None:
        for ns, name in self.ctx.world.keys(World.BOTS):
            self.queue.add((c.KIND_BOT, ns, name))

    def _queue_referrers(
        self, namespace: str, refers: Any, kinds: tuple[str, ...] = (c.KIND_BOT, c.KIND_DETECTOR)
    ) -> None:
        for kind in kinds:
            for obj in self.ctx.world.values(_INDEX[kind]):
                meta = obj.get("metadata", {})
                if meta.get("namespace") == namespace and refers(obj):
                    self.queue.add((kind, namespace, meta["name"]))

    def _consumer_signature(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        """What client-id allocation depends on: the gateway and the number of ids."""
        obj = self.ctx.world.get(_INDEX[kind], (namespace, name))
        if obj is None:
            return None
        return (gateway_ref(obj), id_count(kind, obj))

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
                    # replica can act (a lapse of leadership must not lose a halt).
                    self._deferred.add(key)
                    continue
                if self._deferred:
                    for deferred in self._deferred:
                        self.queue.add(deferred)
                    self._deferred.clear()
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: ReconcileKey) -> None:
        kind = key[0]
        started = time.perf_counter()
        try:
            outcome = await self.reconcile(key)
        except ApiError as err:
            # Transient (API unavailable, conflict) or a refused write: retry with backoff.
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(30.0, 0.25 * 2 ** min(failures, 7))
            metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
            metrics.RECONCILES.labels(kind=kind, result="error").inc()
            if kind == c.KIND_BOT and err.status in (400, 422):
                await self._fail_closed(key)  # a refused write will not pass on retry
            log.warning(
                "reconcile failed; will retry",
                extra={"key": "/".join(key), "error": str(err), "retry_in": delay},
            )
            self.queue.add_after(key, delay)
            return
        except Exception:
            # A bug or a malformed object must not stop the operator: log the traceback,
            # fail closed (a bot whose reconcile cannot finish does not trade), retry.
            metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
            metrics.RECONCILES.labels(kind=kind, result="error").inc()
            log.exception("reconcile crashed", extra={"key": "/".join(key)})
            if kind == c.KIND_BOT:
                await self._fail_closed(key)
            self.queue.add_after(key, 30.0)
            return
        self._failures.pop(key, None)
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

    async def _fail_closed(self, key: ReconcileKey) -> None:
        try:
            await close_bot_deployment(self.ctx, key[1], key[2], Outcome())
        except ApiError as err:
            log.error(
                "could not close bot deployment", extra={"key": "/".join(key), "error": str(err)}
            )

    async def _resync(self) -> None:
        """Level-triggered safety net: every object is reconciled every resync period."""
        await self.synced.wait()
        while True:
            await asyncio.sleep(self.resync_seconds)
            self.enqueue_all(urgent=False)
