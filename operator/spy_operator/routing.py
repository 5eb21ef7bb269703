"""Which reconcile keys a watch event queues: the controller's event side.

A mixin of ``controller.Controller`` (its only user); handlers.py calls these
``on_*`` methods through the controller. Event -> keys: a bot event queues the bot; a
gateway event queues the gateway and every bot and detector that refers to it; a
Secret event queues what refers to the Secret; a child's event queues its owner; the
halt ConfigMap queues every bot.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spy_operator import clientids
from spy_operator import constants as c
from spy_operator.api import gateway_ref
from spy_operator.context import Context, ReconcileKey
from spy_operator.enforce import halt_all, strays
from spy_operator.facts import id_count
from spy_operator.pullsecrets import pull_secret_names
from spy_operator.workqueue import WorkQueue
from spy_operator.world import Body, World

_INDEX = {c.KIND_BOT: World.BOTS, c.KIND_GATEWAY: World.GATEWAYS, c.KIND_DETECTOR: World.DETECTORS}
# Key kind of a bot-labelled Deployment that no TradingBot owns (enforce.stop_stray).
STRAY = "StrayBotDeployment"


class EventRouting:
    """Watch events -> queued keys. State it shares with the controller is set there."""

    ctx: Context
    queue: WorkQueue[ReconcileKey]
    synced: asyncio.Event
    _allocation: dict[clientids.ConsumerKey, list[int]] | None
    _signatures: dict[ReconcileKey, tuple[str, int]]
    _halting: asyncio.Task[int] | None

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
