"""Record a synthetic SPY session to a JSONL snapshot file (with ground-truth labels).

Who calls this: people and demos that want a chain file for the detector's ``scan`` CLI
or its replay source::

    python -m spy_analytics.record session.jsonl --seed 1 --steps 30 --inject-every 10

Writes ``--steps`` snapshots (schema in docs/analytics.md); every ``--inject-every``-th
snapshot carries ``--per-kind`` injected anomalies of every kind, followed by their
``{"type": "label", ...}`` lines (ignored by `read_snapshots`).
"""

from __future__ import annotations

import argparse
import sys

from .snapshot_io import write_snapshot
from .synthetic import SyntheticMarket
from .types import AnomalyKind


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spy_analytics.record", description=__doc__)
    ap.add_argument("out", help="output .jsonl path, or - for stdout")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--inject-every", type=int, default=0, help="0: never inject")
    ap.add_argument("--per-kind", type=int, default=1)
    args = ap.parse_args(argv)
    market = SyntheticMarket(args.seed)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for step in range(1, args.steps + 1):
            inject = None
            if args.inject_every and step % args.inject_every == 0:
                inject = dict.fromkeys(AnomalyKind, args.per_kind)
            snap = market.next_snapshot(inject)
            write_snapshot(out, snap.snapshot, [label.to_json() for label in snap.labels])
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
