"""Which expiries this detector shard owns (DESIGN §3, OptionsDetector).

The operator runs the detector as a StatefulSet of ``shards`` replicas; the pod's
ordinal names its shard. Shard ``i`` of ``n`` takes the expiries whose index in the
sorted expiry list modulo ``n`` equals ``i``, so adjacent expiries land on different
shards and the load stays even as the front expiry rolls off. Pure; the env parsing
is here too because it is the one place that knows the variable names.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spy_analytics import AnalysisResult, ChainSnapshot
from spy_analytics.shards import flow_part, gex_part

_ORDINAL = re.compile(r"-(\d+)$")


class ShardConfigError(ValueError):
    """The shard environment is inconsistent; the pod should fail fast."""


@dataclass(frozen=True, slots=True)
class ShardSpec:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardConfigError(f"shard count must be >= 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardConfigError(f"shard index {self.index} not in [0, {self.count})")

    def owns(self, position: int) -> bool:
        return position % self.count == self.index

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ShardSpec:
        """Read ``SPY_SHARD_INDEX`` (or the ``HOSTNAME`` ordinal) and ``SPY_SHARD_COUNT``.

        An explicit ``SPY_SHARD_INDEX`` wins; otherwise the StatefulSet pod name
        ``<name>-<ordinal>`` in ``HOSTNAME`` gives the index; otherwise shard 0.
        """
        count = _int(env, "SPY_SHARD_COUNT", 1)
        raw_index = env.get("SPY_SHARD_INDEX", "").strip()
        if raw_index:
            index = _int(env, "SPY_SHARD_INDEX", 0)
        else:
            match = _ORDINAL.search(env.get("HOSTNAME", "").strip())
            index = int(match.group(1)) if match else 0
        return cls(index=index, count=count)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ShardConfigError(f"{name} must be an integer, got {raw!r}") from exc


def select_expiries(expiries: Iterable[str], shard: ShardSpec) -> list[str]:
    """The expiries shard ``shard`` owns, in ascending order.

    ``expiries`` may be unsorted or hold duplicates; indices are taken over the
    sorted distinct list so every shard computes the same partition.
    """
    ordered = sorted(set(expiries))
    return [e for pos, e in enumerate(ordered) if shard.owns(pos)]


def context_expiries(expiries: Iterable[str], shard: ShardSpec) -> list[str]:
    """The expiry after each one ``shard`` owns (none after the last): read-only context
    so the calendar rule compares every adjacent pair of the chain, each on one shard
    (the one owning the near leg; ``spy_analytics.shards``). Empty with one shard."""
    if shard.count == 1:
        return []
    ordered = sorted(set(expiries))
    return [ordered[pos + 1] for pos in range(len(ordered) - 1) if shard.owns(pos)]


def shard_snapshot(snapshot: ChainSnapshot, shard: ShardSpec) -> ChainSnapshot:
    """This shard's part of a whole-chain snapshot (replay and synthetic sources): its
    own expiries plus the context expiries (``context_expiries``), marked as such.

    The IBKR source subscribes to the same set (``select_expiries`` +
    ``context_expiries``) and marks its snapshots the same way.
    """
    if shard.count == 1:
        return snapshot
    expiries = snapshot.expiry.astype("datetime64[D]").astype(str)
    distinct = np.unique(expiries).tolist()
    context = context_expiries(distinct, shard)
    keep = set(select_expiries(distinct, shard)) | set(context)
    mask = np.fromiter((e in keep for e in expiries), dtype=np.bool_, count=len(expiries))
    return dataclasses.replace(snapshot.take(mask), context_expiries=frozenset(context))


def result_wire(result: AnalysisResult, shard: ShardSpec, flip_range: float) -> dict[str, Any]:
    """The ingest items of one analysed snapshot: with several shards, GEX and flow go
    as parts (shard id and count, the flip-grid curve, session volumes) that the
    backend merges into one record per snapshot time once every shard's part is in."""
    wire = result.to_wire()
    if shard.count > 1 and wire["gex"]:
        wire["gex"] = [gex_part(result.gex, shard.index, shard.count, flip_range)]
        wire["flow"] = [flow_part(result.flow, shard.index, shard.count)]
    return wire
