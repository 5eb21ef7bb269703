"""Detection quality on the synthetic market: precision/recall per kind, clean-chain FPs.

Run: .venv/bin/python bench/detection_quality.py [--seeds 50] [--per-kind 2]
                                                  [--sweep-seeds 10]

For each seed: a `SyntheticMarket` runs ``--warmup`` clean snapshots through
`spy_analytics.analyze` (baselines warm up; every one of them is a clean chain and is
scored for false positives), then one snapshot with ``--per-kind`` injected anomalies
of every kind at the documented magnitude (`spy_analytics.synthetic.MAGNITUDES`).
A sweep then repeats the injection at 0.5x, 0.25x and 0.1x the documented magnitude
(``--sweep-seeds`` seeds each) to show where recall falls off.

Matching: a label is *recalled* when an anomaly of the same kind is reported on the
labelled contract (expiry, strike, right). A reported anomaly is a *true positive* when
its contract carries any label in that snapshot (an injected quote that also breaks,
say, a butterfly is a genuine butterfly break, not a false alarm); otherwise it is a
false positive. Goals (issue 3): recall >= 0.95 per kind, HIGH precision >= 0.95, zero
HIGH false positives on 50 clean chains. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from spy_analytics import AnomalyKind, Severity, analyze
from spy_analytics.synthetic import SyntheticConfig, SyntheticMarket


def evaluate(seeds: int, per_kind: int, warmup: int, scale: float) -> dict[str, Any]:
    cfg = SyntheticConfig(magnitude_scale=scale)
    labels_by_kind: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    reported: Counter[str] = Counter()
    true_pos: Counter[str] = Counter()
    high_reported = high_true = 0
    clean_chains = 0
    clean_fp: Counter[str] = Counter()
    clean_high_fp = 0
    clean_high_fp_last = 0  # on the last clean chain of each seed (50 chains at 50 seeds)

    for seed in range(seeds):
        market = SyntheticMarket(1000 + seed, cfg)
        state = prev = None
        for step in range(warmup):
            snap = market.next_snapshot().snapshot
            result = analyze(snap, prev, state)
            state, prev = result.baseline, snap
            clean_chains += 1
            for a in result.anomalies:
                clean_fp[a.kind.value] += 1
                if a.severity is Severity.HIGH:
                    clean_high_fp += 1
                    clean_high_fp_last += step == warmup - 1
        injected = market.next_snapshot(dict.fromkeys(AnomalyKind, per_kind))
        result = analyze(injected.snapshot, prev, state)
        labelled = {(lab.expiry, lab.strike, lab.right) for lab in injected.labels}
        found = {
            (a.kind.value, a.contract.expiry, a.contract.strike, a.contract.right)
            for a in result.anomalies
        }
        for lab in injected.labels:
            labels_by_kind[lab.kind.value] += 1
            recalled[lab.kind.value] += (lab.kind.value, lab.expiry, lab.strike, lab.right) in found
        for a in result.anomalies:
            key = (a.contract.expiry, a.contract.strike, a.contract.right)
            reported[a.kind.value] += 1
            true_pos[a.kind.value] += key in labelled
            if a.severity is Severity.HIGH:
                high_reported += 1
                high_true += key in labelled

    kinds: dict[str, dict[str, Any]] = {}
    for kind in AnomalyKind:
        k = kind.value
        kinds[k] = {
            "labels": labels_by_kind[k],
            "recall": recalled[k] / labels_by_kind[k] if labels_by_kind[k] else None,
            "reported": reported[k],
            "precision": true_pos[k] / reported[k] if reported[k] else None,
            "clean_fp_any_severity": clean_fp[k],
        }
    return {
        "seeds": seeds,
        "per_kind_injected_per_seed": per_kind,
        "magnitude_scale": scale,
        "per_kind": kinds,
        "min_recall": min(v["recall"] for v in kinds.values() if v["recall"] is not None),
        "high_precision": high_true / high_reported if high_reported else None,
        "high_reported": high_reported,
        "clean_chains": clean_chains,
        "clean_high_fp": clean_high_fp,
        "clean_high_fp_on_last_chain_per_seed": clean_high_fp_last,
    }


def report(out: dict[str, Any]) -> None:
    print(
        f"{'kind':16s} {'labels':>6s} {'recall':>7s} {'reported':>8s} {'precision':>9s} "
        f"{'clean FP':>8s}"
    )
    for k, v in out["per_kind"].items():
        rec = f"{v['recall']:.3f}" if v["recall"] is not None else "-"
        prec = f"{v['precision']:.3f}" if v["precision"] is not None else "-"
        print(
            f"{k:16s} {v['labels']:6d} {rec:>7s} {v['reported']:8d} {prec:>9s} "
            f"{v['clean_fp_any_severity']:8d}"
        )
    print(
        f"HIGH precision {out['high_precision']}; HIGH false positives on "
        f"{out['clean_chains']} clean chains: {out['clean_high_fp']}"
    )
    for scale, recalls in out["recall_vs_magnitude_scale"].items():
        text = " ".join(f"{k}={v:.2f}" for k, v in recalls.items())
        print(f"recall at {scale}x documented magnitude: {text}")
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--per-kind", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=7)
    ap.add_argument(
        "--sweep-seeds",
        type=int,
        default=10,
        help="seeds per point of the recall-vs-magnitude sweep (0: no sweep)",
    )
    args = ap.parse_args()
    t_start = time.perf_counter()
    out = evaluate(args.seeds, args.per_kind, args.warmup, 1.0)
    sweep = {}
    if args.sweep_seeds:
        for scale in (0.5, 0.25, 0.1):
            res = evaluate(args.sweep_seeds, args.per_kind, args.warmup, scale)
            sweep[str(scale)] = {k: v["recall"] for k, v in res["per_kind"].items()}
    out["recall_vs_magnitude_scale"] = sweep
    out["seconds"] = time.perf_counter() - t_start
    report(out)


if __name__ == "__main__":
    main()
