"""Wire fields of a sharded detector's GEX and flow parts (docs/wire-format.md "Shards").

A detector running as shard i of n > 1 posts its GEX and flow records with `shard`
(and the additive extras below); the backend stores such parts aside and, once every
shard's part of one snapshot time is in, stores and broadcasts one merged record
(`spy_backend.shards`). Records without `shard`, or with a count of 1, are whole.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from spy_backend.models.common import Count, Finite, Number, WireModel

MAX_SHARDS = 32  # the CRD's bound on spec.shards
MAX_FLIP_POINTS = 1001


class ShardId(WireModel):
    """Which part of the chain a record covers: shard `index` of `count` (`index` <
    `count`). The merged record of all `count` parts must itself be within the GEX
    record's bounds (at most 1000 strikes in all), else the part completing it is a 422."""

    index: Count = Field(ge=0, lt=MAX_SHARDS)
    count: Count = Field(ge=1, le=MAX_SHARDS)

    @model_validator(mode="after")
    def _index_below_count(self) -> Self:
        if self.index >= self.count:
            raise ValueError("shard index must be below the shard count")
        return self


class FlipCurve(WireModel):
    """Net GEX of the shard's contracts at spot x (1 + linspace(-range, range, n))."""

    range: Annotated[Number, Field(gt=0, le=1)]
    net: list[Annotated[Finite, Field(ge=-1e16, le=1e16)]] = Field(
        min_length=2, max_length=MAX_FLIP_POINTS
    )


SessionVolume = Annotated[Number, Field(ge=0, le=1e12)]
