"""How bench/iv_throughput.py (its only user) times each implied-volatility library on
the same options: spy_analytics (and its pre-issue-11 two-step settings) and iv_engine
on every option at once, py_vollib and QuantLib one call per option on a subsample.
Each returns the vols and the best wall-clock (and, for the array ones, CPU) seconds.

Imported after iv_throughput.py pins the BLAS/OpenMP thread pools to one thread.
"""

from __future__ import annotations

import math
import time

import numpy as np
import spy_analytics.iv as iv_module
from spy_analytics import implied_volatility


def run_ours(price, o, repeats=7):
    """Best wall-clock and best process-CPU time over ``repeats`` full-array calls."""
    args = (o["spot"], o["strike"], o["t"], o["rate"], o["div_yield"], o["is_call"])
    implied_volatility(price[:1000], *(a[:1000] for a in args))  # build the guess table
    best = best_cpu = math.inf
    iv = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        c0 = time.process_time()
        iv = implied_volatility(price, *args)
        best_cpu = min(best_cpu, time.process_time() - c0)
        best = min(best, time.perf_counter() - t0)
    return iv, best, best_cpu


def run_iv_engine(price, o, repeats=7):
    """iv_engine's Black inversion on undiscounted forward prices, calls and puts in
    two batches (its ``is_call`` is one flag per call), single thread."""
    import iv_engine

    t = o["t"]
    fwd = o["spot"] * np.exp((o["rate"] - o["div_yield"]) * t)
    undisc = price * np.exp(o["rate"] * t)
    calls = o["is_call"]
    parts = [np.flatnonzero(calls), np.flatnonzero(~calls)]
    args = [
        (undisc[j], fwd[j], o["strike"][j], t[j], bool(flag))
        for j, flag in zip(parts, (True, False), strict=True)
    ]
    out = np.full(price.shape, np.nan)
    best = best_cpu = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        c0 = time.process_time()
        res = [iv_engine.implied_volatilities(*a, parallel=False) for a in args]
        best_cpu = min(best_cpu, time.process_time() - c0)
        best = min(best, time.perf_counter() - t0)
    for j, r in zip(parts, res, strict=True):
        out[j] = np.asarray(r, dtype=np.float64)
    return out, best, best_cpu


def run_two_step(price, o, repeats=7):
    """This solver with its pre-issue-11 settings: two full steps, tight acceptance."""
    saved = iv_module._FULL_STEPS, iv_module._ACCEPT_STEP
    iv_module._FULL_STEPS, iv_module._ACCEPT_STEP = 2, 1e-5
    try:
        return run_ours(price, o, repeats)
    finally:
        iv_module._FULL_STEPS, iv_module._ACCEPT_STEP = saved


def run_vollib(price, o, idx):
    from py_vollib.black_scholes_merton.implied_volatility import implied_volatility as lbr

    out = np.full(idx.size, np.nan)
    t0 = time.perf_counter()
    for j, i in enumerate(idx):
        try:
            out[j] = lbr(
                float(price[i]),
                float(o["spot"][i]),
                float(o["strike"][i]),
                float(o["t"][i]),
                float(o["rate"][i]),
                float(o["div_yield"][i]),
                "c" if o["is_call"][i] else "p",
            )
        # vollib raises (several exception types) on any input without a vol: count as NaN
        except Exception:
            out[j] = np.nan
    return out, time.perf_counter() - t0


def run_quantlib(price, o, idx):
    import QuantLib as ql  # noqa: N813 - QuantLib's documented alias

    out = np.full(idx.size, np.nan)
    t0 = time.perf_counter()
    for j, i in enumerate(idx):
        t = float(o["t"][i])
        fwd = float(o["spot"][i] * math.exp((o["rate"][i] - o["div_yield"][i]) * t))
        disc = math.exp(-float(o["rate"][i]) * t)
        kind = ql.Option.Call if o["is_call"][i] else ql.Option.Put
        try:
            sd = ql.blackFormulaImpliedStdDev(
                kind,
                float(o["strike"][i]),
                fwd,
                float(price[i]),
                disc,
                0.0,
                0.3 * math.sqrt(t),
                1e-12,
                200,
            )
            out[j] = sd / math.sqrt(t)
        except RuntimeError:  # QuantLib signals failure to bracket/converge this way
            out[j] = np.nan
    return out, time.perf_counter() - t0
