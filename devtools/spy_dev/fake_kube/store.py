"""The fake API server's store: objects with their field owners, the write path every
verb ends in (status/metadata rules, admission, defaulting, validation, managedFields,
resourceVersion and generation), deletion with finalizers and the garbage collector,
and the watch event log with compaction. server.py's FakeApiServer builds on it.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import time
import uuid
from collections.abc import Callable, Iterator

from . import controllers
from .fields import fields_v1, json_patch
from .objects import (
    NO_STATUS,
    USER_META,
    Admission,
    AdmissionRequest,
    Body,
    GoneError,
    Mutation,
    ObjKey,
    Path,
    RefusedError,
    Request,
    WatchEvent,
    clone,
)

Owners = dict[tuple[str, str], set[Path]]  # (manager, operation) -> the paths it owns


class ObjectStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.objects: dict[ObjKey, Body] = {}
        self.owners: dict[ObjKey, Owners] = {}
        self.admission: list[Admission] = []  # validating, after the mutating ones
        self.mutating: list[Mutation] = []
        self.events: list[WatchEvent] = []
        self.compacted_rv = 0  # watches from before this get 410 GoneError
        self.rollouts = True  # the controller-manager reports rollouts at once
        # Called after each new watch event (one per watching client).
        self.listeners: list[Callable[[], None]] = []
        self._rv = itertools.count(1000)
        self._last_rv = 999

    # ---- watch
    def events_since(self, resource_version: int) -> list[WatchEvent]:
        if resource_version < self.compacted_rv:
            raise GoneError(f"too old resource version: {resource_version} ({self.compacted_rv})")
        return [e for e in self.events if e.resource_version > resource_version]

    def compact(self) -> None:
        """Forget the event history (etcd compaction): open watches must re-list."""
        self.events.clear()
        self.compacted_rv = self._last_rv

    def list_objects(self, plural: str) -> Iterator[Body]:
        for key, obj in list(self.objects.items()):
            if key[1] == plural:
                yield clone(obj)

    @property
    def resource_version(self) -> int:
        return self._last_rv

    # ---- the write path
    def store(
        self, key: ObjKey, sub: str, req: Request, live: Body | None, new: Body, owners: Owners
    ) -> Body:
        """Store `new` as the object at `key` after admission; a no-op write returns `live`
        unchanged (no new resourceVersion, no watch event)."""
        plural = key[1]
        new = self._admit(key, sub, req, live, _carry_over(plural, sub, live, new))
        owners = {m: p for m, p in owners.items() if p}
        meta = new.setdefault("metadata", {})
        meta["managedFields"] = _managed_fields(new, owners)
        if live is not None:
            if _same(live, new):
                return live  # a no-op write: no new resourceVersion
            if _spec_of(live) != _spec_of(new):
                meta["generation"] = int(live["metadata"].get("generation", 1)) + 1
        else:
            _created(key, new)
        self.commit(key, new, owners, "ADDED" if live is None else "MODIFIED")
        controllers.controller_manager(self, key)
        return self.objects[key]  # stored objects are replaced, never changed in place

    def _admit(self, key: ObjKey, sub: str, req: Request, live: Body | None, new: Body) -> Body:
        """Mutating webhooks, defaulting, validation, then validating admission (403)."""
        plural = key[1]
        for mutate in self.mutating:
            answer = mutate(AdmissionRequest(req.verb, plural, sub, req.user, live, clone(new)))
            if isinstance(answer, str):
                raise RefusedError(403, f"admission webhook denied the request: {answer}")
            if answer:
                new = json_patch(new, answer)
        controllers.default(plural, new)
        controllers.validate(plural, key[3], new)
        for hook in self.admission:
            refusal = hook(AdmissionRequest(req.verb, plural, sub, req.user, live, new))
            if refusal is not None:
                raise RefusedError(403, f'{plural} "{key[3]}" is forbidden: {refusal}')
        return new

    def commit(self, key: ObjKey, obj: Body, owners: Owners, type_: str) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self.objects[key] = obj
        self.owners[key] = owners
        self._emit(WatchEvent(type_, key[1], clone(obj), rv))

    def _emit(self, event: WatchEvent) -> None:
        self.events.append(event)
        for listener in self.listeners:
            listener()

    # ---- deletion
    def remove(self, key: ObjKey, req: Request) -> Body:
        """Delete the object (or mark it, while it has finalizers), then its dependents:
        orphaned or collected as the propagation policy says."""
        obj = self.objects[key]
        if obj["metadata"].get("finalizers"):
            new = clone(obj)
            new["metadata"]["deletionTimestamp"] = dt.datetime.now(dt.UTC).isoformat()
            self.commit(key, new, self.owners.get(key, {}), "MODIFIED")
            return clone(new)
        del self.objects[key]
        self.owners.pop(key, None)
        rv = next(self._rv)
        self._last_rv = rv
        gone = clone(obj)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._emit(WatchEvent("DELETED", key[1], gone, rv))
        policy = req.params.get("propagationPolicy") or (req.body or {}).get("propagationPolicy")
        self._dependents(obj["metadata"]["uid"], orphan=policy == "Orphan")
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner = ("/apis/apps/v1", "statefulsets", key[2], ref.get("name", ""))
            if key[1] == "pods" and ref.get("kind") == "StatefulSet" and owner in self.objects:
                controllers.controller_manager(
                    self, owner
                )  # the StatefulSet controller replaces it
        return gone

    def _dependents(self, uid: str, orphan: bool) -> None:
        for other_key, other in list(self.objects.items()):
            refs = other["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            if orphan:
                kept = [r for r in refs if r.get("uid") != uid]
                new = clone(other)
                new["metadata"]["ownerReferences"] = kept
                self.commit(other_key, new, self.owners.get(other_key, {}), "MODIFIED")
            else:  # the garbage collector
                self.remove(other_key, Request("DELETE", "", {}, "", None, "gc", self.clock()))


def _carry_over(plural: str, sub: str, live: Body | None, new: Body) -> Body:
    """What a write keeps of the live object: a status write changes status only; the
    main resource never changes status nor system metadata; status is not set at creation."""
    new = clone(new)
    if live is not None and sub == "status":
        new = {**clone(live), "status": new.get("status")}
    elif live is not None:
        if plural not in NO_STATUS:
            new["status"] = clone(live.get("status"))
        user_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k in USER_META}
        system = {k: v for k, v in live["metadata"].items() if k not in USER_META}
        new["metadata"] = {**system, **user_meta}
    elif plural not in NO_STATUS:
        new.pop("status", None)
    if new.get("status") is None:
        new.pop("status", None)
    return new


def _managed_fields(new: Body, owners: Owners) -> list[Body]:
    return [
        {
            "manager": m,
            "operation": op,
            "apiVersion": new.get("apiVersion"),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(p),
            **({"subresource": "status"} if any(x[0] == "f:status" for x in p) else {}),
        }
        for (m, op), p in sorted(owners.items())
    ]


def _created(key: ObjKey, new: Body) -> None:
    """System metadata of a new object; a Secret's stringData becomes base64 data."""
    meta = new["metadata"]
    meta.update(
        uid=str(uuid.uuid4()),
        creationTimestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        generation=1,
    )
    meta.setdefault("namespace", key[2])
    if key[1] == "secrets" and "stringData" in new:
        data = new.setdefault("data", {})
        for k, v in new.pop("stringData").items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _spec_of(obj: Body) -> Body:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same(a: Body, b: Body) -> bool:
    strip = ("resourceVersion", "managedFields")
    ma = {k: v for k, v in a["metadata"].items() if k not in strip}
    mb = {k: v for k, v in b["metadata"].items() if k not in strip}
    return ma == mb and {**a, "metadata": None} == {**b, "metadata": None}
