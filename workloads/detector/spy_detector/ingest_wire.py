"""The ingest request on the wire (docs/wire-format.md): item types, the batch limit,
strict JSON encoding, the request body, and which items a FastAPI 422 names. Pure;
used by publisher.Publisher.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

ITEM_TYPES = ("anomalies", "market", "gex", "flow", "signals")
MAX_BATCH = 1000  # the ingest contract's limit per request
INGEST_PATH = "/api/v1/ingest"


def ingest_body(items: Sequence[tuple[str, bytes]]) -> tuple[dict[str, list[int]], bytes]:
    """One ingest request body from (type, JSON text) items, grouped by type in order of
    first appearance; also the positions of each type's items (to map a 422 back)."""
    groups: dict[str, list[int]] = {}
    for i, (kind, _) in enumerate(items):
        groups.setdefault(kind, []).append(i)
    content = (
        b"{"
        + b",".join(
            json.dumps(kind).encode() + b":[" + b",".join(items[i][1] for i in idx) + b"]"
            for kind, idx in groups.items()
        )
        + b"}"
    )
    return groups, content


def encode(payload: dict[str, Any]) -> bytes:
    """Strict JSON (no NaN/Infinity: the backend and httpx refuse them)."""
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()


def rejected_items(resp: httpx.Response, groups: Mapping[str, list[int]]) -> set[int] | None:
    """Indices of the items a FastAPI 422 names (``loc = ["body", type, index, ...]``);
    None when any location cannot be mapped to an item (the caller bisects)."""
    try:
        detail = resp.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(detail, list) or not detail:
        return None
    bad: set[int] = set()
    for entry in detail:
        loc = entry.get("loc") if isinstance(entry, dict) else None
        if not isinstance(loc, list) or len(loc) < 3 or loc[0] != "body":
            return None
        kind, index = loc[1], loc[2]
        positions = groups.get(kind) if isinstance(kind, str) else None
        if positions is None or isinstance(index, bool) or not isinstance(index, int):
            return None
        if not 0 <= index < len(positions):
            return None
        bad.add(positions[index])
    return bad
