"""Runs the reconcilers: a work queue fed by watch events, a periodic resync and the
leader Lease. Created at operator start-up by handlers.py; tests drive it the same way.

Event -> keys: a bot event queues the bot; a gateway event queues the gateway and
every bot and detector that refers to it; a Secret event queues what refers to the
Secret; a child's event queues its owner; the halt ConfigMap queues every bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from spy_operator import clientids, metrics
from spy_operator import constants as c
from spy_operator.api import SpecError, TradingBot, gateway_ref
from spy_operator.context import Context, Outcome, ReconcileKey
from spy_operator.enforce import (
    bot_deployment,
    floor_allowance,
    halt_all,
    lower_to,
    replicas_of,
    stray_deployment,
    strays,
)
from spy_operator.facts import consumers, id_count
from spy_operator.gate import next_deadline
from spy_operator.kube import ApiError
from spy_operator.leader import LeaderElector
from spy_operator.pullsecrets import pull_secret_names
from spy_operator.reconcile import reconcile_ibgateway, reconcile_optionsdetector
from spy_operator.reconcile_bot import fail_closed, reconcile_tradingbot
from spy_operator.workqueue import WorkQueue
from spy_operator.world import Body, World

log = logging.getLogger("spy_operator.controller")

_INDEX = {c.KIND_BOT: World.BOTS, c.KIND_GATEWAY: World.GATEWAYS, c.KIND_DETECTOR: World.DETECTORS}
# Key kind of a bot-labelled Deployment that no TradingBot owns (enforce.stop_stray).
STRAY = "StrayBotDeployment"
# A replica that does not hold the Lease lowers a bot only after it has seen it above
# the floor this long: a cache that is a few ms behind an arming must not fight the
# writer. Lowering too early only costs availability (the leader raises the bot again),
# never safety, so it is short: a restarted operator alone enforces after this.
STANDBY_GRACE_SECONDS = 0.25


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

    # ------------------------------------------------------------------- events
    def enqueue_all(self, urgent: bool = True) -> None:
        for kind, index in _INDEX.items():
            for ns, name in self.ctx.world.keys(index):
                self.queue.add((kind, ns, name), urgent=urgent)
        for ns, name in strays(self.ctx):
            self.queue.add((STRAY, ns, name), urgent=urgent)

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
        """The halt ConfigMap changed: when set, every bot Deployment goes to 0 first,
        in parallel (enforce.halt_all, lowering only, leader or not); statuses after."""
        if self.ctx.world.halt() is not None and self.synced.is_set():
            self._halting = asyncio.create_task(self._halt_then_requeue(), name="halt")
        else:
            self._requeue_bots()

    async def _halt_then_requeue(self) -> int:
        try:
            return await halt_all(self.ctx)
        finally:
            self._requeue_bots()

    def _requeue_bots(self) -> None:
        for ns, name in self.ctx.world.keys(World.BOTS):
            self.queue.add((c.KIND_BOT, ns, name))

    def on_bot_deployment(self, body: Body, deleted: bool = False) -> None:
        """Any Deployment with the bot label: strays are kept at 0 by whoever sees them."""
        meta = body.get("metadata", {})
        if not deleted:
            self.queue.add((STRAY, meta.get("namespace", ""), meta.get("name", "")))

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

    async def _enforce_floor(
        self, key: ReconcileKey, grace: float = STANDBY_GRACE_SECONDS, act: bool = True
    ) -> None:
        """Lower a bot (or a stray bot Deployment) that runs above the gate's floor,
        once it has been seen above for `grace` seconds and `act` (no live leader
        would do it; else it looks again every second) (a cache a few ms behind an
        arming must not fight the writer), and wake again at the approval's expiry.
        Never raises replicas; never writes status. Any synced replica may do it."""
        kind, ns, name = key
        try:
            if kind == STRAY:
                deployment, allowed = stray_deployment(self.ctx, ns, name), 0
            elif kind == c.KIND_BOT:
                deployment = bot_deployment(self.ctx, ns, name)
                allowed = floor_allowance(self.ctx, ns, name)
            else:
                return
            if deployment is None or replicas_of(deployment) <= allowed:
                self._above_floor_since.pop(key, None)
                if kind == c.KIND_BOT:
                    self._schedule_expiry(key)
                return
            now = asyncio.get_running_loop().time()
            since = self._above_floor_since.setdefault(key, now)
            if now - since < grace or not act:
                # Look again after the grace, or (a live leader should act) in a second.
                self.queue.add_after(key, max(grace - (now - since), 1.0 if not act else 0.0))
                return
            if kind == STRAY:
                metrics.STRAY_BOT_DEPLOYMENTS.inc()
                log.warning("stray bot deployment running; stopping it", extra={"key": name})
            await lower_to(self.ctx, deployment, allowed, Outcome())
            self._above_floor_since.pop(key, None)
        except ApiError as err:
            log.warning("floor enforcement failed", extra={"key": "/".join(key), "error": str(err)})
            self.queue.add_after(key, 1.0)
        except Exception:
            # It runs outside _process's guard: anything unexpected must not end the
            # worker (no worker, no enforcement). Logged with the traceback; retried.
            log.exception("floor enforcement crashed", extra={"key": "/".join(key)})
            self.queue.add_after(key, 1.0)

    def _may_enforce_floor(self) -> bool:
        """A replica without the Lease lowers bots only while no live leader does: a
        standby with a stale cache (a halt it has not seen lifted) never fights one."""
        return self.synced.is_set() and (self.leader is None or not self.leader.leader_alive())

    def _record_approval_expiry(self, key: ReconcileKey) -> None:
        """The bot's approval expiry as a metric, from the cache; dropped once the bot
        is gone or carries no readable approval (its reconcile reports why)."""
        body = self.ctx.world.get(World.BOTS, (key[1], key[2]))
        expires = None
        if body is not None:
            with contextlib.suppress(SpecError):  # an invalid spec: no expiry to show
                approval = TradingBot.from_body(body).approval
                expires = approval.expires_at if approval is not None else None
        metrics.record_approval_expiry(key[1], key[2], expires)

    def _schedule_expiry(self, key: ReconcileKey) -> None:
        body = self.ctx.world.get(World.BOTS, (key[1], key[2]))
        try:
            approval = TradingBot.from_body(body).approval if body else None
        except SpecError:
            return
        now = self.ctx.clock()
        deadline = next_deadline(approval, now)
        if deadline is not None:
            self.queue.add_after(key, (deadline - now).total_seconds() + 0.05)

    async def _resync(self) -> None:
        """Level-triggered safety net: every object is reconciled every resync period."""
        await self.synced.wait()
        while True:
            await asyncio.sleep(self.resync_seconds)
            self.enqueue_all(urgent=False)
