# ruff: noqa: E402 - BLAS/OpenMP thread pools are pinned before numpy is imported
"""Whole analytics pipeline latency on one ~20k-contract synthetic SPY snapshot.

Run: .venv/bin/python bench/pipeline.py [--runs 100]

Builds a seeded `SyntheticMarket`, warms the per-contract baselines over a few
snapshots, then times `spy_analytics.analyze` (IV, smile fits, greeks, every rule,
GEX with the flip search, flow, baseline update) on the same snapshot ``--runs`` times,
single process, single thread (BLAS thread pools pinned to 1). Reports wall-clock and
process CPU time per call: on a shared 2-core box the CPU time is the figure that does
not depend on what else runs. Also times ``result.to_wire()``. The last line printed is
one JSON object with the headline figures, with the machine state (goal, issue 11:
p50 <= 10 ms).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import time

import numpy as np
from machine import describe, machine_state
from spy_analytics import AnomalyKind, analyze
from spy_analytics.synthetic import SyntheticMarket


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    market = SyntheticMarket(args.seed)
    state = prev = None
    for _ in range(6):
        snap = market.next_snapshot().snapshot
        result = analyze(snap, prev, state)
        state, prev = result.baseline, snap
    snap = market.next_snapshot(dict.fromkeys(AnomalyKind, 2)).snapshot

    times = []
    cpu_times = []
    wire_times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        c0 = time.process_time()
        result = analyze(snap, prev, state)
        c1 = time.process_time()
        t1 = time.perf_counter()
        result.to_wire()
        t2 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        cpu_times.append((c1 - c0) * 1e3)
        wire_times.append((t2 - t1) * 1e3)
    ms = np.array(times)
    cpu = np.array(cpu_times)
    machine = machine_state()
    load = machine["load_average"][0]
    out = {
        "contracts": len(snap),
        "runs": args.runs,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "min_ms": float(ms.min()),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        "load_average_1m": load,
        "to_wire_p50_ms": float(np.percentile(wire_times, 50)),
        "anomalies": len(result.anomalies),
        "bad_quotes": result.data_quality.total,
        "expiries": len(result.market.expiries),
        "machine": machine,
    }
    print(
        f"analyze on {out['contracts']} contracts: wall p50 {out['p50_ms']:.1f} ms, "
        f"p99 {out['p99_ms']:.1f} ms, min {out['min_ms']:.1f} ms; CPU p50 "
        f"{out['cpu_p50_ms']:.1f} ms, p99 {out['cpu_p99_ms']:.1f} ms"
    )
    print(f"machine: {describe(machine)}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
