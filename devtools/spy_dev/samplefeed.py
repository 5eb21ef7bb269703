"""A seeded synthetic sample feed (until the detector publishes): ingest batches with a
plausible SPY chain summary — smiles with skew, GEX by strike, premium flow — and a few
labelled anomalies. Used by `devserver --seed`, tests and benchmarks.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from spy_backend.models.anomaly import AnomalyKind

EXPIRY_DAYS = (7, 24, 52)


def _smile(atm: float, k: float) -> float:
    """A skewed smile: higher IV for puts (k < 0), a mild convexity."""
    return max(0.05, atm - 0.35 * k + 1.8 * k * k)


def sample_batch(
    now: datetime, rng: random.Random, spot: float = 600.0, anomalies: int = 2
) -> dict[str, Any]:
    """One ingest body (JSON-ready dict) for snapshot time `now`."""
    ts = now.isoformat().replace("+00:00", "Z")
    expiries = []
    for days in EXPIRY_DAYS:
        expiry = (now.date() + timedelta(days=days)).isoformat()
        t = days / 365.0
        atm = 0.14 + 0.02 * math.sqrt(t)
        ks = [round(-0.15 + 0.01 * i, 4) for i in range(31)]
        points = [_smile(atm, k) + rng.gauss(0, 0.002) for k in ks]
        expiries.append(
            {
                "expiry": expiry,
                "t": round(t, 5),
                "atm_iv": round(atm, 5),
                "points": {"k": ks, "iv": [round(v, 5) for v in points]},
                "fit": {"k": ks, "iv": [round(_smile(atm, k), 5) for k in ks]},
            }
        )
    strikes = [float(s) for s in range(int(spot) - 30, int(spot) + 31, 5)]
    gex = [
        round(2e8 * math.tanh((s - spot + 4) / 12) * math.exp(-abs(s - spot) / 30)) for s in strikes
    ]
    call_p, put_p = rng.uniform(5e5, 2e6), rng.uniform(5e5, 2e6)
    market = {"ts": ts, "symbol": "SPY", "spot": spot, "bad_quotes": rng.randint(0, 5)}
    market["expiries"] = expiries
    flip = spot - 4
    gex_row = {"ts": ts, "symbol": "SPY", "spot": spot, "strikes": strikes, "gex": gex}
    gex_row.update(net_gex=float(sum(gex)), flip=flip)
    flow = {
        "ts": ts,
        "symbol": "SPY",
        "call_premium": round(call_p),
        "put_premium": round(put_p),
        "net_premium": round(call_p - put_p),
        "put_call_volume_ratio": round(rng.uniform(0.6, 1.4), 3),
    }
    batch: dict[str, Any] = {
        "market": [market],
        "gex": [gex_row],
        "flow": [flow],
        "anomalies": [sample_anomaly(now, rng, spot, expiries) for _ in range(anomalies)],
    }
    return batch


def sample_anomaly(
    now: datetime,
    rng: random.Random,
    spot: float = 600.0,
    expiries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One iv_residual (or other kind) anomaly with a human-readable reason."""
    days = rng.choice(EXPIRY_DAYS)
    expiry = (
        rng.choice(expiries)["expiry"]
        if expiries
        else (now.date() + timedelta(days=days)).isoformat()
    )
    strike = float(round(spot / 5) * 5 + 5 * rng.randint(-6, 6))
    k = math.log(strike / spot)
    fitted = _smile(0.15, k)
    score = round(rng.uniform(2.5, 6.0), 2)
    iv = fitted + 0.01 * score
    severity = "HIGH" if score > 4.5 else "MEDIUM" if score > 3.5 else "LOW"
    kind = rng.choice([AnomalyKind.IV_RESIDUAL] * 4 + [AnomalyKind.VOL_OI, AnomalyKind.PARITY])
    right = rng.choice("CP")
    return {
        "ts": now.isoformat().replace("+00:00", "Z"),
        "symbol": "SPY",
        "kind": kind.value,
        "severity": severity,
        "score": score,
        "reason": f"IV {iv:.1%} is {score} sigma above the fitted smile ({fitted:.1%})",
        "contract": {"expiry": expiry, "strike": strike, "right": right},
        "iv": round(iv, 5),
        "fitted_iv": round(fitted, 5),
        "k": round(k, 5),
    }
