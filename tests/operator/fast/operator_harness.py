"""The operator wired as handlers.startup wires it, on the in-memory API server.

`Harness` builds the real Context, World, Controller (and LeaderElector) around a
`FakeKube`, and plays kopf's part: it lists every watched kind, fills the indices with
the operator's own index functions (handlers.idx_*), then feeds watch events to the
operator's own event handlers (handlers.on_*), honouring their `when=` filters. The
watch can be paused (a stale cache), lagged, or expired (410 Gone -> re-list, which
reports nothing about objects deleted in the gap). Time is the virtual loop's.

Manifest factories reuse tests/operator_support.py, with approvals timed on the
harness's clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import kopf
import operator_support as support
from spy_dev.fake_kube import FakeApiServer, FakeKube, GoneError, WatchEvent
from spy_operator import constants as c
from spy_operator import handlers
from spy_operator.context import Context
from spy_operator.controller import Controller
from spy_operator.leader import LeaderElector
from spy_operator.world import World

Body = dict[str, Any]
NS = "trading"
# Wall-clock time at virtual time 0 (ctx.clock and approvals use it).
EPOCH = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def _labelled(want: dict[str, str]) -> Callable[[Body], bool]:
    return lambda obj: all(
        (obj["metadata"].get("labels") or {}).get(k) == v for k, v in want.items()
    )


def _owned(obj: Body) -> bool:
    return bool(handlers._owned(meta=obj["metadata"]))


def _halt(obj: Body) -> bool:
    meta = obj["metadata"]
    return bool(handlers._is_halt(name=meta.get("name"), namespace=meta.get("namespace")))


@dataclass(frozen=True)
class _Watcher:
    """One kopf registration: an index function and an event handler on one resource,
    with the `when=`/`labels=` filter they are registered with in handlers.py."""

    plural: str
    index: Any
    event: Any
    passes: Callable[[Body], bool] = lambda obj: True


def _watchers() -> list[_Watcher]:
    h = handlers
    out = [
        _Watcher("tradingbots", h.idx_tradingbots, h.on_tradingbot),
        _Watcher("ibgateways", h.idx_ibgateways, h.on_ibgateway),
        _Watcher("optionsdetectors", h.idx_optionsdetectors, h.on_optionsdetector),
        _Watcher("deployments", h.idx_deployments, h.on_child, _owned),
        _Watcher("statefulsets", h.idx_statefulsets, h.on_child, _owned),
        _Watcher("services", h.idx_services, h.on_child, _owned),
        _Watcher("secrets", h.idx_secrets, h.on_secret),
        _Watcher("configmaps", h.idx_halt, h.on_halt, _halt),
    ]
    # Registrations that main gained for issue 8 (stray bot Deployments, gateway pods).
    if hasattr(h, "idx_bot_deployments"):
        label = _labelled(h.BOT_LABEL)
        out.append(_Watcher("deployments", h.idx_bot_deployments, h.on_bot_deployment, label))
    if hasattr(h, "idx_gateway_pods"):
        label = _labelled(h.GATEWAY_LABEL)
        out.append(_Watcher("pods", h.idx_gateway_pods, h.on_gateway_pod, label))
    return out


_WATCHERS = _watchers()
_PLURALS = sorted({w.plural for w in _WATCHERS})


class FakeIndex:
    """kopf.Index's read side: key -> a store of the values every object put there."""

    def __init__(self) -> None:
        self.data: dict[Any, dict[tuple[str, str, str], Any]] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        store = self.data.get(key)
        return list(store.values()) if store else default

    def __iter__(self) -> Any:
        return iter([k for k, store in self.data.items() if store])

    def __getitem__(self, key: Any) -> Any:
        return list(self.data[key].values())


APPROVAL_KEY = b"fast-tier-approval-key-0123456789abcdef"


def _approval_webhook(clock: Callable[[], dt.datetime]) -> Callable[[Any], Any]:
    import base64
    import json

    from spy_operator import webhook  # main since 5204e17
    from spy_operator.admission import Policy

    policy = Policy(gitops_identities=frozenset({"admin"}))

    def mutate(req: Any) -> Any:
        if req.plural != "tradingbots" or req.subresource:
            return None
        review = {
            "request": {
                "uid": "fake",
                "operation": "CREATE" if req.old is None else "UPDATE",
                "userInfo": {"username": req.user},
                "object": req.new,
                "oldObject": req.old,
            }
        }
        answer = webhook.respond(review, policy, APPROVAL_KEY, clock())["response"]
        if not answer["allowed"]:
            return str(answer["status"]["message"])
        if "patch" in answer:
            return json.loads(base64.b64decode(answer["patch"]))
        return None

    return mutate


class NoProber:
    """No VPN is configured in these tests; a probe must never be asked for."""

    def result(self, target: Any) -> None:
        raise AssertionError(f"unexpected VPN probe of {target}")


class Harness:
    def __init__(
        self,
        api: FakeApiServer | None = None,
        *,
        leader: bool = False,
        workers: int = 4,
        resync_seconds: float = 30.0,
        user: str = "spy-operator",
        lease_seconds: float = 15.0,
        renew_seconds: float = 2.0,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.api = api or FakeApiServer(clock=loop.time)
        self.kube = FakeKube(self.api, user=user)
        self.world = World(clock=loop.time)
        self.ctx = Context(
            kube=self.kube,
            world=self.world,
            prober=NoProber(),  # type: ignore[arg-type]
            clock=lambda: EPOCH + dt.timedelta(seconds=loop.time()),
        )
        if hasattr(self.ctx, "monotonic"):  # the RTT pacing clock (main since 3065eb8)
            self.ctx.monotonic = loop.time
        if api is None and hasattr(self.ctx, "approval_key"):
            # The approval webhook (main since 5204e17) as kube-apiserver would call it:
            # the operator's own respond(), with `admin` as the GitOps identity, so one
            # write may carry an approval and arm (as the cluster tests do).
            self.ctx.approval_key = APPROVAL_KEY
            self.api.mutating.append(_approval_webhook(self.ctx.clock))
        elif hasattr(self.ctx, "approval_key"):
            self.ctx.approval_key = APPROVAL_KEY
        self.leader: LeaderElector | None = None
        if leader:
            self.leader = LeaderElector(
                self.kube,
                c.DEFAULT_OPERATOR_NAMESPACE,
                c.LEASE_NAME,
                lease_seconds=lease_seconds,
                renew_seconds=renew_seconds,
                clock=self.ctx.clock,
                host=user,  # each replica its own pod
            )
        self.controller = Controller(
            self.ctx, self.leader, workers=workers, resync_seconds=resync_seconds
        )
        if self.leader is not None:  # as handlers.startup wires them
            self.leader.on_elected = self.controller.enqueue_all
            leader_ = self.leader
            self.kube.may_write = lambda: leader_.is_leader
        names = {*World.ALL, *(w.index.__name__ for w in _WATCHERS)}
        self.indices = {name: FakeIndex() for name in names}
        self.memo = SimpleNamespace(controller=self.controller)
        self.watching = True
        self._paused: set[str] = set()
        self._held: dict[str, list[WatchEvent]] = {}
        self.relists = 0
        self._cursor = 0
        self._seen: dict[tuple[str, str, str], str] = {}  # object -> resourceVersion
        self._contributed: dict[tuple[int, tuple[str, str, str]], tuple[FakeIndex, list[Any]]] = {}
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ running
    async def start(self) -> Harness:
        self.controller.start()
        self.api.listeners.append(self._changed.set)
        await self.relist()
        self._tasks.append(asyncio.create_task(self._watch(), name="fake-watch"))
        return self

    async def stop(self) -> None:
        if self._changed.set in self.api.listeners:
            self.api.listeners.remove(self._changed.set)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.controller.stop()

    async def _watch(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self.watching:
                await self.deliver()

    def pause_watch(self, *plurals: str) -> None:
        """Stop delivering events (of `plurals` only, if given: kopf runs one watch per
        resource, so one kind's stream can lag while the others flow)."""
        if plurals:
            self._paused.update(plurals)
        else:
            self.watching = False

    async def resume_watch(self, *plurals: str) -> None:
        if plurals:
            for plural in plurals:
                self._paused.discard(plural)
                for event in self._held.pop(plural, []):
                    await self._dispatch(event)
        else:
            self.watching = True
        await self.deliver()

    async def deliver(self) -> None:
        """Feed every event since the cursor to the indices and handlers (or re-list)."""
        try:
            events = self.api.events_since(self._cursor)
        except GoneError:
            await self.relist()
            return
        for event in events:
            self._cursor = event.resource_version
            if event.plural in self._paused:
                self._held.setdefault(event.plural, []).append(event)
            elif event.plural in _PLURALS:  # the operator watches no Leases
                await self._dispatch(event)

    async def relist(self) -> None:
        """A fresh list of every kind: indices rebuilt first (kopf runs no handler
        before every index is filled), then handlers for what is new or changed.
        Objects deleted since the last list just vanish: no DELETED event."""
        self.relists += 1
        self._cursor = self.api.resource_version
        listed = [(p, obj) for p in _PLURALS for obj in self.api.list_objects(p)]
        for index in self.indices.values():
            index.data.clear()
        self._contributed.clear()
        for plural, obj in listed:
            await self._index(plural, obj)
        seen: dict[tuple[str, str, str], str] = {}
        for plural, obj in listed:
            meta = obj["metadata"]
            ident = (plural, meta["namespace"], meta["name"])
            seen[ident] = meta["resourceVersion"]
            if self._seen.get(ident) != meta["resourceVersion"]:
                await self._handle(plural, None, obj)
        self._seen = seen

    async def _dispatch(self, event: WatchEvent) -> None:
        plural, obj = event.plural, event.object
        meta = obj["metadata"]
        ident = (plural, meta["namespace"], meta["name"])
        if event.type == "DELETED":
            self._unindex(ident)
            self._seen.pop(ident, None)
        else:
            await self._index(plural, obj)
            self._seen[ident] = meta["resourceVersion"]
        await self._handle(plural, event.type, obj)

    async def _index(self, plural: str, obj: Body) -> None:
        """Each registration indexes the object if it passes its filter; an object that
        no longer passes leaves that index."""
        meta = obj["metadata"]
        ident = (plural, meta["namespace"], meta["name"])
        self._unindex(ident)
        for n, watcher in enumerate(_WATCHERS):
            if watcher.plural != plural or not watcher.passes(obj):
                continue
            keys = await watcher.index(
                namespace=meta["namespace"], name=meta["name"], body=kopf.Body(obj)
            )
            index = self.indices[watcher.index.__name__]
            for key, value in (keys or {}).items():
                index.data.setdefault(key, {})[ident] = value
            self._contributed[(n, ident)] = (index, list(keys or {}))

    def _unindex(self, ident: tuple[str, str, str]) -> None:
        for n in range(len(_WATCHERS)):
            index, keys = self._contributed.pop((n, ident), (None, []))
            for key in keys:
                if index is not None:
                    index.data.get(key, {}).pop(ident, None)

    async def _handle(self, plural: str, type_: str | None, obj: Body) -> None:
        meta = obj["metadata"]
        for watcher in _WATCHERS:
            if watcher.plural != plural or not watcher.passes(obj):
                continue
            await watcher.event(
                namespace=meta["namespace"],
                name=meta["name"],
                body=kopf.Body(obj),
                type=type_,
                memo=self.memo,
                **self.indices,
            )

    # ------------------------------------------------------------------ waiting
    async def wait_until(
        self, what: str, probe: Callable[[], Any], within: float = 60.0, step: float = 0.01
    ) -> float:
        """Virtual seconds until `probe()` is truthy; fails after `within` of them."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not probe():
            self.check_watch()
            if loop.time() - started > within:
                raise AssertionError(f"not within {within} s (virtual): {what}")
            await asyncio.sleep(step)
        return loop.time() - started

    async def idle(self, seconds: float = 1.0) -> None:
        """Let `seconds` of virtual time pass."""
        await asyncio.sleep(seconds)
        self.check_watch()

    def check_watch(self) -> None:
        """A crash of the stand-in watch is a broken test, not a slow operator."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError("the fake watch crashed") from task.exception()

    # ------------------------------------------------------------------ the world
    def create(self, obj: Body, namespace: str = NS, manager: str = "kubectl") -> Body:
        obj = dict(obj, metadata={**obj["metadata"], "namespace": namespace})
        return self.api.apply(obj, manager=manager)

    def get(self, kind: str, name: str, namespace: str = NS) -> Body | None:
        return self.api.get(kind, namespace, name)

    def replicas(self, bot: str, namespace: str = NS) -> int | None:
        dep = self.api.peek("Deployment", namespace, f"{bot}-bot")
        return None if dep is None else int(dep["spec"].get("replicas", 0))

    def status(self, bot: str, namespace: str = NS) -> Body:
        """The bot's status as stored (read-only: probes poll it every 10 ms)."""
        obj = self.api.peek("TradingBot", namespace, bot) or {}
        return obj.get("status") or {}

    def paper_world(self, namespace: str = NS, **gw_spec: Any) -> None:
        self.create(support.pull_secret(), namespace)
        self.create(support.credentials(), namespace)
        self.create(support.gateway(**gw_spec), namespace)

    def halt(self, reason: str = "drill") -> None:
        self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": c.HALT_CONFIGMAP, "namespace": c.DEFAULT_OPERATOR_NAMESPACE},
                "data": {"reason": reason},
            }
        )


def bot(name: str = "bot", expires_in: float | None = 3600, **kwargs: Any) -> Body:
    """operator_support.bot with the approval's expiry on the harness's clock."""
    body = support.bot(name, expires_in=expires_in, **kwargs)
    if "approval" in body["spec"] and expires_in is not None:
        loop_now = asyncio.get_running_loop().time()
        expires = EPOCH + dt.timedelta(seconds=loop_now + expires_in)
        body["spec"]["approval"]["expiresAt"] = support.rfc3339(expires)
    return body


def armed_at(h: Harness, name: str) -> Callable[[], bool]:
    """Probe: the bot's status says Armed and its Deployment runs 1 replica."""
    return lambda: h.status(name).get("reason") == "Armed" and h.replicas(name) == 1
