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
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from spy_operator import constants as c

from spy_dev import demo_bot, webhook
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT, ClusterState, free_port, running

PY = sys.executable
KUBECTL = str(DEFAULT_BIN / "kubectl")


def say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


class DemoError(RuntimeError):
    pass


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _spawn(state_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> int:
    log = (state_dir / "logs" / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(what: str, probe: Any, timeout: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
            got = probe()
            if got:
                return got
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise DemoError(f"{what}: not ready after {timeout:.0f} s{tail}")


def kubectl(state: ClusterState, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [KUBECTL, f"--kubeconfig={state.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def up(state_dir: Path, backend_port: int) -> int:
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    record_path = state_dir / "demo.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if all(_alive(p) for p in record["pids"].values()):
            say("already running")
            show(state_dir, record)
            return 0
        down(state_dir, keep_cluster=True)

    state = running(state_dir)
    if state is None:
        say("starting the local control plane (make cluster)")
        subprocess.run(
            [PY, "-m", "spy_dev.devcluster", "up", "--state-dir", str(state_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        state = running(state_dir)
        if state is None:
            raise DemoError("the control plane did not start; see .local/logs/")
    kubectl(state, "apply", "-f", str(REPO_ROOT / "crds"))

    pids: dict[str, int] = {}
    say("starting the operator (with the approval webhook: the two-person rule)")
    metrics_port, webhook_port = free_port(), free_port()
    mat = webhook.material(state_dir)
    pids["operator"] = _spawn(
        state_dir,
        "operator",
        [
            PY,
            "-m",
            "spy_operator",
            "--metrics-port",
            str(metrics_port),
            "--webhook-port",
            str(webhook_port),
            "--webhook-host",
            "127.0.0.1",
            "--webhook-cert",
            str(mat.cert_file),
            "--webhook-key",
            str(mat.cert_key_file),
        ],
        {
            "KUBECONFIG": str(state.kubeconfig_for(c.MANAGED_BY)),
            "SPY_METRICS_ADDR": "127.0.0.1",
            "SPY_GITOPS_IDENTITIES": webhook.DEV_GITOPS_IDENTITIES,
            **webhook.operator_env(state_dir),
        },
    )
    webhook.wait_serving(webhook_port, mat)
    webhook.register(state, webhook_port)

    say(
        "applying the example CRs (examples/paper.yaml in spy-paper, examples/live.yaml in spy-live)"
    )
    for ns, example in (("spy-paper", "paper.yaml"), ("spy-live", "live.yaml")):
        subprocess.run(
            [KUBECTL, f"--kubeconfig={state.kubeconfig}", "create", "namespace", ns],
            capture_output=True,
            check=False,
        )
        kubectl(state, "apply", "-n", ns, "-f", str(REPO_ROOT / "examples" / example))
        # alice (a trader) and bob (an approver) may edit TradingBots here.
        kubectl(state, "apply", "-n", ns, "-f", "-", stdin=json.dumps(webhook.editors_rbac()))

    port = backend_port if _port_free(backend_port) else free_port()
    say(f"starting Azurite, the backend, the realtime hub and the dashboard on port {port}")
    pids["backend"] = _spawn(
        state_dir,
        "backend",
        [
            PY,
            "-m",
            "spy_dev.devserver",
            "--port",
            str(port),
            "--azurite-location",
            str(state_dir / "azurite"),
        ],
        {},
    )
    url = f"http://127.0.0.1:{port}"
    _wait(
        "backend /readyz",
        lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
        90,
        state_dir / "logs" / "backend.log",
    )

    from spy_backend.settings import DEV_INGEST_TOKEN

    say("starting the detector on the synthetic SPY feed")
    detector_port = free_port()
    pids["detector"] = _spawn(
        state_dir,
        "detector",
        [PY, "-m", "spy_detector", "run"],
        {
            "SPY_SOURCE": "synthetic",
            "SPY_SYNTHETIC_SEED": "7",
            "SPY_SYNTHETIC_INTERVAL": "2",
            "SPY_BACKEND_URL": url,
            "SPY_BACKEND_TOKEN": DEV_INGEST_TOKEN,
            "SPY_HTTP_HOST": "127.0.0.1",
            "SPY_HTTP_PORT": str(detector_port),
        },
    )
    pids.update(start_paper_bot(state_dir, state, url))
    record = {
        "pids": pids,
        "url": url,
        "metrics_port": metrics_port,
        "detector_port": detector_port,
        "kubeconfig": str(state.kubeconfig),
        "audit_file": str(demo_bot.audit_path(state_dir, *DEMO_BOT)),
    }
    (state_dir / "demo.json").write_text(json.dumps(record, indent=2))

    say("waiting for the first signals to reach the backend")
    _wait(
        "anomalies in the backend",
        lambda: (
            httpx.get(f"{url}/api/v1/anomalies", params={"limit": 5}, timeout=5).json().get("items")
        ),
        120,
        state_dir / "logs" / "detector.log",
    )
    _wait(
        "gateways Ready",
        lambda: (
            "False"
            not in kubectl(
                state,
                "get",
                "ibgateways",
                "-A",
                "-o",
                'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}',
            )
            and True
        ),
        60,
    )
    show(state_dir, record)
    return 0


# The example's paper bot, which the demo runs (spy_dev.demo_bot) while the gate allows.
DEMO_BOT = ("spy-paper", "mean-reversion")
# The demo trades (paper, fake gateway) at any hour and on the synthetic feed's MEDIUM
# anomalies, so an order follows the arming within seconds, day or night.
DEMO_BOT_PATCH = {
    "spec": {
        "risk": {"tradingHours": "any"},
        "strategy": {
            "rules": [
                {
                    "name": "fade-iv-residual",
                    "when": {"kind": "iv_residual", "minSeverity": "MEDIUM"},
                    "action": "fade",
                    "width": 5,
                },
                {
                    "name": "follow-vol-oi",
                    "when": {"kind": "vol_oi", "minSeverity": "MEDIUM"},
                    "action": "follow",
                    "width": 5,
                },
            ]
        },
    }
}


def start_paper_bot(state_dir: Path, state: ClusterState, url: str) -> dict[str, int]:
    """The fake IB Gateway (paper account) and the bot's supervisor (demo_bot.py)."""
    namespace, name = DEMO_BOT
    say(f"the paper bot {namespace}/{name}: any hour, MEDIUM anomalies (demo settings)")
    kubectl(
        state, "patch", "tradingbot", name, "-n", namespace, "--type=merge",
        "-p", json.dumps(DEMO_BOT_PATCH),
    )  # fmt: skip
    tws_port = free_port()
    say(f"starting the fake IB Gateway (TWS wire protocol, paper) on 127.0.0.1:{tws_port}")
    pids = {
        "tws": _spawn(
            state_dir, "fake-tws", [PY, "-m", "spy_dev.fake_tws", "--port", str(tws_port)], {}
        )
    }
    _wait(
        "fake IB Gateway", lambda: not _port_free(tws_port), 30, state_dir / "logs" / "fake-tws.log"
    )
    argv = [
        PY, "-m", "spy_dev.demo_bot", "--state-dir", str(state_dir), "--namespace", namespace,
        "--name", name, "--tws-port", str(tws_port), "--backend-url", url,
    ]  # fmt: skip
    from spy_backend.settings import DEV_AUDIT_TOKEN

    # Inherited by the bot: its audit lines also go to the backend (GET /api/v1/audit).
    demo_bot.state_path(state_dir).unlink(missing_ok=True)  # a previous run's
    pids["bot"] = _spawn(state_dir, "demo-bot", argv, {"SPY_BACKEND_TOKEN": DEV_AUDIT_TOKEN})
    _wait(
        "the bot supervisor",
        lambda: demo_bot.state_path(state_dir).exists(),
        30,
        state_dir / "logs" / "demo-bot.log",
    )
    return pids


def orders(state_dir: Path, follow: bool) -> int:
    """Print the paper orders in the demo bot's audit log (and new ones, with follow)."""
    path = demo_bot.audit_path(state_dir, *DEMO_BOT)
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
            if pid and _alive(pid):
                say(f"stopping the {name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                # The bot's supervisor waits out the bot's grace period (cancels).
                deadline = time.monotonic() + (35 if name == "bot" else 15)
                while _alive(pid) and time.monotonic() < deadline:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                    time.sleep(0.1)
                if _alive(pid):
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
