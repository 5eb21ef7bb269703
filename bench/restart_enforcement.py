"""How soon a restarted operator enforces the gate after a SIGKILL (issue 8: <= 5 s).

On a private local control plane (with the approval webhook and the bot-guard
admission policies), one paper gateway and two bots: `idle` (disarmed) and `expiring`
(armed, approval expiring in a few seconds). Each run:

1. an operator with the production Lease (15 s, renew 2 s) becomes leader, then is
   SIGKILLed (its Lease stays held by a dead process);
2. while it is down, `idle` is scaled to 2 by hand (admission bindings lifted for the
   write, as a careless admin with the policies off would) and `expiring`'s approval
   runs out;
3. a new operator process is started; the clock runs from its `Popen` until both
   Deployments are at spec.replicas 0 (polled every 20 ms).

It also reports, per run, when the new process logged that its caches were synced,
so the figure splits into start-up (interpreter, imports, list+watch) and enforcement.

    .venv/bin/python bench/restart_enforcement.py [--runs 5]

Prints one line per run on stderr and the headline (medians) as one JSON object on
the last line of stdout. Loopback only; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from k8s_support import Cluster, Kubectl, wait_for  # noqa: E402
from operator_support import (  # noqa: E402
    OperatorProcess,
    admission_suspended,
    bot,
    deployment_replicas,
    paper_world,
    wait_bot,
)
from spy_dev.devcluster import DevCluster  # noqa: E402
from spy_dev.webhook import WebhookProcess  # noqa: E402

NS = "restart-bench"
EXPIRES_IN = 6.0


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def enforced(kubectl: Kubectl) -> bool:
    return (
        deployment_replicas(kubectl, NS, "idle") == 0
        and deployment_replicas(kubectl, NS, "expiring") == 0
    )


def one_run(cluster: Cluster, kubectl: Kubectl, logs: Path, i: int) -> dict[str, Any]:
    kubectl.apply(bot("idle", armed=False), NS)
    first = OperatorProcess(cluster, logs / f"a{i}", lease_seconds=15, renew_seconds=2)
    second = OperatorProcess(cluster, logs / f"b{i}", lease_seconds=15, renew_seconds=2)
    for p in (first, second):
        p.log_dir.mkdir(parents=True)
    try:
        first.start()
        wait_for("the first operator leads", lambda: "became leader" in first.log_text(), 60)
        wait_bot(kubectl, NS, "idle", 0, "NotArmed", timeout=60)
        # Created only now, so its approval runs out while the operator is down.
        expires_at = time.monotonic() + EXPIRES_IN
        kubectl.apply(bot("expiring", expires_in=EXPIRES_IN), NS)
        wait_bot(kubectl, NS, "expiring", 1, "Armed", timeout=60)
        first.kill()
        with admission_suspended(kubectl):
            kubectl("-n", NS, "scale", "deployment/idle-bot", "--replicas=2")
        wait_for("the hand scale-up", lambda: deployment_replicas(kubectl, NS, "idle") == 2, 10)
        # The approval must run out while nobody watches: wall-clock time, not a condition.
        time.sleep(max(0.0, expires_at - time.monotonic()) + 0.5)
        t0 = time.monotonic()
        second.start()
        synced_at = None
        while not enforced(kubectl):
            if synced_at is None and "caches synced" in second.log_text():
                synced_at = time.monotonic() - t0
            if time.monotonic() - t0 > 60:
                raise RuntimeError("not enforced within 60 s of the restart")
            time.sleep(0.02)
        took = time.monotonic() - t0
        if synced_at is None and "caches synced" in second.log_text():
            synced_at = took
        return {
            "enforced_s": round(took, 3),
            "synced_s": None if synced_at is None else round(synced_at, 3),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        first.kill()
        second.stop()
        kubectl("-n", NS, "delete", "tradingbot", "idle", "expiring", "--wait=true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/restart_enforcement.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--runs", type=int, default=5, help="SIGKILL-restart cycles (default 5)")
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    dev = DevCluster(state_dir / "cluster")
    state = dev.start()
    hook = WebhookProcess(state, state_dir).start()
    kubectl = Kubectl(state.kubeconfig)
    cluster = Cluster(state.kubeconfig, state, kubectl)
    rows = []
    try:
        kubectl("create", "namespace", NS)
        (state_dir / "setup").mkdir()
        setup = OperatorProcess(cluster, state_dir / "setup")
        setup.start()
        try:
            paper_world(kubectl, NS)  # the operator builds the gateway it waits for
        finally:
            setup.stop()  # a clean stop hands the Lease over
        for i in range(args.runs):
            row = one_run(cluster, kubectl, state_dir, i)
            log(f"run {i + 1}/{args.runs}: {row}")
            rows.append(row)
    finally:
        hook.stop()
        dev.stop()
    synced = [r["synced_s"] for r in rows if r["synced_s"] is not None]
    headline = {
        "benchmark": "restart_enforcement",
        "runs": len(rows),
        "enforced_s_median": statistics.median(r["enforced_s"] for r in rows),
        "enforced_s_max": max(r["enforced_s"] for r in rows),
        "synced_s_median": statistics.median(synced) if synced else None,
        "load_avg_1m": [r["load_avg_1m"] for r in rows],
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "goal": {"enforced_s": "<= 5"},
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
