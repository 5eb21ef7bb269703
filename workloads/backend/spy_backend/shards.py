"""Merge a sharded detector's GEX/flow parts into one record per snapshot time.

Called by the ingest route. A detector running as shard i of n > 1 posts GEX and flow
*parts* (`GexCreate.shard`, `FlowCreate.shard`): each covers only its shard's expiries,
so on its own it would show a wrong net GEX, flip and flow. Parts are kept in
`storage.parts.PartStore`; when the part of every shard of one (symbol, ts) is in, the
merged record (`spy_analytics.shards.merge_gex` / `merge_flow`: sums per strike, the
flip found on the summed flip-grid curve, the P/C ratio from summed volumes) is stored
and broadcast like a whole record - exactly what one shard would have published - and
the parts are dropped. Merged records have the ids whole ones have (symbol and ts), so
two backend replicas completing the same round store it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from spy_analytics.shards import complete, merge_flow, merge_gex

from spy_backend.models import FlowCreate, GexCreate, IngestBatch, PublicRecord, Resource
from spy_backend.storage.parts import PartStore


@dataclass
class Merged:
    """Records completed by this batch's parts, and the rounds to drop once stored."""

    records: dict[Resource, list[PublicRecord]] = field(default_factory=dict)
    rounds: list[tuple[Resource, str, datetime, int]] = field(default_factory=list)
    parts: int = 0
    #: parts whose round merged into a record out of the wire bounds (e.g. more than
    #: 1000 strikes in all): refused with the reason, the round is dropped
    invalid: list[tuple[Resource, GexCreate | FlowCreate, str]] = field(default_factory=list)


def split_parts(batch: IngestBatch) -> tuple[IngestBatch, list[GexCreate], list[FlowCreate]]:
    """The batch without its parts, and the GEX and flow parts."""
    gex_parts = [g for g in batch.gex if g.is_part]
    flow_parts = [f for f in batch.flow if f.is_part]
    if not gex_parts and not flow_parts:
        return batch, [], []
    whole = batch.model_copy(
        update={
            "gex": [g for g in batch.gex if not g.is_part],
            "flow": [f for f in batch.flow if not f.is_part],
        }
    )
    return whole, gex_parts, flow_parts


async def merge_parts(
    store: PartStore, gex_parts: list[GexCreate], flow_parts: list[FlowCreate]
) -> Merged:
    """Store each part; merge every round this batch completes."""
    out = Merged()
    todo: list[tuple[Resource, GexCreate | FlowCreate]] = [(Resource.GEX, g) for g in gex_parts]
    todo += [(Resource.FLOW, f) for f in flow_parts]
    for resource, part in todo:
        assert part.shard is not None  # split_parts passes parts only
        body = part.model_dump(mode="json")
        await store.put(resource, part.symbol, part.ts, part.shard.index, body)
        out.parts += 1
    done: set[tuple[Resource, str, datetime]] = set()
    for resource, part in todo:
        key = (resource, part.symbol, part.ts)
        if key in done:
            continue
        done.add(key)
        got = await store.round(*key)
        if not complete(got):
            continue
        out.rounds.append((*key, len(got)))
        record: PublicRecord
        try:
            if resource is Resource.GEX:
                record = GexCreate.model_validate(merge_gex(got)).public()
            else:
                record = FlowCreate.model_validate(merge_flow(got)).public()
        except ValidationError as exc:
            # the parts were each valid, their sum is not: no record rather than a
            # clipped one, and a 4xx naming the part that completed the round
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            out.invalid.append((resource, part, f"merged shards out of bounds: {reason}"))
            continue
        out.records.setdefault(resource, []).append(record)
    return out


async def drop_rounds(store: PartStore, merged: Merged) -> None:
    """Delete the parts of rounds whose merged record is stored."""
    for resource, symbol, ts, count in merged.rounds:
        await store.drop(resource, symbol, ts, count)
