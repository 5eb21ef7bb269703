"""Lowering a bot to the gate's floor outside a full reconcile, and the approval's
expiry as a wake-up and a metric: the controller's enforcement side.

A mixin of ``controller.Controller`` (its only user): its workers call
``_enforce_floor`` for stray Deployments, while standing by, and while a key waits out
its backoff; ``_process`` records the approval expiry before each bot's reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from spy_operator import constants as c
from spy_operator import metrics
from spy_operator.api import SpecError, TradingBot
from spy_operator.context import Context, Outcome, ReconcileKey
from spy_operator.enforce import (
    bot_deployment,
    floor_allowance,
    lower_to,
    replicas_of,
    stray_deployment,
)
from spy_operator.gate import next_deadline
from spy_operator.kube import ApiError
from spy_operator.leader import LeaderElector
from spy_operator.routing import STRAY
from spy_operator.workqueue import WorkQueue
from spy_operator.world import World

log = logging.getLogger("spy_operator.controller")

# A replica that does not hold the Lease lowers a bot only after it has seen it above
# the floor this long: a cache that is a few ms behind an arming must not fight the
# writer. Lowering too early only costs availability (the leader raises the bot again),
# never safety, so it is short: a restarted operator alone enforces after this.
STANDBY_GRACE_SECONDS = 0.25


class FloorEnforcement:
    """Lowers only, never writes status. State it shares with the controller is set there."""

    ctx: Context
    leader: LeaderElector | None
    queue: WorkQueue[ReconcileKey]
    synced: asyncio.Event
    _above_floor_since: dict[ReconcileKey, float]

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
