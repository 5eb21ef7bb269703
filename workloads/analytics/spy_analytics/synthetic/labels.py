"""Ground truth of injected anomalies: the documented magnitude of each kind
(`MAGNITUDES`, docs/analytics.md) and the `InjectedAnomaly` label.

Who calls this: `.injection` (which places the anomalies) and, through the package,
the detector's synthetic source and bench/detection_quality.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..types import AnomalyKind

#: The documented magnitude of every injected anomaly kind.
MAGNITUDES: dict[AnomalyKind, str] = {
    AnomalyKind.IV_RESIDUAL: "mid IV moved by +/-8 vol points on an OTM contract whose "
    "bid/ask IV half-width is <= 0.3 vol points; quote re-centred, spread kept",
    AnomalyKind.VOL_OI: "session volume set to 6x open interest (OI >= 200, mid >= $0.50, "
    "DTE >= 2)",
    AnomalyKind.VOLUME_Z: "one snapshot's traded volume = lambda + 20 sqrt(lambda + 1) + 200 "
    "(lambda = expected volume per snapshot; contract worth >= $0.20)",
    AnomalyKind.PARITY: "in-the-money leg re-quoted so the American put-call bound is broken "
    "by $0.40 at bid/ask (DTE <= 10)",
    AnomalyKind.EARLY_EXERCISE: "ask set $0.40 below the exercise value (intrinsic >= $2)",
    AnomalyKind.CALL_SPREAD: "one leg of an adjacent-strike vertical re-quoted so the "
    "spread is non-monotone by $0.40 at bid/ask",
    AnomalyKind.BUTTERFLY: "body of a consecutive-strike butterfly re-quoted so "
    "bid(K2) exceeds w1 ask(K1) + w3 ask(K3) by $0.40",
    AnomalyKind.CALENDAR: "later expiry re-quoted so ask(T2) is $0.40 below bid(T1), "
    "same strike and right",
    AnomalyKind.SPREAD_BLOWOUT: "bid-ask spread widened to max(10x its normal spread, "
    "normal + $0.50) around the same mid",
}
BREAK_USD = 0.40


@dataclass(frozen=True)
class InjectedAnomaly:
    """Ground truth: the contract that was made anomalous, by what kind and how much."""

    kind: AnomalyKind
    expiry: str
    strike: float
    right: str
    magnitude: str

    def to_json(self) -> dict[str, object]:
        return {
            "type": "label",
            "kind": self.kind.value,
            "expiry": self.expiry,
            "strike": self.strike,
            "right": self.right,
            "magnitude": self.magnitude,
        }
