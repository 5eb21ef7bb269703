"""FakeApiServer: the fake API server's wire (requests, injected faults, Status
replies), direct access for tests as kubectl would have it, and the dispatch of each
verb (create, get, put, merge patch, server-side apply with field ownership, delete) to
the store in store.py; FakeKube, the operator's `Kube` talking to it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from spy_operator.kube import ApiError, Kube

from . import controllers
from .fields import field_paths, merge, merge_patch, remove_path, tracked, value_at
from .objects import KINDS, PLURAL_OF, REASONS, Body, Fault, ObjKey, RefusedError, Request, clone
from .store import ObjectStore


class FakeApiServer(ObjectStore):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds of (loop) time per request

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
        except RefusedError as err:
            return err.status, self._status_text(err.status, err.message, err.details)

    @staticmethod
    def _status_text(status: int, message: str, details: Body | None = None) -> str:
        out = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": REASONS.get(status, "Unknown"),
            "code": status,
        }
        if details:
            out["details"] = details
        return json.dumps(out)

    # ---- direct access for tests (what kubectl would do), same semantics
    def get(self, kind: str, namespace: str, name: str) -> Body | None:
        obj = self.objects.get(self._key_of(kind, namespace, name))
        return clone(obj) if obj is not None else None

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
        req = Request(verb, path, params, ct, clone(body), "admin", self.clock())
        status, text = self.handle(req)
        if status >= 400:
            raise ApiError(status, json.loads(text)["message"])
        result: Body = json.loads(text)
        return result

    def _key_of(self, kind: str, namespace: str, name: str) -> ObjKey:
        plural = PLURAL_OF[kind]
        api = KINDS[plural][0]
        return ("/api/v1" if api == "v1" else f"/apis/{api}", plural, namespace, name)

    def _path(self, kind: str, namespace: str, name: str) -> str:
        prefix, plural, ns, name = self._key_of(kind, namespace, name)
        return f"{prefix}/namespaces/{ns}/{plural}/{name}"

    # ---- dispatch
    def _parse(self, path: str) -> tuple[ObjKey, str]:
        parts = path.strip("/").split("/")
        prefix_len = 2 if parts[0] == "api" else 3
        prefix = "/" + "/".join(parts[:prefix_len])
        rest = parts[prefix_len:]
        if len(rest) < 3 or rest[0] != "namespaces" or rest[2] not in KINDS:
            raise RefusedError(404, f"the server could not find the requested resource ({path})")
        name = rest[3] if len(rest) > 3 else ""
        sub = rest[4] if len(rest) > 4 else ""
        if sub not in ("", "status", "scale") or (sub == "scale" and rest[2] != "deployments"):
            raise RefusedError(404, f"the server could not find the requested resource ({path})")
        return (prefix, rest[2], rest[1], name), sub

    def _dispatch(self, req: Request) -> Body:
        key, sub = self._parse(req.path)
        prefix, plural, namespace, name = key
        live = self.objects.get(key)
        what = f'{plural}.{KINDS[plural][0].split("/")[0]} "{name}"'
        if req.verb == "POST":
            name = ((req.body or {}).get("metadata") or {}).get("name", "")
            key = (prefix, plural, namespace, name)
            if key in self.objects:
                raise RefusedError(409, f'{plural} "{name}" already exists')
            return self._write(key, "", req, None, clone(req.body), "Update")
        if live is None:
            if req.verb == "PATCH" and req.content_type.startswith("application/apply") and not sub:
                return self._apply(key, req, None)
            raise RefusedError(404, f"{what} not found")
        if req.verb == "GET":
            return controllers.scale_of(live) if sub == "scale" else clone(live)
        if req.verb == "DELETE":
            return self.remove(key, req)
        if req.verb == "PUT":
            sent_rv = ((req.body or {}).get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != live["metadata"]["resourceVersion"]:
                raise RefusedError(
                    409,
                    f"Operation cannot be fulfilled on {what}: the object has been modified; "
                    "please apply your changes to the latest version and try again",
                )
            new = controllers.from_scale(live, req.body) if sub == "scale" else clone(req.body)
            return self._write(key, sub, req, live, new, "Update")
        if req.content_type.startswith("application/apply"):
            return self._apply(key, req, live)
        patch = req.body or {}
        if sub == "scale":
            patch = {"spec": {"replicas": (patch.get("spec") or {}).get("replicas")}}
        new = merge_patch(live, patch)
        return self._write(key, sub, req, live, new, "Update")

    def _apply(self, key: ObjKey, req: Request, live: Body | None) -> Body:
        manager = req.params.get("fieldManager")
        if not manager:
            raise RefusedError(400, "PATCH with apply requires a fieldManager")
        applied = req.body or {}
        mine = field_paths(tracked(applied, False))
        owners = self.owners.get(key, {})
        conflicts = []
        for other, paths in owners.items():
            if other == (manager, "Apply"):
                continue
            for path in paths & mine:
                if value_at(live, path) != value_at(applied, path) and path[-1] != ".":
                    conflicts.append((other[0], path))
        if conflicts and req.params.get("force") != "true":
            listed = "; ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts)
            raise RefusedError(409, f"Apply failed with {len(conflicts)} conflicts: {listed}")
        new = clone(live) if live is not None else {}
        previously = owners.get((manager, "Apply"), set())
        others = set().union(*(p for m, p in owners.items() if m != (manager, "Apply")))
        for path in sorted(previously - mine - others, key=len, reverse=True):
            remove_path(new, path)
        new = merge(new, tracked(applied, False))
        new.setdefault("apiVersion", applied.get("apiVersion"))
        new.setdefault("kind", applied.get("kind"))
        new.setdefault("metadata", {}).update(name=key[3], namespace=key[2])
        ownership = {m: set(p) for m, p in owners.items()}
        for other in list(ownership):
            if other != (manager, "Apply"):
                ownership[other] -= {p for m, p in conflicts if m == other[0]}
        ownership[(manager, "Apply")] = mine
        return self.store(key, "", req, live, new, ownership)

    def _write(
        self, key: ObjKey, sub: str, req: Request, live: Body | None, new: Body, op: str
    ) -> Body:
        manager = req.params.get("fieldManager") or req.user
        owners = {m: set(p) for m, p in self.owners.get(key, {}).items()}
        status = sub == "status"
        before = field_paths(tracked(live or {}, status))
        after = field_paths(tracked(new, status))
        changed = {p for p in after if p not in before or value_at(live, p) != value_at(new, p)}
        lost = changed | (before - after)
        owners = {m: paths - lost for m, paths in owners.items()}
        if changed:
            owners.setdefault((manager, op), set()).update(changed)
        return self.store(key, sub, req, live, new, owners)


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
