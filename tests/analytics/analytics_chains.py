"""Small hand-built chains for rule tests (two expiries, $1 strikes 90-110, spot 100)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from spy_analytics import ChainSnapshot, bsm_price
from spy_analytics.american import early_exercise_premium

TS = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SPOT = 100.0
RATE = 0.04
DIV = 0.01
EXPIRIES = ("2026-12-24", "2027-01-22")
HALF = 0.05


def smile_vol(strike, t):
    k = np.log(strike / SPOT)
    return 0.22 - 0.3 * k + 1.5 * k * k + 0.0 * t


def clean_chain(ts: datetime = TS, volume: float = 50.0) -> ChainSnapshot:
    strikes = np.arange(90.0, 111.0)
    exp, ks, calls = [], [], []
    for e in EXPIRIES:
        for c in (False, True):
            exp += [e] * strikes.size
            ks += strikes.tolist()
            calls += [c] * strikes.size
    exp_a = np.array(exp, dtype="datetime64[D]")
    k = np.array(ks)
    c = np.array(calls)
    t = (exp_a.astype("datetime64[s]").astype(np.int64) + 20 * 3600 - ts.timestamp()) / (
        365 * 86400
    )
    price = bsm_price(SPOT, k, t, RATE, DIV, smile_vol(k, t), c)
    # American puts: plus their early-exercise premium (SPY options are American)
    fwd = SPOT * np.exp((RATE - DIV) * t)
    nan = np.full(n_all := k.size, np.nan)
    eep = early_exercise_premium(fwd, k, t, RATE, smile_vol(k, t), c, nan, nan)
    price = price + np.nan_to_num(eep[:n_all])
    price = np.maximum(price, np.maximum(np.where(c, SPOT - k, k - SPOT), 0.0))
    bid = np.floor((price - HALF) * 100) / 100
    ask = np.ceil((price + HALF) * 100) / 100
    n = k.size
    return ChainSnapshot.from_arrays(
        ts=ts,
        symbol="SPY",
        spot=SPOT,
        rate=RATE,
        div_yield=DIV,
        expiry=exp_a,
        strike=k,
        is_call=c,
        bid=np.maximum(bid, 0.01),
        ask=ask,
        last=0.5 * (bid + ask),
        volume=np.full(n, volume),
        open_interest=np.full(n, 1000.0),
        quote_ts=np.full(n, ts.timestamp() - 1.0),
        # the underlying's ticks cover the quotes' times: the spot each was priced off is
        # known (without them the bounds widen by the possible spot move, test_synchrony)
        spot_history=([ts.timestamp() - 30.0, ts.timestamp()], [SPOT, SPOT]),
    )


def row(snap: ChainSnapshot, expiry: str, strike: float, right: str) -> int:
    hit = np.flatnonzero(
        (snap.expiry == np.datetime64(expiry))
        & (snap.strike == strike)
        & (snap.is_call == (right == "C"))
    )
    return int(hit[0])


def later(ts: datetime, minutes: int) -> datetime:
    return ts + timedelta(minutes=minutes)
