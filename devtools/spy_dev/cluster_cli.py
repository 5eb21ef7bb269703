"""`python -m spy_dev.devcluster up|down|status` (`make cluster`, `make cluster-down`):
start the local control plane detached and print how to use it, stop it, or say
whether it runs. The cluster itself is spy_dev.devcluster.DevCluster.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from spy_dev.clusterstate import (
    ADMISSION_DIR,
    DEFAULT_BIN,
    OPERATOR_USERS,
    REPO_ROOT,
    ClusterState,
    running,
)
from spy_dev.devcluster import DevCluster
from spy_dev.processes import ClusterError, log, stop_pids


def _usage(state: ClusterState) -> str:
    return (
        f"\nLocal control plane is up at {state.server}\n"
        f"  export KUBECONFIG={state.kubeconfig}\n"
        f"  {DEFAULT_BIN / 'kubectl'} get nodes\n"
        f"  kubeconfigs per user: {Path(state.state_dir)}/kubeconfig-{{admin,alice,bob}}\n"
        f"  bot-guard admission policies: {ADMISSION_DIR} (exempt: {', '.join(OPERATOR_USERS)})\n"
        f"  stop it with: make cluster-down\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.devcluster",
        description="Start or stop the local control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok) built in .bin/.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".local",
        help="where certificates, logs, etcd data and the kubeconfig live",
    )
    parser.add_argument("--nodes", type=int, default=2, help="simulated KWOK nodes")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    current = running(state_dir)
    if args.command == "status":
        print("running" if current else "stopped")
        return 0 if current else 1
    if args.command == "down":
        state = ClusterState.load(state_dir)
        if state is None:
            log("no cluster recorded in " + str(state_dir))
            return 0
        stop_pids(state.pids)
        (state_dir / "cluster.json").unlink(missing_ok=True)
        log("stopped")
        return 0
    if current is not None:
        log("already running")
        print(_usage(current))
        return 0
    stale = ClusterState.load(state_dir)
    if stale is not None:
        stop_pids(stale.pids)
    for sub in ("etcd-data",):
        target = state_dir / sub
        if target.exists():
            subprocess.run(["rm", "-rf", str(target)], check=True)
    try:
        state = DevCluster(state_dir, nodes=args.nodes, detach=True).start()
    except ClusterError as err:
        log(f"failed: {err}")
        return 1
    print(_usage(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
