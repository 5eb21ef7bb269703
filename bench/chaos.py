"""Chaos suite for the safety gate (issue 8): randomized runs under an invariant watcher.

Starts its own local control plane (spy_dev.devcluster) and the operator as a
process, then executes `--runs` randomized runs drawn from `--seed`
(tests/chaos_plan.py). Each run mixes operator SIGKILL/SIGTERM and restart,
kube-apiserver stop/freeze/restart, hand scale-ups, pod-template edits, admission
refusals of the operator's writes, approval expiry, halt/resume, Secret and gateway
deletion, VPN flaps, gateway mode flips and an orphaned Deployment under a halt.
A watcher samples the cluster at 10 Hz and counts every bot Deployment (spec.replicas)
or set of running bot pods above what the gate allows (tests/gate_allowance.py) for
longer than the revert window (2 s), or, after the operator or the apiserver was down,
longer than the restart window (5 s) from its return.

Bounded: at most `--runs` runs and no new run after `--max-minutes`; every process it
starts is stopped at the end. Traffic stays on loopback.

    .venv/bin/python bench/chaos.py [--runs 100] [--seed 1] [--steps 4]

Prints one line per run on stderr, then the run count, violations (each described),
and the worst enforcement latency as one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from chaos_plane import DevClusterControl, ProcessControl  # noqa: E402
from chaos_runner import Harness, Settings, run_chaos  # noqa: E402
from k8s_support import Cluster, Kubectl  # noqa: E402
from operator_support import OperatorProcess  # noqa: E402
from spy_dev.devcluster import DevCluster  # noqa: E402
from spy_operator import constants as c  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/chaos.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--runs", type=int, default=100, help="randomized runs (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--steps", type=int, default=4, help="chaos steps per run (default 4)")
    parser.add_argument(
        "--max-minutes", type=float, default=90, help="start no new run after this (default 90)"
    )
    parser.add_argument("--pace", type=float, default=1.0, help="scale of the chaos pauses")
    parser.add_argument("--revert-window", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--restart-window", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the state directory (logs) afterwards"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.runs < 1 or args.steps < 1:
        parser.error("--runs and --steps must be at least 1")

    state_dir = Path(tempfile.mkdtemp(prefix="spy-chaos-"))
    # Volumes are recycled between runs; a margin covers namespaces still terminating.
    dev = DevCluster(state_dir / "cluster", persistent_volumes=60)
    state = dev.start()
    kubectl = Kubectl(state.kubeconfig)
    cluster = Cluster(state.kubeconfig, state, kubectl)
    # The production Lease (15 s, renew 2 s): a SIGKILLed leader's successor must not
    # depend on the short Lease the other cluster tests use.
    operator = OperatorProcess(cluster, state_dir, lease_seconds=15, renew_seconds=2)
    operator.start()
    settings = Settings(
        runs=args.runs,
        seed=args.seed,
        steps=args.steps,
        pace=args.pace,
        revert_window=args.revert_window,
        restart_window=args.restart_window,
        max_seconds=args.max_minutes * 60,
    )
    harness = Harness(
        kubeconfig=state.kubeconfig,
        operator=operator,
        operator_user=c.MANAGED_BY,
        operator_kubeconfig=state.kubeconfig_for(c.MANAGED_BY),
        plane=DevClusterControl(dev),
        log=log,
    )
    started = time.monotonic()
    try:
        summary = run_chaos(harness, settings)
    finally:
        operator.stop()
        dev.stop()
        ProcessControl.stop_started()
    _finish(summary, operator, started, state_dir, keep=args.keep)
    print(json.dumps(summary, sort_keys=True))
    return 0


def _finish(
    summary: dict[str, Any],
    operator: OperatorProcess,
    started: float,
    state_dir: Path,
    keep: bool,
) -> None:
    """Add the operator's record and the machine's load to the summary; clean up."""
    summary["operator_crashes_logged"] = operator.log_text().count("reconcile crashed")
    summary["operator_starts"] = operator.starts
    summary["load_average"] = [round(x, 2) for x in os.getloadavg()]
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    if keep:
        log(f"state and logs kept in {state_dir}")
    else:
        import shutil

        shutil.rmtree(state_dir, ignore_errors=True)
    for line in summary["violation_list"]:
        log(f"violation: {line}")


if __name__ == "__main__":
    sys.exit(main())
