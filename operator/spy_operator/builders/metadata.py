"""Metadata every child carries: standard labels, the selector, the ownerReference to
its CR, and the hash of the desired manifest. Pure; used by the per-kind builders in
this package, by bot_access.py and by writes.py (``desired_hash``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from spy_operator import constants as c
from spy_operator.api import Meta

Manifest = dict[str, Any]


def labels(kind: str, name: str) -> dict[str, str]:
    return {
        c.LABEL_NAME: c.COMPONENT[kind],
        c.LABEL_INSTANCE: name,
        c.LABEL_COMPONENT: c.COMPONENT[kind],
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }


def selector(kind: str, name: str) -> dict[str, str]:
    return {c.LABEL_COMPONENT: c.COMPONENT[kind], c.LABEL_INSTANCE: name}


def owner_reference(meta: Meta) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": meta.kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(meta: Meta, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": meta.namespace,
        "labels": labels(meta.kind, meta.name),
        "ownerReferences": [owner_reference(meta)],
    }


def desired_hash(manifest: Manifest) -> str:
    """Stable hash of a manifest, stored on the child to detect spec changes cheaply."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
