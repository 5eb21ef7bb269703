"""IB API client ids, allocated per gateway so no two consumers collide.

The gateway refuses a second connection with a client id already in use (error 326),
so every detector shard and bot on one gateway needs its own id. Consumers of a
gateway are ordered by (creationTimestamp, kind, name); the i-th gets the block
[1 + 32*i, 1 + 32*i + 31] (shards are at most 32); id 0 is left to the TWS master
client. The allocation is recomputed from the world each pass (no stored state) and
changes only when an older consumer of the same gateway is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BLOCK = 32

ConsumerKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Consumer:
    kind: str
    namespace: str
    name: str
    gateway: str
    created: str  # RFC 3339 creationTimestamp sorts lexically
    count: int  # ids needed: shards for a detector, 1 for a bot

    @property
    def key(self) -> ConsumerKey:
        return (self.kind, self.namespace, self.name)


def allocate(consumers: Iterable[Consumer]) -> dict[ConsumerKey, list[int]]:
    by_gateway: dict[tuple[str, str], list[Consumer]] = {}
    for c in consumers:
        by_gateway.setdefault((c.namespace, c.gateway), []).append(c)
    out: dict[ConsumerKey, list[int]] = {}
    for group in by_gateway.values():
        group.sort(key=lambda c: (c.created, c.kind, c.name))
        for slot, c in enumerate(group):
            base = 1 + BLOCK * slot
            out[c.key] = [base + i for i in range(min(c.count, BLOCK))]
    return out
