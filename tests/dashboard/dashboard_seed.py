"""Realistic SPY data for the dashboard tests, in the wire format (docs/wire-format.md):
one market state with three expiries (skewed smiles, fits), GEX by strike with a flip,
half an hour of premium flow, and a few anomalies on the nearest expiry."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

SPOT = 600.12


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def smile_iv(k: float, t: float) -> float:
    """A skewed smile: higher IV for low strikes, flattening with maturity."""
    return 0.16 + 0.02 / math.sqrt(t * 12) - 0.35 * k + 1.6 * k * k


@dataclass
class Seed:
    now: datetime
    expiries: list[str]
    market: dict[str, Any]
    gex: dict[str, Any]
    flow: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]

    def batch(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "market": [self.market],
            "gex": [self.gex],
            "flow": self.flow,
            "anomalies": self.anomalies,
        }


def anomaly(
    when: datetime,
    expiry: str,
    strike: float,
    right: str,
    *,
    kind: str = "iv_residual",
    severity: str = "HIGH",
    iv_bump: float = 0.04,
    t: float = 0.066,
    reason: str | None = None,
) -> dict[str, Any]:
    k = math.log(strike / SPOT)
    fitted = smile_iv(k, t)
    iv = fitted + iv_bump
    return {
        "id": record_id(kind, "SPY", expiry, f"{strike:.2f}", right, ts(when)),
        "ts": ts(when),
        "symbol": "SPY",
        "kind": kind,
        "severity": severity,
        "score": round(iv_bump / 0.01, 2),
        "reason": reason
        or f"IV {iv:.1%} is {iv_bump / 0.01:.1f} sigma above the fitted smile ({fitted:.1%})",
        "contract": {"expiry": expiry, "strike": strike, "right": right},
        "iv": round(iv, 5),
        "fitted_iv": round(fitted, 5),
        "k": round(k, 6),
    }


def smile(expiry: date, today: date) -> dict[str, Any]:
    """One expiry of the market state: a wiggly smile of quotes and its fit."""
    t = (expiry - today).days / 365
    ks = [round(-0.16 + 0.01 * i, 4) for i in range(25)]
    wiggle = [0.004 * math.sin(7 * i) for i in range(len(ks))]
    return {
        "expiry": expiry.isoformat(),
        "t": round(t, 5),
        "atm_iv": round(smile_iv(0.0, t), 5),
        "points": {
            "k": ks,
            "iv": [round(smile_iv(k, t) + w, 5) for k, w in zip(ks, wiggle, strict=True)],
        },
        "fit": {"k": ks, "iv": [round(smile_iv(k, t), 5) for k in ks]},
    }


def gex_state(now: datetime) -> dict[str, Any]:
    strikes = [float(s) for s in range(570, 635, 5)]
    # Dealers short gamma below ~596, long above: the flip sits between.
    gex = [
        round(2.4e8 * math.tanh((s - 596.5) / 12) * math.exp(-(((s - 602) / 25) ** 2)), 0)
        for s in strikes
    ]
    return {
        "ts": ts(now),
        "symbol": "SPY",
        "spot": SPOT,
        "strikes": strikes,
        "gex": gex,
        "net_gex": round(sum(gex), 0),
        "flip": 596.5,
    }


def flow_intervals(now: datetime) -> list[dict[str, Any]]:
    """The last half hour, one record a minute."""
    flow = []
    for i in range(30):
        # per interval, as the detector sends it: gross premium of each right, and the
        # signed net (bought minus sold; calls +, puts -), which is not calls - puts
        calls = 4.0e4 + 1.5e4 * math.sin(i / 3)
        puts = 3.2e4 + 1.2e4 * math.cos(i / 4)
        flow.append(
            {
                "ts": ts(now - timedelta(minutes=29 - i)),
                "symbol": "SPY",
                "call_premium": round(calls, 2),
                "put_premium": round(puts, 2),
                "net_premium": round(0.3 * calls - 0.2 * puts, 2),
                "put_call_volume_ratio": round(0.8 + 0.1 * math.sin(i / 5), 3),
            }
        )
    return flow


def recent_anomalies(now: datetime, expiries: list[date]) -> list[dict[str, Any]]:
    near = expiries[0].isoformat()
    return [
        anomaly(now - timedelta(minutes=12), near, 575.0, "P", severity="MEDIUM", iv_bump=0.025),
        anomaly(
            now - timedelta(minutes=7),
            near,
            630.0,
            "C",
            severity="LOW",
            iv_bump=-0.02,
            reason="IV 2.0 sigma below the fitted smile",
        ),
        anomaly(
            now - timedelta(minutes=3),
            expiries[1].isoformat(),
            590.0,
            "P",
            kind="vol_oi",
            severity="HIGH",
            iv_bump=0.0,
            t=0.142,
            reason="Volume 18,400 is 6.1x open interest (3,020)",
        ),
    ]


def build(now: datetime | None = None) -> Seed:
    now = now or datetime.now(UTC)
    today = now.date()
    expiries = [today + timedelta(days=d) for d in (24, 52, 115)]
    smiles = [smile(exp, today) for exp in expiries]
    market = {"ts": ts(now), "symbol": "SPY", "spot": SPOT, "bad_quotes": 2, "expiries": smiles}
    return Seed(
        now,
        [e.isoformat() for e in expiries],
        market,
        gex_state(now),
        flow_intervals(now),
        recent_anomalies(now, expiries),
    )
