"""Record <-> table entity mapping.

Each entity keeps a few typed properties that queries filter on (`ts`, `kind`,
`severity`, `expiry`, ...) and the whole record as JSON in `body`; a record too large
for one 64 KiB string property is stored zlib-compressed in binary chunks
`bodyz0..bodyzN` (market snapshots with many smile points).
"""

from __future__ import annotations

import zlib
from typing import Any

from spy_backend.models import PUBLIC_MODEL, AnomalyPublic, PublicRecord, Resource
from spy_backend.storage.keys import partition_key, row_key, trading_day

BODY_MAX_CHARS = 30_000  # < 64 KiB as UTF-16
CHUNK_BYTES = 60_000


def to_entity(record: PublicRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(record.symbol, trading_day(record.ts)),
        "RowKey": row_key(record.ts, record.id),
        "id": record.id,
        "ts": record.ts,
        "symbol": record.symbol,
    }
    if isinstance(record, AnomalyPublic):
        entity.update(
            kind=record.kind.value,
            severity=record.severity.value,
            expiry=record.contract.expiry.isoformat(),
            strike=record.contract.strike,
            right=record.contract.right.value,
            score=record.score,
        )
    body = record.model_dump_json()
    if len(body) <= BODY_MAX_CHARS:
        entity["body"] = body
    else:
        packed = zlib.compress(body.encode(), 6)
        chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)]
        entity["bodyzn"] = len(chunks)
        for i, chunk in enumerate(chunks):
            entity[f"bodyz{i}"] = chunk
    return entity


def from_entity(resource: Resource, entity: dict[str, Any]) -> PublicRecord:
    model = PUBLIC_MODEL[resource]
    if "body" in entity:
        return model.model_validate_json(entity["body"])
    packed = b"".join(bytes(entity[f"bodyz{i}"]) for i in range(int(entity["bodyzn"])))
    return model.model_validate_json(zlib.decompress(packed))
