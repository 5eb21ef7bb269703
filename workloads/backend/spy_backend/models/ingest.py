"""Ingest batch and result, query pages, and the realtime envelope."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, Self, TypeVar

from pydantic import BaseModel, Field, model_validator

from spy_backend.models.anomaly import AnomalyCreate, AnomalyPublic
from spy_backend.models.common import WireModel
from spy_backend.models.series import (
    FlowCreate,
    FlowPublic,
    GexCreate,
    GexPublic,
    MarketCreate,
    MarketPublic,
    SignalCreate,
    SignalPublic,
)

MAX_BATCH_ITEMS = 1000


class Resource(StrEnum):
    """A stored record type; the value is the table suffix and the realtime `type`."""

    ANOMALY = "anomaly"
    MARKET = "market"
    GEX = "gex"
    FLOW = "flow"
    SIGNAL = "signal"


PublicRecord = AnomalyPublic | MarketPublic | GexPublic | FlowPublic | SignalPublic

PUBLIC_MODEL: dict[Resource, type[PublicRecord]] = {
    Resource.ANOMALY: AnomalyPublic,
    Resource.MARKET: MarketPublic,
    Resource.GEX: GexPublic,
    Resource.FLOW: FlowPublic,
    Resource.SIGNAL: SignalPublic,
}


class IngestBatch(WireModel):
    """What the detector posts; every list optional, at most 1000 items in all."""

    anomalies: list[AnomalyCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    market: list[MarketCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    gex: list[GexCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    flow: list[FlowCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    signals: list[SignalCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)

    @model_validator(mode="after")
    def _bounded_total(self) -> Self:
        total = sum(
            len(v) for v in (self.anomalies, self.market, self.gex, self.flow, self.signals)
        )
        if total > MAX_BATCH_ITEMS:
            raise ValueError(f"batch has {total} items; at most {MAX_BATCH_ITEMS} in all")
        return self

    def by_resource(self) -> dict[Resource, list[PublicRecord]]:
        """The batch as public records (ids filled in), grouped by resource."""
        return {
            Resource.ANOMALY: [a.public() for a in self.anomalies],
            Resource.MARKET: [m.public() for m in self.market],
            Resource.GEX: [g.public() for g in self.gex],
            Resource.FLOW: [f.public() for f in self.flow],
            Resource.SIGNAL: [s.public() for s in self.signals],
        }


class KindCount(BaseModel):
    stored: int = 0
    duplicate: int = 0


class IngestResult(BaseModel):
    """200 answer to an ingest: how many records were new and how many already stored."""

    stored: int
    duplicate: int
    kinds: dict[Resource, KindCount]


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a newest-first query; pass `next_cursor` back as `cursor` for more."""

    items: list[T]
    next_cursor: str | None = None


class Problem(BaseModel):
    """Error body of 4xx/5xx answers other than validation errors."""

    detail: str
