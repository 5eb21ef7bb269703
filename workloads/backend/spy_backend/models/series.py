"""Market state, GEX, flow and signal wire models (one record per snapshot)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from spy_backend.models.common import (
    Count,
    Expiry,
    Finite,
    LogMoneyness,
    Number,
    Premium,
    Price,
    Reason,
    RecordId,
    Strike,
    Symbol,
    UtcTimestamp,
    Vol,
    WireModel,
    stable_id,
    ts_text,
)
from spy_backend.models.shards import FlipCurve, SessionVolume, ShardId

MAX_POINTS = 256
MAX_EXPIRIES = 32
MAX_STRIKES = 1000


class SmileCurve(WireModel):
    """Points of a smile: `k` (log-moneyness) and `iv` of the same length."""

    k: list[LogMoneyness] = Field(max_length=MAX_POINTS)
    iv: list[Vol] = Field(max_length=MAX_POINTS)

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if len(self.k) != len(self.iv):
            raise ValueError("k and iv must have the same length")
        return self


class ExpirySmile(WireModel):
    expiry: Expiry
    t: Number = Field(ge=0, le=10, description="Years to expiry.")
    atm_iv: Vol | None = None
    points: SmileCurve
    fit: SmileCurve | None = None


class MarketBase(WireModel):
    ts: UtcTimestamp
    symbol: Symbol = "SPY"
    spot: Annotated[Price, Field(gt=0)]
    bad_quotes: Count = Field(default=0, ge=0, le=1_000_000)
    expiries: list[ExpirySmile] = Field(default_factory=list, max_length=MAX_EXPIRIES)


class MarketCreate(MarketBase):
    def public(self) -> MarketPublic:
        return MarketPublic(
            **self.model_dump(), id=stable_id("market", self.symbol, ts_text(self.ts))
        )


class MarketPublic(MarketBase):
    id: RecordId


class GexBase(WireModel):
    """Gamma exposure per strike: `strikes` and `gex` of the same length."""

    ts: UtcTimestamp
    symbol: Symbol = "SPY"
    spot: Annotated[Price, Field(gt=0)]
    strikes: list[Strike] = Field(max_length=MAX_STRIKES)
    gex: list[Annotated[Finite, Field(ge=-1e15, le=1e15)]] = Field(max_length=MAX_STRIKES)
    net_gex: Annotated[Finite, Field(ge=-1e16, le=1e16)]
    flip: Strike | None = None

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if len(self.strikes) != len(self.gex):
            raise ValueError("strikes and gex must have the same length")
        return self


class GexCreate(GexBase):
    shard: ShardId | None = Field(
        default=None, description="Set by a sharded detector: this record is one part."
    )
    flip_curve: FlipCurve | None = Field(
        default=None, description="A part's net GEX on the flip grid (merged by summing)."
    )

    @property
    def is_part(self) -> bool:
        return self.shard is not None and self.shard.count > 1

    def public(self) -> GexPublic:
        fields = self.model_dump(exclude={"shard", "flip_curve"})
        return GexPublic(**fields, id=stable_id("gex", self.symbol, ts_text(self.ts)))


class GexPublic(GexBase):
    id: RecordId


class FlowBase(WireModel):
    ts: UtcTimestamp
    symbol: Symbol = "SPY"
    call_premium: Premium
    put_premium: Premium
    net_premium: Annotated[Finite, Field(ge=-1e15, le=1e15)] = Field(
        description=(
            "Signed, bullish-positive premium by aggressor side (Lee-Ready quote rule): "
            "calls bought at the ask minus calls sold at the bid, minus the same for "
            "puts. Not call_premium - put_premium (those are gross, both sides)."
        )
    )
    put_call_volume_ratio: Annotated[Number, Field(ge=0, le=1e6)] | None = None


class FlowCreate(FlowBase):
    shard: ShardId | None = Field(
        default=None, description="Set by a sharded detector: this record is one part."
    )
    call_volume: SessionVolume | None = Field(
        default=None, description="A part's call session volume (merged P/C ratio)."
    )
    put_volume: SessionVolume | None = Field(
        default=None, description="A part's put session volume (merged P/C ratio)."
    )

    @property
    def is_part(self) -> bool:
        return self.shard is not None and self.shard.count > 1

    def public(self) -> FlowPublic:
        fields = self.model_dump(exclude={"shard", "call_volume", "put_volume"})
        return FlowPublic(**fields, id=stable_id("flow", self.symbol, ts_text(self.ts)))


class FlowPublic(FlowBase):
    id: RecordId


class Direction(StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    NEUTRAL = "neutral"


class SignalBase(WireModel):
    ts: UtcTimestamp
    symbol: Symbol = "SPY"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    direction: Direction
    strength: Number = Field(ge=0, le=1)
    reason: Reason
    anomaly_ids: list[RecordId] = Field(default_factory=list, max_length=1000)


class SignalCreate(SignalBase):
    id: RecordId | None = Field(default=None, description="Computed when absent.")

    def public(self) -> SignalPublic:
        rid = self.id or stable_id("signal", self.name, self.symbol, ts_text(self.ts))
        return SignalPublic(**self.model_dump(exclude={"id"}), id=rid)


class SignalPublic(SignalBase):
    id: RecordId
