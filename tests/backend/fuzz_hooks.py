"""schemathesis hooks for the backend's spec: the cross-field rules JSON Schema can
not state (each is in the spec's description text).

- a smile curve's `k` and `iv`, and a GEX record's `strikes` and `gex`, have the same
  length;
- a shard part's `shard.index` is below its `shard.count`;
- an ingest batch holds at most 1000 items in all its lists.

Generated *positive* cases are made to respect them (the longer list is cut to the
shorter one, lists are cut to the batch total), so `positive_data_acceptance` tests
what the spec promises; negative cases are left alone. Loaded by
tests/backend/test_openapi_fuzz.py and, through SCHEMATHESIS_HOOKS, by
bench/schemathesis_full.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_BATCH_ITEMS = 1000
PAIRS = (("k", "iv"), ("strikes", "gex"))
BATCH_LISTS = ("anomalies", "market", "gex", "flow", "signals")


def equalize(value: Any) -> Any:
    """Cut paired lists to the shorter one's length, anywhere in a JSON value."""
    if isinstance(value, list):
        return [equalize(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: equalize(v) for k, v in value.items()}
    for a, b in PAIRS:
        if isinstance(out.get(a), list) and isinstance(out.get(b), list):
            n = min(len(out[a]), len(out[b]))
            out[a], out[b] = out[a][:n], out[b][:n]
    shard = out.get("shard")
    if isinstance(shard, dict) and isinstance(shard.get("index"), int):
        count = shard.get("count")
        if isinstance(count, int) and count >= 1 and shard["index"] >= count:
            out["shard"] = {**shard, "index": count - 1}
    return out


def bound_batch(body: dict[str, Any]) -> dict[str, Any]:
    room = MAX_BATCH_ITEMS
    for name in BATCH_LISTS:
        if isinstance(body.get(name), list):
            body[name] = body[name][:room]
            room -= len(body[name])
    return body


def respect_cross_field_rules(case: Any) -> None:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    body = equalize(case.body)
    case.body = bound_batch(body) if case.path.endswith("/ingest") else body


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    respect_cross_field_rules(case)
