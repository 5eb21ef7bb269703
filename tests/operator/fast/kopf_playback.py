"""kopf's part in the fast tier, played by `operator_harness.Harness` (this module's
only user, through the `KopfPlayback` mixin): the operator's registrations as
handlers.py declares them (index function, event handler, `when=`/`labels=` filter),
kopf.Index's read side, and the list-then-watch loop that feeds them: pausable per
resource, laggable, and expirable (410 Gone -> re-list, which reports nothing about
objects deleted in the gap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import kopf
from spy_dev.fake_kube import FakeApiServer, GoneError, WatchEvent
from spy_operator import handlers
from spy_operator.controller import Controller
from spy_operator.world import World

Body = dict[str, Any]


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


WATCHERS = _watchers()
PLURALS = sorted({w.plural for w in WATCHERS})


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


class KopfPlayback:
    """Feeds list and watch events to the indices and handlers. `Harness.__init__`
    sets `api` and calls `_init_playback` for the rest of this state."""

    api: FakeApiServer
    indices: dict[str, FakeIndex]
    memo: SimpleNamespace
    watching: bool
    relists: int
    _paused: set[str]
    _held: dict[str, list[WatchEvent]]
    _cursor: int
    _seen: dict[tuple[str, str, str], str]
    _contributed: dict[tuple[int, tuple[str, str, str]], tuple[FakeIndex, list[Any]]]
    _changed: asyncio.Event
    _tasks: list[asyncio.Task[None]]

    def _init_playback(self, controller: Controller) -> None:
        """Empty indices, the memo the handlers read the controller from, and a watch
        that starts running from the first list."""
        names = {*World.ALL, *(w.index.__name__ for w in WATCHERS)}
        self.indices = {name: FakeIndex() for name in names}
        self.memo = SimpleNamespace(controller=controller)
        self.watching = True
        self._paused = set()
        self._held = {}
        self.relists = 0
        self._cursor = 0
        self._seen = {}  # object -> resourceVersion
        self._contributed = {}
        self._changed = asyncio.Event()
        self._tasks = []

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
            elif event.plural in PLURALS:  # the operator watches no Leases
                await self._dispatch(event)

    async def relist(self) -> None:
        """A fresh list of every kind: indices rebuilt first (kopf runs no handler
        before every index is filled), then handlers for what is new or changed.
        Objects deleted since the last list just vanish: no DELETED event."""
        self.relists += 1
        self._cursor = self.api.resource_version
        listed = [(p, obj) for p in PLURALS for obj in self.api.list_objects(p)]
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
        for n, watcher in enumerate(WATCHERS):
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
        for n in range(len(WATCHERS)):
            index, keys = self._contributed.pop((n, ident), (None, []))
            for key in keys:
                if index is not None:
                    index.data.get(key, {}).pop(ident, None)

    async def _handle(self, plural: str, type_: str | None, obj: Body) -> None:
        meta = obj["metadata"]
        for watcher in WATCHERS:
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

    def check_watch(self) -> None:
        """A crash of the stand-in watch is a broken test, not a slow operator."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError("the fake watch crashed") from task.exception()
