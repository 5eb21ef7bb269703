"""Small hand-built chains and snapshot files for the detector tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from spy_analytics import ChainSnapshot, bsm_price, write_snapshot

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
EXPIRIES = ("2026-12-04", "2026-12-11", "2026-12-19", "2027-01-16")


def flat_chain(ts: datetime = T0, spot: float = 600.0, vol: float = 0.18) -> ChainSnapshot:
    """A clean chain: BSM prices at one flat vol, 1% wide spreads, modest volume."""
    strikes = np.arange(560.0, 641.0, 5.0)
    exp, k, calls = [], [], []
    for e in EXPIRIES:
        for strike in strikes:
            for is_call in (True, False):
                exp.append(e)
                k.append(strike)
                calls.append(is_call)
    expiry = np.array(exp, dtype="datetime64[D]")
    strike = np.array(k)
    is_call = np.array(calls)
    snap0 = ChainSnapshot.from_arrays(
        ts=ts,
        symbol="SPY",
        spot=spot,
        rate=0.04,
        div_yield=0.013,
        expiry=expiry,
        strike=strike,
        is_call=is_call,
        bid=strike * 0,
        ask=strike * 0,
    )
    t = snap0.time_to_expiry()
    mid = np.asarray(bsm_price(spot, strike, t, 0.04, 0.013, vol, is_call), dtype=float)
    half = np.maximum(0.01, mid * 0.005)
    return ChainSnapshot.from_arrays(
        ts=ts,
        symbol="SPY",
        spot=spot,
        rate=0.04,
        div_yield=0.013,
        expiry=expiry,
        strike=strike,
        is_call=is_call,
        bid=np.round(mid - half, 2),
        ask=np.round(mid + half, 2),
        last=np.round(mid, 2),
        volume=np.full(len(strike), 50.0),
        open_interest=np.full(len(strike), 2000.0),
        quote_ts=np.full(len(strike), ts.timestamp()),
    )


def write_recording(path: Path, snapshots: list[ChainSnapshot]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for snap in snapshots:
            write_snapshot(fh, snap)
    return path


def recording(path: Path, n: int = 3, step: timedelta = timedelta(seconds=30)) -> Path:
    return write_recording(path, [flat_chain(T0 + i * step) for i in range(n)])
