"""An in-memory API server behind the operator's own `Kube` client, for the fast tier.

`FakeKube` is the real `spy_operator.kube.Kube` with its HTTP transport (`_send`)
replaced by `FakeApiServer.request`, so everything above the wire (the leader check on
writes, re-login on 401, error parsing into `ApiError`) is the operator's own code.
The server answers what kube-apiserver answers for the requests the operator makes:

- objects with uid, creationTimestamp, resourceVersion (one counter, as etcd's) and a
  generation that moves only when something outside metadata and status changes;
  a write that changes nothing keeps the resourceVersion and emits no watch event;
- server-side apply with field ownership per (manager, operation), in the real
  `managedFields` / FieldsV1 shape: force takes fields over, fields the applier
  stops sending are removed unless another manager owns them, fields of other
  managers stay (the reason foreign edits survive an apply), associative lists
  (containers, env, ports, ...) merge by key; merge patches and PUTs are Update
  operations that take over the fields they change;
- `status` and `scale` subresources; 404/409 (AlreadyExists, Conflict on a stale
  resourceVersion)/422 (Deployment strategy, negative replicas) as Status objects;
- mutating webhooks (RFC 6902 answers; the approval webhook) and validating
  admission hooks (a ValidatingAdmissionPolicy refuses with 403); injectable
  faults per verb/path/user: any status with a Retry-After, lost connections,
  timeouts, writes that land but whose reply is lost, and requests that hang until
  an event is set;
- a watch event log with compaction (410 Gone) and a tiny controller-manager that
  reports Deployment rollouts and runs StatefulSet pods (revision label, ready at
  once; OnDelete keeps the old revision running until the pod is deleted);
- deletion with finalizers, the garbage collector, and orphaning.

Used by tests/operator/fast (and free for benchmarks and demos). It never opens a
socket. What it does not model: RBAC, label selectors on lists, CRD schema
validation, Deployment pods, namespaces (every namespace exists).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from spy_operator import constants as c
from spy_operator.kube import ApiError, Kube

Body = dict[str, Any]
_T = TypeVar("_T")
ObjKey = tuple[str, str, str, str]  # (api prefix, plural, namespace, name)
Path = tuple[str, ...]  # FieldsV1 path: "f:spec", 'k:{"name":"bot"}', "."

_KINDS = {
    "deployments": ("apps/v1", "Deployment"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "services": ("v1", "Service"),
    "secrets": ("v1", "Secret"),
    "pods": ("v1", "Pod"),
    "configmaps": ("v1", "ConfigMap"),
    "leases": ("coordination.k8s.io/v1", "Lease"),
    "serviceaccounts": ("v1", "ServiceAccount"),  # a bot's identity (bot_access.py)
    "roles": ("rbac.authorization.k8s.io/v1", "Role"),
    "rolebindings": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    **{plural: (c.API_VERSION, kind) for kind, plural in c.PLURAL.items()},
}
_PLURAL_OF = {kind: plural for plural, (_, kind) in _KINDS.items()}
# No status subresource:
_NO_STATUS = {"secrets", "configmaps", "leases", "serviceaccounts", "roles", "rolebindings"}
_USER_META = ("labels", "annotations", "ownerReferences", "finalizers")
# Associative lists and their keys (the Kubernetes OpenAPI's x-kubernetes-list-map-keys).
_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
}
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class GoneError(Exception):
    """HTTP 410 Gone: the watch's resourceVersion is older than the compacted history (HTTP 410)."""


class _RefusedError(Exception):
    def __init__(self, status: int, message: str, details: Body | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or {}


@dataclass
class Request:
    """One request as the server saw it, kept in `FakeApiServer.requests`."""

    verb: str
    path: str
    params: dict[str, str]
    content_type: str
    body: Any
    user: str
    time: float
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.verb != "GET"


@dataclass
class Fault:
    """An injected failure; see `FakeApiServer.fail`."""

    verb: str | None
    path: str
    status: int
    message: str
    times: int | None
    retry_after: int | None = None
    user: str | None = None
    when: Callable[[Request], bool] | None = None
    reply_lost: bool = False  # the write lands; the client sees a timeout
    hang: asyncio.Event | None = None  # answer only once this is set
    text: str | None = None  # a raw reply body instead of a Status (a proxy's HTML page)
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (
            (self.verb is None or self.verb == req.verb)
            and fnmatch.fnmatchcase(req.path, self.path)
            and (self.user is None or self.user == req.user)
            and (self.when is None or self.when(req))
        )


@dataclass(frozen=True)
class AdmissionRequest:
    """What a ValidatingAdmissionPolicy sees: the object before and after the write."""

    verb: str
    plural: str
    subresource: str
    user: str
    old: Body | None
    new: Body


Admission = Callable[[AdmissionRequest], str | None]  # a refusal message, or None
# A mutating webhook: None (allowed as is), a refusal message, or RFC 6902 operations.
Mutation = Callable[[AdmissionRequest], str | list[Body] | None]


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    object: Body
    resource_version: int


# --------------------------------------------------------------- field ownership


def _clone(value: _T) -> _T:
    """A deep copy of JSON data (several times faster than copy.deepcopy)."""
    return cast(_T, json.loads(json.dumps(value)))


def _item_key(list_name: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    keys = _LIST_KEYS.get(list_name)
    if list_name == "ports":
        keys = ("containerPort", "protocol") if "containerPort" in item else ("port", "protocol")
    if keys is None or not all(k in item for k in keys[:1]):
        return None
    return "k:" + json.dumps({k: item.get(k, "TCP") for k in keys}, separators=(",", ":"))


def field_paths(value: Any, prefix: Path = (), name: str = "") -> set[Path]:
    """The FieldsV1 leaf paths `value` sets (a keyed list item also sets its '.')."""
    if isinstance(value, dict):
        if not value:
            return {prefix} if prefix else set()
        out: set[Path] = set()
        for key, sub in value.items():
            out |= field_paths(sub, (*prefix, f"f:{key}"), key)
        return out
    if isinstance(value, list) and value and all(_item_key(name, i) for i in value):
        out = set()
        for item in value:
            item_path = (*prefix, str(_item_key(name, item)))
            out.add((*item_path, "."))
            out |= field_paths(item, item_path, "")
        return out
    return {prefix}


def _tracked(obj: Body, status: bool) -> Body:
    """The part of an object whose fields are owned: labels, annotations, owners, the rest
    of the body, and status only for status writes."""
    meta = obj.get("metadata") or {}
    out: Body = {}
    if picked := {k: meta[k] for k in _USER_META if meta.get(k) is not None}:
        out["metadata"] = picked
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            out[key] = value
    if status and "status" in obj:
        out = {"status": obj["status"]}
    return out


def _locate(obj: Any, path: Path) -> tuple[Any, Any] | None:
    """(container, key or index) of the last path element in `obj`, if present."""
    parent: Any = obj
    for i, elem in enumerate(path):
        last = i == len(path) - 1
        if elem == ".":
            return None
        if elem.startswith("f:"):
            if not isinstance(parent, dict) or elem[2:] not in parent:
                return None
            if last:
                return parent, elem[2:]
            parent = parent[elem[2:]]
        else:  # k:{...}
            want = json.loads(elem[2:])
            if not isinstance(parent, list):
                return None
            idx = next(
                (
                    n
                    for n, item in enumerate(parent)
                    if isinstance(item, dict)
                    and all(item.get(k, "TCP" if k == "protocol" else None) == v
                            for k, v in want.items())
                ),
                None,
            )  # fmt: skip
            if idx is None:
                return None
            if last or path[i + 1] == ".":
                return parent, idx
            parent = parent[idx]
    return None


def _value_at(obj: Any, path: Path) -> Any:
    found = _locate(obj, path[:-1] if path and path[-1] == "." else path)
    return None if found is None else found[0][found[1]]


def _remove(obj: Body, path: Path) -> None:
    found = _locate(obj, path[:-1] if path[-1] == "." else path)
    if found is not None:
        del found[0][found[1]]


def _merge(live: Any, applied: Any, name: str = "") -> Any:
    """Apply semantics: maps merge, associative lists merge by key, the rest replaces."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = _merge(live.get(key), value, key)
        return out
    if (
        isinstance(live, list)
        and isinstance(applied, list)
        and all(_item_key(name, i) for i in [*live, *applied])
    ):
        merged = list(live)
        for item in applied:
            key = _item_key(name, item)
            idx = next((n for n, old in enumerate(merged) if _item_key(name, old) == key), None)
            if idx is None:
                merged.append(_clone(item))
            else:
                merged[idx] = _merge(merged[idx], item)
        return merged
    return _clone(applied)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return _clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _json_patch(doc: Body, ops: list[Body]) -> Body:
    """RFC 6902 add/replace/remove (what mutating webhooks answer with)."""
    out = _clone(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent.setdefault(part, {}) if op["op"] == "add" else parent[part]
        if op["op"] == "remove":
            del parent[parts[-1]]
        else:
            parent[parts[-1]] = op["value"]
    return out


def fields_v1(paths: set[Path]) -> Body:
    """Render paths as the nested FieldsV1 map kube-apiserver returns."""
    root: Body = {}
    for path in sorted(paths):
        node = root
        for elem in path:
            node = node.setdefault(elem, {})
    return root


# ------------------------------------------------------------------ the server


class FakeApiServer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.objects: dict[ObjKey, Body] = {}
        self.owners: dict[ObjKey, dict[tuple[str, str], set[Path]]] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.admission: list[Admission] = []  # validating, after the mutating ones
        self.mutating: list[Mutation] = []
        self.events: list[WatchEvent] = []
        self.compacted_rv = 0  # watches from before this get 410 GoneError
        self.latency = 0.0  # seconds of (loop) time per request
        self.rollouts = True  # the controller-manager reports rollouts at once
        # Called after each new watch event (one per watching client).
        self.listeners: list[Callable[[], None]] = []
        self._rv = itertools.count(1000)
        self._last_rv = 999

    # ---- fault injection
    def fail(
        self,
        verb: str | None,
        path: str,
        status: int = 500,
        message: str = "",
        times: int | None = 1,
        **kwargs: Any,
    ) -> Fault:
        """Answer matching requests (path is a glob) with `status`; 0 = connection lost."""
        fault = Fault(verb, path, status, message or f"injected {status}", times, **kwargs)
        self.faults.append(fault)
        return fault

    def writes(self, plural: str = "", subresource: str | None = None) -> list[Request]:
        """Writes that reached the store (lease writes included only when asked)."""
        out = []
        for req in self.requests:
            parts = req.path.split("/")
            if not req.is_write or req.status >= 300 or req.status == 0:
                continue
            if plural and plural not in parts:
                continue
            sub = parts[-1] if parts[-1] in ("status", "scale") else ""
            if subresource is not None and sub != subresource:
                continue
            out.append(req)
        return out

    # ---- the wire
    async def request(
        self,
        verb: str,
        path: str,
        params: dict[str, str],
        content: str | None,
        headers: dict[str, str],
        user: str = "spy-operator",
    ) -> tuple[int, str]:
        body = json.loads(content) if content else None
        req = Request(
            verb, path, dict(params), headers.get("Content-Type", ""), body, user, self.clock()
        )
        self.requests.append(req)
        await asyncio.sleep(self.latency)  # also yields: other tasks interleave as on a wire
        fault = next((f for f in self.faults if f.matches(req)), None)
        if fault is not None:
            fault.hits += 1
            if fault.hang is not None:
                await fault.hang.wait()
            if fault.reply_lost:
                req.status, _ = self.handle(req)
                raise TimeoutError(f"reply to {verb} {path} lost")
            if fault.status == 0:
                raise ConnectionResetError(fault.message)
            req.status = fault.status
            if fault.text is not None:
                return fault.status, fault.text
            details = {"retryAfterSeconds": fault.retry_after} if fault.retry_after else None
            return fault.status, self._status_text(fault.status, fault.message, details)
        req.status, text = self.handle(req)
        return req.status, text

    def handle(self, req: Request) -> tuple[int, str]:
        try:
            return 200 if req.verb != "POST" else 201, json.dumps(self._dispatch(req))
        except _RefusedError as err:
            return err.status, self._status_text(err.status, err.message, err.details)

    @staticmethod
    def _status_text(status: int, message: str, details: Body | None = None) -> str:
        out = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": _REASONS.get(status, "Unknown"),
            "code": status,
        }
        if details:
            out["details"] = details
        return json.dumps(out)

    # ---- direct access for tests (what kubectl would do), same semantics
    def get(self, kind: str, namespace: str, name: str) -> Body | None:
        obj = self.objects.get(self._key_of(kind, namespace, name))
        return _clone(obj) if obj is not None else None

    def peek(self, kind: str, namespace: str, name: str) -> Body | None:
        """The stored object itself, not a copy: cheap, for polling; never modify it."""
        return self.objects.get(self._key_of(kind, namespace, name))

    def apply(self, manifest: Body, manager: str = "kubectl", force: bool = True) -> Body:
        meta = manifest["metadata"]
        path = self._path(manifest["kind"], meta.get("namespace", ""), meta["name"])
        params = {"fieldManager": manager, "force": str(force).lower()}
        return self._direct("PATCH", path, params, "application/apply-patch+yaml", manifest)

    def patch(
        self, kind: str, namespace: str, name: str, patch: Body, manager: str = "kubectl",
        subresource: str = "",
    ) -> Body:  # fmt: skip
        path = self._path(kind, namespace, name) + (f"/{subresource}" if subresource else "")
        params = {"fieldManager": manager}
        return self._direct("PATCH", path, params, "application/merge-patch+json", patch)

    def delete(self, kind: str, namespace: str, name: str, orphan: bool = False) -> None:
        params = {"propagationPolicy": "Orphan" if orphan else "Background"}
        self._direct("DELETE", self._path(kind, namespace, name), params, "", None)

    def _direct(self, verb: str, path: str, params: dict[str, str], ct: str, body: Any) -> Body:
        req = Request(verb, path, params, ct, _clone(body), "admin", self.clock())
        status, text = self.handle(req)
        if status >= 400:
            raise ApiError(status, json.loads(text)["message"])
        result: Body = json.loads(text)
        return result

    def _key_of(self, kind: str, namespace: str, name: str) -> ObjKey:
        plural = _PLURAL_OF[kind]
        api = _KINDS[plural][0]
        return ("/api/v1" if api == "v1" else f"/apis/{api}", plural, namespace, name)

    def _path(self, kind: str, namespace: str, name: str) -> str:
        prefix, plural, ns, name = self._key_of(kind, namespace, name)
        return f"{prefix}/namespaces/{ns}/{plural}/{name}"

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
                yield _clone(obj)

    @property
    def resource_version(self) -> int:
        return self._last_rv

    # ---- dispatch
    def _parse(self, path: str) -> tuple[ObjKey, str]:
        parts = path.strip("/").split("/")
        prefix_len = 2 if parts[0] == "api" else 3
        prefix = "/" + "/".join(parts[:prefix_len])
        rest = parts[prefix_len:]
        if len(rest) < 3 or rest[0] != "namespaces" or rest[2] not in _KINDS:
            raise _RefusedError(404, f"the server could not find the requested resource ({path})")
        name = rest[3] if len(rest) > 3 else ""
        sub = rest[4] if len(rest) > 4 else ""
        if sub not in ("", "status", "scale") or (sub == "scale" and rest[2] != "deployments"):
            raise _RefusedError(404, f"the server could not find the requested resource ({path})")
        return (prefix, rest[2], rest[1], name), sub

    def _dispatch(self, req: Request) -> Body:
        key, sub = self._parse(req.path)
        prefix, plural, namespace, name = key
        live = self.objects.get(key)
        what = f'{plural}.{_KINDS[plural][0].split("/")[0]} "{name}"'
        if req.verb == "POST":
            name = ((req.body or {}).get("metadata") or {}).get("name", "")
            key = (prefix, plural, namespace, name)
            if key in self.objects:
                raise _RefusedError(409, f'{plural} "{name}" already exists')
            return self._write(key, "", req, None, _clone(req.body), "Update")
        if live is None:
            if req.verb == "PATCH" and req.content_type.startswith("application/apply") and not sub:
                return self._apply(key, req, None)
            raise _RefusedError(404, f"{what} not found")
        if req.verb == "GET":
            return self._scale_of(live) if sub == "scale" else _clone(live)
        if req.verb == "DELETE":
            return self._delete(key, req)
        if req.verb == "PUT":
            sent_rv = ((req.body or {}).get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != live["metadata"]["resourceVersion"]:
                raise _RefusedError(
                    409,
                    f"Operation cannot be fulfilled on {what}: the object has been modified; "
                    "please apply your changes to the latest version and try again",
                )
            new = self._from_scale(live, req.body) if sub == "scale" else _clone(req.body)
            return self._write(key, sub, req, live, new, "Update")
        if req.content_type.startswith("application/apply"):
            return self._apply(key, req, live)
        patch = req.body or {}
        if sub == "scale":
            patch = {"spec": {"replicas": (patch.get("spec") or {}).get("replicas")}}
        new = _merge_patch(live, patch)
        return self._write(key, sub, req, live, new, "Update")

    def _apply(self, key: ObjKey, req: Request, live: Body | None) -> Body:
        manager = req.params.get("fieldManager")
        if not manager:
            raise _RefusedError(400, "PATCH with apply requires a fieldManager")
        applied = req.body or {}
        mine = field_paths(_tracked(applied, False))
        owners = self.owners.get(key, {})
        conflicts = []
        for other, paths in owners.items():
            if other == (manager, "Apply"):
                continue
            for path in paths & mine:
                if _value_at(live, path) != _value_at(applied, path) and path[-1] != ".":
                    conflicts.append((other[0], path))
        if conflicts and req.params.get("force") != "true":
            listed = "; ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts)
            raise _RefusedError(409, f"Apply failed with {len(conflicts)} conflicts: {listed}")
        new = _clone(live) if live is not None else {}
        previously = owners.get((manager, "Apply"), set())
        others = set().union(*(p for m, p in owners.items() if m != (manager, "Apply")))
        for path in sorted(previously - mine - others, key=len, reverse=True):
            _remove(new, path)
        new = _merge(new, _tracked(applied, False))
        new.setdefault("apiVersion", applied.get("apiVersion"))
        new.setdefault("kind", applied.get("kind"))
        new.setdefault("metadata", {}).update(name=key[3], namespace=key[2])
        ownership = {m: set(p) for m, p in owners.items()}
        for other in list(ownership):
            if other != (manager, "Apply"):
                ownership[other] -= {p for m, p in conflicts if m == other[0]}
        ownership[(manager, "Apply")] = mine
        return self._store(key, "", req, live, new, ownership)

    def _write(
        self, key: ObjKey, sub: str, req: Request, live: Body | None, new: Body, op: str
    ) -> Body:
        manager = req.params.get("fieldManager") or req.user
        owners = {m: set(p) for m, p in self.owners.get(key, {}).items()}
        status = sub == "status"
        before = field_paths(_tracked(live or {}, status))
        after = field_paths(_tracked(new, status))
        changed = {p for p in after if p not in before or _value_at(live, p) != _value_at(new, p)}
        lost = changed | (before - after)
        owners = {m: paths - lost for m, paths in owners.items()}
        if changed:
            owners.setdefault((manager, op), set()).update(changed)
        return self._store(key, sub, req, live, new, owners)

    def _store(
        self,
        key: ObjKey,
        sub: str,
        req: Request,
        live: Body | None,
        new: Body,
        owners: dict[tuple[str, str], set[Path]],
    ) -> Body:
        plural = key[1]
        new = _clone(new)
        if live is not None and sub == "status":
            # A status write changes status only; the main resource never changes it.
            new = {**_clone(live), "status": new.get("status")}
        elif live is not None:
            if plural not in _NO_STATUS:
                new["status"] = _clone(live.get("status"))
            user_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k in _USER_META}
            system = {k: v for k, v in live["metadata"].items() if k not in _USER_META}
            new["metadata"] = {**system, **user_meta}
        elif plural not in _NO_STATUS:
            new.pop("status", None)  # status is not set at creation
        if new.get("status") is None:
            new.pop("status", None)
        for mutate in self.mutating:
            answer = mutate(AdmissionRequest(req.verb, plural, sub, req.user, live, _clone(new)))
            if isinstance(answer, str):
                raise _RefusedError(403, f"admission webhook denied the request: {answer}")
            if answer:
                new = _json_patch(new, answer)
        self._default(plural, new)
        self._validate(plural, key[3], new)
        for hook in self.admission:
            refusal = hook(AdmissionRequest(req.verb, plural, sub, req.user, live, new))
            if refusal is not None:
                raise _RefusedError(403, f'{plural} "{key[3]}" is forbidden: {refusal}')
        owners = {m: p for m, p in owners.items() if p}
        meta = new.setdefault("metadata", {})
        meta["managedFields"] = [
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
        if live is not None:
            if self._same(live, new):
                return live  # a no-op write: no new resourceVersion
            if self._spec_of(live) != self._spec_of(new):
                meta["generation"] = int(live["metadata"].get("generation", 1)) + 1
        else:
            meta.update(
                uid=str(uuid.uuid4()),
                creationTimestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                generation=1,
            )
            meta.setdefault("namespace", key[2])
            if plural == "secrets" and "stringData" in new:
                data = new.setdefault("data", {})
                for k, v in new.pop("stringData").items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
        self._commit(key, new, owners, "ADDED" if live is None else "MODIFIED")
        self._controller_manager(key)
        return self.objects[key]  # stored objects are replaced, never changed in place

    def _commit(
        self, key: ObjKey, obj: Body, owners: dict[tuple[str, str], set[Path]], type_: str
    ) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self.objects[key] = obj
        self.owners[key] = owners
        self._emit(WatchEvent(type_, key[1], _clone(obj), rv))

    def _emit(self, event: WatchEvent) -> None:
        self.events.append(event)
        for listener in self.listeners:
            listener()

    @staticmethod
    def _spec_of(obj: Body) -> Body:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    @staticmethod
    def _same(a: Body, b: Body) -> bool:
        strip = ("resourceVersion", "managedFields")
        ma = {k: v for k, v in a["metadata"].items() if k not in strip}
        mb = {k: v for k, v in b["metadata"].items() if k not in strip}
        return ma == mb and {**a, "metadata": None} == {**b, "metadata": None}

    def _delete(self, key: ObjKey, req: Request) -> Body:
        obj = self.objects[key]
        if obj["metadata"].get("finalizers"):
            new = _clone(obj)
            new["metadata"]["deletionTimestamp"] = dt.datetime.now(dt.UTC).isoformat()
            self._commit(key, new, self.owners.get(key, {}), "MODIFIED")
            return _clone(new)
        del self.objects[key]
        self.owners.pop(key, None)
        rv = next(self._rv)
        self._last_rv = rv
        gone = _clone(obj)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._emit(WatchEvent("DELETED", key[1], gone, rv))
        uid = obj["metadata"]["uid"]
        policy = req.params.get("propagationPolicy") or (req.body or {}).get("propagationPolicy")
        orphan = policy == "Orphan"
        for other_key, other in list(self.objects.items()):
            refs = other["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            if orphan:
                kept = [r for r in refs if r.get("uid") != uid]
                new = _clone(other)
                new["metadata"]["ownerReferences"] = kept
                self._commit(other_key, new, self.owners.get(other_key, {}), "MODIFIED")
            else:  # the garbage collector
                self._delete(other_key, Request("DELETE", "", {}, "", None, "gc", self.clock()))
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner = ("/apis/apps/v1", "statefulsets", key[2], ref.get("name", ""))
            if key[1] == "pods" and ref.get("kind") == "StatefulSet" and owner in self.objects:
                self._controller_manager(owner)  # the StatefulSet controller replaces it
        return gone

    # ---- defaulting, validation, the controller-manager, subresources
    @staticmethod
    def _default(plural: str, obj: Body) -> None:
        if plural != "deployments":
            return
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})

    @staticmethod
    def _validate(plural: str, name: str, obj: Body) -> None:
        spec = obj.get("spec") or {}
        errors = []
        if plural in ("deployments", "statefulsets") and int(spec.get("replicas") or 0) < 0:
            errors.append("spec.replicas: Invalid value: must be greater than or equal to 0")
        strategy = spec.get("strategy") or {}
        if (
            plural == "deployments"
            and strategy.get("type") == "Recreate"
            and ("rollingUpdate" in strategy)
        ):
            errors.append(
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                "`type` is 'Recreate'"
            )
        if errors:
            kind = _KINDS[plural][1]
            raise _RefusedError(422, f'{kind}.apps "{name}" is invalid: {"; ".join(errors)}')

    def _controller_manager(self, key: ObjKey) -> None:
        """Report a Deployment's rollout at once (no pods); run a StatefulSet's pods, which
        are ready at once, replaced on a template change unless updateStrategy is OnDelete
        (then only a deleted pod comes back at the new revision)."""
        plural = key[1]
        if not self.rollouts or plural not in ("deployments", "statefulsets"):
            return
        obj = _clone(self.objects[key])
        spec, status = obj.get("spec") or {}, dict(obj.get("status") or {})
        want = int(spec.get("replicas", 1))
        status.update(observedGeneration=obj["metadata"]["generation"], replicas=want)
        if plural == "statefulsets":
            template = json.dumps(spec.get("template"), sort_keys=True)
            revision = f"{key[3]}-{hashlib.sha256(template.encode()).hexdigest()[:10]}"
            on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
            revisions = self._run_pods(key, obj, revision, want, on_delete)
            updated = revisions.count(revision)
            status.update(updateRevision=revision, updatedReplicas=updated)
            if updated == want or not status.get("currentRevision"):
                status["currentRevision"] = revision
            status["readyReplicas"] = len(revisions)
        else:
            status.update(updatedReplicas=want, availableReplicas=want, readyReplicas=want)
        if status != obj.get("status"):
            obj["status"] = status
            self._commit(key, obj, self.owners.get(key, {}), "MODIFIED")

    def _run_pods(
        self, key: ObjKey, sts: Body, revision: str, want: int, on_delete: bool
    ) -> list[str]:
        """Pods `<name>-<i>` of a StatefulSet; returns the revision each one runs."""
        revisions = []
        template = (sts.get("spec") or {}).get("template") or {}
        for i in range(max(want, 0)):
            pod_key = ("/api/v1", "pods", key[2], f"{key[3]}-{i}")
            pod = self.objects.get(pod_key)
            if pod is not None and (on_delete or pod["metadata"]["labels"].get(
                "controller-revision-hash") == revision):  # fmt: skip
                revisions.append(pod["metadata"]["labels"]["controller-revision-hash"])
                continue
            meta = {
                "name": pod_key[3],
                "namespace": key[2],
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "labels": {
                    **((template.get("metadata") or {}).get("labels") or {}),
                    "controller-revision-hash": revision,
                    "apps.kubernetes.io/pod-index": str(i),
                },
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": key[3],
                     "uid": sts["metadata"]["uid"], "controller": True}
                ],
            }  # fmt: skip
            new_pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": _clone(template.get("spec") or {}),
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            }
            self._commit(pod_key, new_pod, {}, "ADDED" if pod is None else "MODIFIED")
            revisions.append(revision)
        for other in [k for k in self.objects if k[1] == "pods" and k[2] == key[2]]:
            owner = self.objects[other]["metadata"]["name"].rsplit("-", 1)
            if owner[0] == key[3] and owner[1].isdigit() and int(owner[1]) >= want:
                self._delete(other, Request("DELETE", "", {}, "", None, "sts", self.clock()))
        return revisions

    @staticmethod
    def _scale_of(obj: Body) -> Body:
        meta = obj["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion", "uid")},
            "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 0))},
            "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0))},
        }

    @staticmethod
    def _from_scale(live: Body, scale: Body) -> Body:
        new = _clone(live)
        new.setdefault("spec", {})["replicas"] = int((scale.get("spec") or {}).get("replicas", 0))
        return new


class FakeKube(Kube):
    """The operator's `Kube`, talking to a `FakeApiServer` instead of a socket."""

    def __init__(self, api: FakeApiServer, user: str = "spy-operator") -> None:
        super().__init__("https://fake-apiserver.invalid", {"Accept": "application/json"}, False)
        self.api = api
        self.user = user

    async def _send(
        self,
        verb: str,
        path: str,
        params: dict[str, str] | None,
        content: str | None,
        headers: dict[str, str] | None,
    ) -> tuple[int, str]:
        try:
            return await self.api.request(
                verb, path, params or {}, content, headers or {}, self.user
            )
        except (OSError, TimeoutError) as err:
            # What the real transport turns aiohttp's errors and timeouts into.
            raise ApiError(0, f"{type(err).__name__}: {err}") from err

    async def close(self) -> None:
        return None
