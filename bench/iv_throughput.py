# ruff: noqa: E402 - BLAS/OpenMP thread pools are pinned before numpy is imported
"""Implied-volatility throughput and accuracy: spy_analytics vs py_vollib vs QuantLib.

Run: .venv/bin/python bench/iv_throughput.py [--n 200000] [--subsample 20000]

Same random European options for every library (moneyness K/S 0.7-1.3, 1 day-2 years,
vol 5%-150%, rate 0-5%, dividend yield 0-2%, calls and puts), priced with
`spy_analytics.bsm_price`. Single-threaded, one process:

* spy_analytics.implied_volatility on all n options at once (best of 7 runs);
* py_vollib (Jäckel's Let's Be Rational, pure Python) on a subsample, one call per option;
* QuantLib blackFormulaImpliedStdDev (accuracy 1e-12) on the same subsample;
* iv_engine (Rust Let's Be Rational, pinned in the bench dependency group) on all n
  options at once, ``parallel=False`` (single thread), best of 7 - the anchor the
  headline ratio ``speedup_vs_iv_engine`` is measured against, in the same process;
* spy_analytics with the pre-issue-11 solver settings (two full Householder steps) on
  all n, best of 7: what the one-step solver gained, in the same process.

"Well-conditioned" options are those whose price determines the vol to 1e-10: eight
ulps of the price move the vol by at most 1e-10 (price * 8 eps / vega <= 1e-10).
Max |error| is measured on those; the NaN count on a separate set of undefined inputs
(below intrinsic, above the upper bound, NaN/inf/negative prices) must equal its size.
Thread pools are pinned to one thread; throughput is reported per wall-clock second and
per process-CPU second (the latter depends less on other load on a shared box, but a
loaded 2-core machine still slows it through caches and clocks: compare the ratios).
Machine state (load average, CPU, numpy/BLAS) is printed beside the figures.
The last line printed is one JSON object with the headline figures.
How each library is timed is iv_libraries.py.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import warnings

import numpy as np
from iv_libraries import run_iv_engine, run_ours, run_quantlib, run_two_step, run_vollib
from machine import describe, machine_state
from spy_analytics import bsm_greeks, bsm_price, implied_volatility

EPS = float(np.finfo(np.float64).eps)


def make_options(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    spot = np.full(n, 100.0)
    return {
        "spot": spot,
        "strike": spot * rng.uniform(0.7, 1.3, n),
        "t": rng.uniform(1.0 / 365.0, 2.0, n),
        "rate": rng.uniform(0.0, 0.05, n),
        "div_yield": rng.uniform(0.0, 0.02, n),
        "vol": rng.uniform(0.05, 1.5, n),
        "is_call": rng.random(n) < 0.5,
    }


def undefined_inputs(o: dict[str, np.ndarray], m: int) -> tuple[np.ndarray, ...]:
    """m options whose prices admit no implied volatility."""
    s, k, t, r, q, c = (o[x][:m] for x in ("spot", "strike", "t", "rate", "div_yield", "is_call"))
    fwd_intrinsic = np.where(
        c, s * np.exp(-q * t) - k * np.exp(-r * t), k * np.exp(-r * t) - s * np.exp(-q * t)
    )
    upper = np.where(c, s * np.exp(-q * t), k * np.exp(-r * t))
    kind = np.arange(m) % 4
    price = np.where(
        kind == 0,
        np.maximum(fwd_intrinsic, 0.0) * 0.999,  # at or below intrinsic
        np.where(kind == 1, upper * 1.001, np.where(kind == 2, np.nan, -1.0)),
    )
    return price, s, k, t, r, q, c


def accuracy(iv, o, well, practical):
    """Max |error| on well-conditioned options (and on those worth >= $1e-6), NaNs."""
    err = np.abs(iv - o["vol"])
    return {
        "max_abs_err_well_conditioned": float(np.nanmax(err[well])),
        "max_abs_err_price_ge_1e-6": float(np.nanmax(err[practical])),
        "nan_on_well_conditioned": int(np.isnan(iv[well]).sum()),
    }


def full_size(price, o, well, practical, n_undefined):
    """spy_analytics, iv_engine and the two-step solver on all n options."""
    n = price.shape[0]
    iv, secs, cpu = run_ours(price, o)
    ours = {"options_per_s": n / secs, "options_per_cpu_s": n / cpu, "seconds": secs}
    ours |= accuracy(iv, o, well, practical)
    ours["nan_on_undefined"] = int(
        np.isnan(implied_volatility(*undefined_inputs(o, n_undefined))).sum()
    )
    ie_iv, ie_secs, ie_cpu = run_iv_engine(price, o)
    anchor = {"options_per_s": n / ie_secs, "options_per_cpu_s": n / ie_cpu}
    anchor |= accuracy(ie_iv, o, well, practical)
    two_iv, two_secs, two_cpu = run_two_step(price, o)
    two_step = {
        "options_per_s": n / two_secs,
        "options_per_cpu_s": n / two_cpu,
        "max_abs_err_well_conditioned": float(np.max(np.abs(two_iv - o["vol"])[well])),
    }
    return ours, anchor, two_step, np.abs(iv - o["vol"])


def subsample(price, o, well, practical, size):
    """py_vollib and QuantLib, one call per option, on a random subsample."""
    rng = np.random.default_rng(1)
    n = price.shape[0]
    idx = np.sort(rng.choice(n, size=min(size, n), replace=False))
    sub = {k: v[idx] for k, v in o.items()}
    out = {}
    for name, run in (
        ("py_vollib_lbr", run_vollib),
        ("quantlib_blackFormulaImpliedStdDev", run_quantlib),
    ):
        values, secs = run(price, o, idx)
        out[name] = {"options_per_s": idx.size / secs} | accuracy(
            values, sub, well[idx], practical[idx]
        )
    return idx, out


def report(result):
    """Human-readable lines; the JSON object is printed last by `main`."""
    ours, anchor, two = (
        result["spy_analytics"],
        result["iv_engine"],
        result["spy_analytics_two_step"],
    )
    print(
        f"spy_analytics   {ours['options_per_s'] / 1e6:8.2f} M options/s "
        f"({ours['options_per_cpu_s'] / 1e6:.2f} per CPU s)  "
        f"max err {ours['max_abs_err_well_conditioned']:.2e}  "
        f"NaN on undefined {ours['nan_on_undefined']}/{result['undefined_inputs']}"
    )
    print(
        f"iv_engine       {anchor['options_per_s'] / 1e6:8.2f} M options/s "
        f"({anchor['options_per_cpu_s'] / 1e6:.2f} per CPU s)  "
        f"max err {anchor['max_abs_err_well_conditioned']:.2e}  "
        f"ratio {result['speedup_vs_iv_engine']:.2f}x wall, "
        f"{result['speedup_vs_iv_engine_cpu']:.2f}x CPU"
    )
    print(
        f"two-step solver {two['options_per_s'] / 1e6:8.2f} M options/s  "
        f"ratio one-step/two-step {result['speedup_vs_two_step']:.2f}x"
    )
    print(f"machine: {describe(result['machine'])}")
    for name in ("py_vollib_lbr", "quantlib_blackFormulaImpliedStdDev"):
        r = result[name]
        print(
            f"{name:16s}{r['options_per_s'] / 1e6:8.3f} M options/s  "
            f"max err {r['max_abs_err_well_conditioned']:.2e} "
            f"(price >= 1e-6: {r['max_abs_err_price_ge_1e-6']:.2e})"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--subsample", type=int, default=20_000)
    ap.add_argument("--undefined", type=int, default=20_000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    o = make_options(args.n)
    cols = (o["spot"], o["strike"], o["t"], o["rate"], o["div_yield"], o["vol"], o["is_call"])
    price = bsm_price(*cols)
    vega = bsm_greeks(*cols).vega
    with np.errstate(divide="ignore", invalid="ignore"):
        well = (price * 8 * EPS / vega <= 1e-10) & (price > 1e-250)
    # libraries that iterate to an absolute price accuracy cannot resolve prices near 0;
    # also report errors on well-conditioned options worth at least $1e-6
    practical = well & (price >= 1e-6)

    ours, anchor, two_step, err = full_size(price, o, well, practical, args.undefined)
    idx, others = subsample(price, o, well, practical, args.subsample)
    result = {
        "n": args.n,
        "well_conditioned": int(well.sum()),
        "undefined_inputs": args.undefined,
        "spy_analytics": ours,
        "spy_analytics_subsample_max_abs_err": float(np.max(err[idx][well[idx]])),
        **others,
        "subsample": int(idx.size),
        "iv_engine": anchor,
        "spy_analytics_two_step": two_step,
        "machine": machine_state(),
        "speedup_vs_iv_engine": ours["options_per_s"] / anchor["options_per_s"],
        "speedup_vs_iv_engine_cpu": ours["options_per_cpu_s"] / anchor["options_per_cpu_s"],
        "speedup_vs_two_step": ours["options_per_s"] / two_step["options_per_s"],
    }
    for name, key in (
        ("py_vollib", "py_vollib_lbr"),
        ("quantlib", "quantlib_blackFormulaImpliedStdDev"),
    ):
        result[f"speedup_vs_{name}"] = ours["options_per_s"] / others[key]["options_per_s"]
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
