"""Result types of the analytics pipeline and their wire form (docs/wire-format.md).

Who calls this: `spy_analytics.pipeline.analyze` builds these objects; the detector
service serialises them with `to_wire()` and posts them to the backend. Pure data, no I/O.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How much a trader should care. Ordered LOW < MEDIUM < HIGH by `rank`."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        return {"LOW": 0, "MEDIUM": 1, "HIGH": 2}[self.value]


class AnomalyKind(StrEnum):
    """Anomaly kinds, spelled exactly as in docs/wire-format.md."""

    IV_RESIDUAL = "iv_residual"
    VOL_OI = "vol_oi"
    VOLUME_Z = "volume_z"
    PARITY = "parity"
    EARLY_EXERCISE = "early_exercise"
    CALL_SPREAD = "call_spread"
    BUTTERFLY = "butterfly"
    CALENDAR = "calendar"
    SPREAD_BLOWOUT = "spread_blowout"


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with a trailing Z (seconds precision, microseconds when present)."""
    ts_utc = ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    text = ts_utc.isoformat(timespec="microseconds" if ts_utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def anomaly_id(kind: str, symbol: str, expiry: str, strike: float, right: str, ts: datetime) -> str:
    """sha1 hex of ``kind|symbol|expiry|strike|right|ts`` (docs/wire-format.md).

    The strike is rendered with ``repr(float(strike))`` and the timestamp with
    `format_ts`, so the same anomaly in the same snapshot always hashes the same
    (idempotent ingest), whichever process computes it.
    """
    key = f"{kind}|{symbol}|{expiry}|{float(strike)!r}|{right}|{format_ts(ts)}"
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Contract:
    """One listed option: expiry ``YYYY-MM-DD``, strike in USD, right ``C`` or ``P``."""

    expiry: str
    strike: float
    right: str

    def to_wire(self) -> dict[str, Any]:
        return {"expiry": self.expiry, "strike": float(self.strike), "right": self.right}


@dataclass(frozen=True)
class Anomaly:
    """One anomaly raised by one rule on one contract of one snapshot."""

    id: str
    ts: datetime
    symbol: str
    kind: AnomalyKind
    severity: Severity
    score: float
    reason: str
    contract: Contract
    iv: float | None = None
    fitted_iv: float | None = None
    k: float | None = None

    def to_wire(self) -> dict[str, Any]:
        """The Anomaly object of docs/wire-format.md (plain JSON types only)."""
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "score": _finite_or_none(self.score) or 0.0,
            "reason": self.reason,
            "contract": self.contract.to_wire(),
            "iv": _finite_or_none(self.iv),
            "fitted_iv": _finite_or_none(self.fitted_iv),
            "k": _finite_or_none(self.k),
        }


@dataclass(frozen=True)
class SmileCurve:
    """Per-expiry smile: observed OTM points and the fitted curve, both in log-moneyness."""

    expiry: str
    t: float
    atm_iv: float
    points_k: tuple[float, ...]
    points_iv: tuple[float, ...]
    fit_k: tuple[float, ...]
    fit_iv: tuple[float, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "expiry": self.expiry,
            "t": self.t,
            "atm_iv": _finite_or_none(self.atm_iv),
            "points": {"k": list(self.points_k), "iv": list(self.points_iv)},
            "fit": {"k": list(self.fit_k), "iv": list(self.fit_iv)},
        }


@dataclass(frozen=True)
class MarketState:
    """Market-state message: spot, bad-quote count and the smile of every expiry."""

    ts: datetime
    symbol: str
    spot: float
    bad_quotes: int
    expiries: tuple[SmileCurve, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "spot": self.spot,
            "bad_quotes": self.bad_quotes,
            "expiries": [e.to_wire() for e in self.expiries],
        }


@dataclass(frozen=True)
class GammaExposure:
    """Dealer gamma exposure (USD per 1% move) per strike, net, and the gamma flip level."""

    ts: datetime
    symbol: str
    spot: float
    strikes: tuple[float, ...]
    gex: tuple[float, ...]
    net_gex: float
    flip: float | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "spot": self.spot,
            "strikes": list(self.strikes),
            "gex": list(self.gex),
            "net_gex": self.net_gex,
            "flip": _finite_or_none(self.flip),
        }


@dataclass(frozen=True)
class PremiumFlow:
    """Signed premium flow since the previous snapshot and the put/call volume ratio."""

    ts: datetime
    symbol: str
    call_premium: float
    put_premium: float
    net_premium: float
    put_call_volume_ratio: float | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "call_premium": self.call_premium,
            "put_premium": self.put_premium,
            "net_premium": self.net_premium,
            "put_call_volume_ratio": _finite_or_none(self.put_call_volume_ratio),
        }


@dataclass(frozen=True)
class DataQuality:
    """Quotes skipped by the pipeline, counted by reason (never anomalies)."""

    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None
