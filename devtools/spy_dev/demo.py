"""`make demo`: the whole platform on this machine, in the background, and proof it works.

Starts (or reuses) the local control plane, the operator, the example CRs, the backend
with Azurite, the local realtime hub and the dashboard, and a detector on the
synthetic SPY feed publishing to the backend, and the paper bot against a fake IB Gateway
(spy_dev.demo_bot runs it while the gate gives its Deployment a replica); waits until
signals arrive; prints the cluster's view and the commands to approve, arm and halt.
`make demo-down` stops it. Processes and logs live in the state dir (.local/); pids in
.local/demo.json; the bot's audit log in .local/bot-audit/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from spy_operator import constants as c

from spy_dev import demo_bot
from spy_dev import demo_stages as stages
from spy_dev.demo_support import PY, DemoError, alive, kubectl, say
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT, running


def up(state_dir: Path, backend_port: int) -> int:
    """Start (or reuse) every part, one stage at a time, record the pids, show the result."""
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    record_path = state_dir / "demo.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if all(alive(p) for p in record["pids"].values()):
            say("already running")
            show(state_dir, record)
            return 0
        down(state_dir, keep_cluster=True)

    state = stages.ensure_cluster(state_dir)
    pids: dict[str, int] = {}
    pids["operator"], metrics_port = stages.start_operator(state_dir, state)
    stages.apply_examples(state)
    pids["backend"], url = stages.start_backend(state_dir, backend_port)
    pids["detector"], detector_port = stages.start_detector(state_dir, url)
    pids.update(stages.start_paper_bot(state_dir, state, url))
    record = {
        "pids": pids,
        "url": url,
        "metrics_port": metrics_port,
        "detector_port": detector_port,
        "kubeconfig": str(state.kubeconfig),
        "audit_file": str(demo_bot.audit_path(state_dir, *stages.DEMO_BOT)),
    }
    (state_dir / "demo.json").write_text(json.dumps(record, indent=2))
    stages.wait_for_signals(state_dir, state, url)
    show(state_dir, record)
    return 0


def orders(state_dir: Path, follow: bool) -> int:
    """Print the paper orders in the demo bot's audit log (and new ones, with follow)."""
    path = demo_bot.audit_path(state_dir, *stages.DEMO_BOT)
    print(f"audit log: {path}", flush=True)
    offset = 0
    while True:
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            offset += end
            for raw in data[:end].splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(raw)
                    if record.get("event") == "order":
                        print(demo_bot.order_line(record), flush=True)
        if not follow:
            return 0
        time.sleep(0.5)


def show(state_dir: Path, record: dict[str, Any]) -> None:
    state = running(state_dir)
    if state is None:
        raise DemoError("the control plane is not running")
    kc = f"KUBECONFIG={state.kubeconfig}"
    print(kubectl(state, "get", "tradingbots,ibgateways,optionsdetectors", "-A"))
    count = len(
        httpx.get(f"{record['url']}/api/v1/anomalies", params={"limit": 100}, timeout=5)
        .json()
        .get("items", [])
    )
    plugin_dir = Path(PY).parent  # kubectl-spyoptions, installed with the package
    print(f"""
The platform is up. {count} recent anomalies are stored; the detector keeps publishing.

  Dashboard (live over the realtime hub):  {record["url"]}/
  Backend API (OpenAPI at /docs):          {record["url"]}/api/v1/anomalies
  Operator metrics:                        http://127.0.0.1:{record["metrics_port"]}/metrics
  Logs:                                    {state_dir}/logs/

Use the cluster:
  export {kc}
  export PATH={plugin_dir}:{DEFAULT_BIN}:$PATH  # kubectl and its spyoptions plugin
  kubectl get tradingbots -A

Arm the paper bot: two people, with the kubectl plugin (kubectl spyoptions). bob
approves as himself, then alice arms (the approval webhook records both from the API
server's identities and refuses self-approval; the approval expires by itself):
  KUBECONFIG={state.kubeconfig_for("bob")} kubectl spyoptions approve mean-reversion -n spy-paper --for 1h --reason demo
  KUBECONFIG={state.kubeconfig_for("alice")} kubectl spyoptions arm mean-reversion -n spy-paper
  kubectl spyoptions status mean-reversion -n spy-paper  # Armed, 1 replica

The gate's replica starts the paper bot (a local process: KWOK pods run nothing) against
the fake IB Gateway; each order it places is in its audit log and printed by:
  Bot audit log:  {record.get("audit_file", "")}
  Bot logs:       {state_dir}/logs/bot.log, {state_dir}/logs/demo-bot.log
  {PY} -m spy_dev.demo orders --follow --state-dir {state_dir}
Disarm (the Deployment goes to 0 and the bot process stops, cancelling its orders):
  KUBECONFIG={state.kubeconfig_for("alice")} kubectl spyoptions disarm mean-reversion -n spy-paper

Halt every bot at once (the kill switch; survives Argo CD syncs):
  kubectl -n {c.DEFAULT_OPERATOR_NAMESPACE} create configmap {c.HALT_CONFIGMAP} --from-literal=reason="demo halt"
  kubectl get tradingbots -A                              # REASON GlobalHalt, REPLICAS 0
Lift the halt:
  kubectl -n {c.DEFAULT_OPERATOR_NAMESPACE} delete configmap {c.HALT_CONFIGMAP}

Stop everything:  make demo-down
""")


def down(state_dir: Path, keep_cluster: bool = False) -> int:
    record_path = state_dir / "demo.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        for name in ("bot", "tws", "detector", "backend", "operator"):
            pid = record["pids"].get(name)
            if pid and alive(pid):
                say(f"stopping the {name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                # The bot's supervisor waits out the bot's grace period (cancels).
                deadline = time.monotonic() + (35 if name == "bot" else 15)
                while alive(pid) and time.monotonic() < deadline:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                    time.sleep(0.1)
                if alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
        record_path.unlink()
    if not keep_cluster:
        subprocess.run(
            [PY, "-m", "spy_dev.devcluster", "down", "--state-dir", str(state_dir)],
            check=False,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "command", nargs="?", default="up", choices=["up", "down", "status", "orders"]
    )
    parser.add_argument("--follow", action="store_true", help="orders: keep printing new ones")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local")
    parser.add_argument(
        "--port", type=int, default=8080, help="backend/dashboard port (a free one if taken)"
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    try:
        if args.command == "down":
            return down(state_dir)
        if args.command == "orders":
            return orders(state_dir, args.follow)
        if args.command == "status":
            show(state_dir, json.loads((state_dir / "demo.json").read_text()))
            return 0
        return up(state_dir, args.port)
    except (DemoError, subprocess.CalledProcessError, FileNotFoundError) as err:
        say(f"failed: {err}")
        say("logs are in " + str(state_dir / "logs") + "; `make demo-down` cleans up")
        return 1


if __name__ == "__main__":
    sys.exit(main())
