"""Result types of the analytics pipeline and their wire form (docs/wire-format.md).

Who calls this: `spy_analytics.pipeline.analyze` builds these objects; the detector
service serialises them with `to_wire()` and posts them to the backend. Pure data, no I/O.
"""

from __future__ import annotations

import functools
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

    Exactly the backend's rendering (``spy_backend.models.anomaly_id``): strike as
    ``%.2f``, ts as ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, e.g.
    ``iv_residual|SPY|2026-12-19|600.00|C|2026-11-25T15:30:00.000000Z``; so the same
    anomaly of the same snapshot always has the same id (idempotent ingest), whichever
    side computes it.
    """
    key = f"{kind}|{symbol}|{expiry}|{float(strike):.2f}|{right}|{_id_ts(ts)}"
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()


@functools.lru_cache(maxsize=16)
def _id_ts(ts: datetime) -> str:
    """``ts`` as `anomaly_id` renders it: formatted once per snapshot time, not once
    per anomaly (equal datetimes are the same instant, so render the same)."""
    ts_utc = ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return ts_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
            "score": max(-1e6, min(1e6, _finite_or_none(self.score) or 0.0)),
            "reason": self.reason[:1000],
            "contract": self.contract.to_wire(),
            "iv": _within(self.iv, 0.0, MAX_VOL),
            "fitted_iv": _within(self.fitted_iv, 0.0, MAX_VOL),
            "k": _within(self.k, -MAX_ABS_K, MAX_ABS_K),
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
        """Backend bounds: vols in [0, 10], k in [-10, 10]; points outside are dropped."""
        pk, piv = _curve(self.points_k, self.points_iv)
        fk, fiv = _curve(self.fit_k, self.fit_iv)
        return {
            "expiry": self.expiry,
            "t": self.t,
            "atm_iv": _within(self.atm_iv, 0.0, MAX_VOL),
            "points": {"k": pk, "iv": piv},
            "fit": {"k": fk, "iv": fiv},
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
    #: net GEX on the flip search grid (`structure.flip_grid`); a sharded detector
    #: publishes it so the backend can find the flip of the whole chain
    flip_curve: tuple[float, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "spot": self.spot,
            "strikes": list(self.strikes),
            "gex": [_clamp(g, MAX_GEX) for g in self.gex],
            "net_gex": _clamp(self.net_gex, MAX_NET_GEX),
            "flip": _finite_or_none(self.flip),
        }


@dataclass(frozen=True)
class PremiumFlow:
    """Premium traded since the previous snapshot and the put/call volume ratio.

    ``call_premium``/``put_premium`` are gross (>= 0) USD premium traded in calls/puts;
    ``net_premium`` is the signed, bullish-positive flow: calls bought at the ask minus
    calls sold at the bid, minus (puts bought at the ask minus puts sold at the bid).
    ``call_signed``/``put_signed`` (bought minus sold per right) are kept for callers but
    are not part of the wire record (the backend refuses unknown fields).
    """

    ts: datetime
    symbol: str
    call_premium: float
    put_premium: float
    net_premium: float
    put_call_volume_ratio: float | None
    call_signed: float = 0.0
    put_signed: float = 0.0
    #: session volumes behind ``put_call_volume_ratio`` (a shard's partial carries them)
    call_volume: float = 0.0
    put_volume: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "ts": format_ts(self.ts),
            "symbol": self.symbol,
            "call_premium": max(0.0, _clamp(self.call_premium, MAX_PREMIUM)),
            "put_premium": max(0.0, _clamp(self.put_premium, MAX_PREMIUM)),
            "net_premium": _clamp(self.net_premium, MAX_PREMIUM),
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


#: Bounds of the backend's wire models (docs/wire-format.md "Bounds").
MAX_VOL = 10.0
MAX_ABS_K = 10.0
MAX_GEX = 1e15  # per strike, USD
MAX_NET_GEX = 1e16
MAX_PREMIUM = 1e15  # USD


def _clamp(value: float, bound: float) -> float:
    """Finite and within +-bound: the wire is strict JSON (no NaN/inf). A non-finite
    value (only possible from data the quality screen missed) is sent as 0."""
    v = float(value)
    if not math.isfinite(v):
        return 0.0
    return max(-bound, min(bound, v))


def _within(value: float | None, lo: float, hi: float) -> float | None:
    v = _finite_or_none(value)
    return v if v is not None and lo <= v <= hi else None


def _curve(k: tuple[float, ...], iv: tuple[float, ...]) -> tuple[list[float], list[float]]:
    keep = [
        (a, b)
        for a, b in zip(k, iv, strict=True)
        if math.isfinite(a)
        and math.isfinite(b)
        and -MAX_ABS_K <= a <= MAX_ABS_K
        and 0.0 <= b <= MAX_VOL
    ]
    return [a for a, _ in keep], [b for _, b in keep]
