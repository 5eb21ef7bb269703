"""Which expiries this detector shard owns (DESIGN §3, OptionsDetector).

The operator runs the detector as a StatefulSet of ``shards`` replicas; the pod's
ordinal names its shard. Shard ``i`` of ``n`` takes the expiries whose index in the
sorted expiry list modulo ``n`` equals ``i``, so adjacent expiries land on different
shards and the load stays even as the front expiry rolls off. Pure; the env parsing
is here too because it is the one place that knows the variable names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from spy_analytics import ChainSnapshot

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


def shard_snapshot(snapshot: ChainSnapshot, shard: ShardSpec) -> ChainSnapshot:
    """This shard's part of a whole-chain snapshot (replay and synthetic sources).

    The IBKR source never subscribes to other shards' expiries, so it does not need
    this; sources that produce the whole chain at once filter with it.
    """
    if shard.count == 1:
        return snapshot
    expiries = snapshot.expiry.astype("datetime64[D]").astype(str)
    mine = set(select_expiries(expiries.tolist(), shard))
    mask = np.fromiter((e in mine for e in expiries), dtype=np.bool_, count=len(expiries))
    return snapshot.take(mask)
