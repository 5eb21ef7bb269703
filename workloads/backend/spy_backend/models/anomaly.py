"""Anomaly wire models: one unusual option quote, scored and explained."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from spy_analytics.types import AnomalyKind as AnomalyKind  # the producer's enums are the contract
from spy_analytics.types import Severity as Severity
from spy_analytics.types import anomaly_id as analytics_anomaly_id

from spy_backend.models.common import (
    Expiry,
    Finite,
    LogMoneyness,
    Reason,
    RecordId,
    Strike,
    Symbol,
    UtcTimestamp,
    Vol,
    WireModel,
)


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


class Contract(WireModel):
    expiry: Expiry
    strike: Strike
    right: Right


class AnomalyBase(WireModel):
    ts: UtcTimestamp = Field(description="Snapshot time, RFC 3339 UTC.")
    symbol: Symbol = "SPY"
    kind: AnomalyKind
    severity: Severity
    score: Finite = Field(ge=-1e6, le=1e6)
    reason: Reason
    contract: Contract
    iv: Vol | None = None
    fitted_iv: Vol | None = None
    k: LogMoneyness | None = Field(default=None, description="ln(K/F)")


def anomaly_id(a: AnomalyBase) -> str:
    """The producer's id of this anomaly: one definition, in spy_analytics.types
    (sha1 of `kind|symbol|expiry|strike(.2f)|right|ts(%Y-%m-%dT%H:%M:%S.%fZ)`)."""
    c = a.contract
    return analytics_anomaly_id(
        a.kind.value, a.symbol, c.expiry.isoformat(), c.strike, c.right.value, a.ts
    )


class AnomalyCreate(AnomalyBase):
    id: RecordId | None = Field(
        default=None, description="Stable id; computed by the backend when absent."
    )

    def public(self) -> AnomalyPublic:
        return AnomalyPublic(**self.model_dump(exclude={"id"}), id=self.id or anomaly_id(self))


class AnomalyPublic(AnomalyBase):
    id: RecordId
