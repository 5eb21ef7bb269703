"""What the bot reacts to: one anomaly or signal record as the backend publishes it.

Built by ``feed`` from realtime messages (``{"type": "anomaly"|"signal", "data": {...}}``)
and from the query API's backfill pages (docs/wire-format.md). Pure data: the strategy
and the tests use it without any I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

TYPES = ("anomaly", "signal")


class SignalError(ValueError):
    """A record the bot cannot read; the message names the field."""


@dataclass(frozen=True, slots=True)
class Signal:
    id: str
    type: str  # anomaly | signal
    ts: datetime
    symbol: str
    kind: str  # the anomaly's kind, or the signal's name
    severity: str = ""  # LOW | MEDIUM | HIGH (anomalies)
    score: float = 0.0
    expiry: date | None = None
    strike: float | None = None
    right: str = ""  # C | P
    iv: float | None = None
    fitted_iv: float | None = None
    direction: str = ""  # bullish | bearish | neutral (signals)
    strength: float = 0.0

    @property
    def rich(self) -> bool:
        """True when the option's IV is above its fitted smile (a fade sells it)."""
        if self.iv is not None and self.fitted_iv is not None:
            return self.iv > self.fitted_iv
        return self.score > 0

    def brief(self) -> dict[str, Any]:
        """The fields an audit line carries."""
        out: dict[str, Any] = {"id": self.id, "type": self.type, "kind": self.kind}
        out["ts"] = self.ts.isoformat()
        if self.type == "anomaly":
            out["severity"] = self.severity
            out["score"] = self.score
            out["contract"] = {
                "expiry": self.expiry.isoformat() if self.expiry else None,
                "strike": self.strike,
                "right": self.right,
            }
        else:
            out["direction"] = self.direction
            out["strength"] = self.strength
        return out


def from_record(type_: str, data: Mapping[str, Any]) -> Signal:
    """A wire record (anomaly or signal) -> Signal; SignalError naming the bad field."""
    if type_ not in TYPES:
        raise SignalError(f"type: expected one of {TYPES}, got {type_!r}")
    rid = _text(data, "id")
    ts = _time(data, "ts")
    symbol = str(data.get("symbol") or "SPY")
    if type_ == "signal":
        return Signal(
            id=rid,
            type=type_,
            ts=ts,
            symbol=symbol,
            kind=_text(data, "name"),
            direction=str(data.get("direction") or ""),
            strength=_number(data, "strength", 0.0),
        )
    contract = data.get("contract")
    if not isinstance(contract, Mapping):
        raise SignalError("contract: expected an object with expiry, strike, right")
    try:
        expiry = date.fromisoformat(str(contract.get("expiry")))
    except ValueError as exc:
        raise SignalError(f"contract.expiry: not a YYYY-MM-DD date ({exc})") from exc
    right = str(contract.get("right") or "")
    if right not in ("C", "P"):
        raise SignalError(f"contract.right: expected C or P, got {right!r}")
    return Signal(
        id=rid,
        type=type_,
        ts=ts,
        symbol=symbol,
        kind=_text(data, "kind"),
        severity=str(data.get("severity") or ""),
        score=_number(data, "score", 0.0),
        expiry=expiry,
        strike=_number(contract, "strike", math.nan),
        right=right,
        iv=_optional(data, "iv"),
        fitted_iv=_optional(data, "fitted_iv"),
    )


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SignalError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _time(data: Mapping[str, Any], key: str) -> datetime:
    raw = data.get(key)
    try:
        ts = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignalError(f"{key}: not an RFC 3339 time ({raw!r})") from exc
    if ts.tzinfo is None:
        raise SignalError(f"{key}: time without a zone ({raw!r})")
    return ts.astimezone(UTC)


def _number(data: Mapping[str, Any], key: str, default: float) -> float:
    value: Any = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        if value is default:
            return float(default)
        raise SignalError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _optional(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _number(data, key, 0.0)
