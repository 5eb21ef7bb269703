"""Field ownership as server-side apply keeps it: FieldsV1 paths of a body, locating and
removing a path, apply's merge (associative lists merge by key), RFC 7386 merge patches
and RFC 6902 JSON patches. Pure functions on JSON data; used by server.py and store.py.
"""

from __future__ import annotations

import json
from typing import Any

from .objects import USER_META, Body, Path, clone

# Associative lists and their keys (the Kubernetes OpenAPI's x-kubernetes-list-map-keys).
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
}


def _item_key(list_name: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    keys = LIST_KEYS.get(list_name)
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


def tracked(obj: Body, status: bool) -> Body:
    """The part of an object whose fields are owned: labels, annotations, owners, the rest
    of the body, and status only for status writes."""
    meta = obj.get("metadata") or {}
    out: Body = {}
    if picked := {k: meta[k] for k in USER_META if meta.get(k) is not None}:
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


def value_at(obj: Any, path: Path) -> Any:
    found = _locate(obj, path[:-1] if path and path[-1] == "." else path)
    return None if found is None else found[0][found[1]]


def remove_path(obj: Body, path: Path) -> None:
    found = _locate(obj, path[:-1] if path[-1] == "." else path)
    if found is not None:
        del found[0][found[1]]


def merge(live: Any, applied: Any, name: str = "") -> Any:
    """Apply semantics: maps merge, associative lists merge by key, the rest replaces."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key), value, key)
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
                merged.append(clone(item))
            else:
                merged[idx] = merge(merged[idx], item)
        return merged
    return clone(applied)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(doc: Body, ops: list[Body]) -> Body:
    """RFC 6902 add/replace/remove (what mutating webhooks answer with)."""
    out = clone(doc)
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
