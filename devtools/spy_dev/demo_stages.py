"""The stages of `make demo` (``spy_dev.demo.up``), one function per step it prints.

Each starts one part of the platform (a process from ``demo_support.spawn``, logging to
<state dir>/logs/) and waits until it answers; ``up`` calls them in this file's order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from spy_operator import constants as c

from spy_dev import demo_bot, webhook
from spy_dev.demo_support import KUBECTL, PY, DemoError, kubectl, port_free, say, spawn, wait
from spy_dev.devcluster import REPO_ROOT, ClusterState, free_port, running


def ensure_cluster(state_dir: Path) -> ClusterState:
    """The local control plane (started if not running), with the CRDs applied."""
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
    return state


def start_operator(state_dir: Path, state: ClusterState) -> tuple[int, int]:
    """The operator and its approval webhook, registered; (pid, metrics port)."""
    say("starting the operator (with the approval webhook: the two-person rule)")
    metrics_port, webhook_port = free_port(), free_port()
    mat = webhook.material(state_dir)
    pid = spawn(
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
    return pid, metrics_port


def apply_examples(state: ClusterState) -> None:
    say(
        "applying the example CRs"
        " (examples/paper.yaml in spy-paper, examples/live.yaml in spy-live)"
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


def start_backend(state_dir: Path, backend_port: int) -> tuple[int, str]:
    """Azurite, the backend, the hub and the dashboard (spy_dev.devserver); (pid, URL)."""
    port = backend_port if port_free(backend_port) else free_port()
    say(f"starting Azurite, the backend, the realtime hub and the dashboard on port {port}")
    pid = spawn(
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
    wait(
        "backend /readyz",
        lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
        90,
        state_dir / "logs" / "backend.log",
    )
    return pid, url


def start_detector(state_dir: Path, url: str) -> tuple[int, int]:
    """The detector on the synthetic SPY feed, publishing to the backend; (pid, port)."""
    from spy_backend.settings import DEV_INGEST_TOKEN

    say("starting the detector on the synthetic SPY feed")
    detector_port = free_port()
    pid = spawn(
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
    return pid, detector_port


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
        "tws": spawn(
            state_dir, "fake-tws", [PY, "-m", "spy_dev.fake_tws", "--port", str(tws_port)], {}
        )
    }
    wait(
        "fake IB Gateway", lambda: not port_free(tws_port), 30, state_dir / "logs" / "fake-tws.log"
    )
    argv = [
        PY, "-m", "spy_dev.demo_bot", "--state-dir", str(state_dir), "--namespace", namespace,
        "--name", name, "--tws-port", str(tws_port), "--backend-url", url,
    ]  # fmt: skip
    from spy_backend.settings import DEV_AUDIT_TOKEN

    # Inherited by the bot: its audit lines also go to the backend (GET /api/v1/audit).
    demo_bot.state_path(state_dir).unlink(missing_ok=True)  # a previous run's
    pids["bot"] = spawn(state_dir, "demo-bot", argv, {"SPY_BACKEND_TOKEN": DEV_AUDIT_TOKEN})
    wait(
        "the bot supervisor",
        lambda: demo_bot.state_path(state_dir).exists(),
        30,
        state_dir / "logs" / "demo-bot.log",
    )
    return pids


def wait_for_signals(state_dir: Path, state: ClusterState, url: str) -> None:
    """Anomalies stored in the backend and every IBGateway Ready."""
    say("waiting for the first signals to reach the backend")
    wait(
        "anomalies in the backend",
        lambda: (
            httpx.get(f"{url}/api/v1/anomalies", params={"limit": 5}, timeout=5).json().get("items")
        ),
        120,
        state_dir / "logs" / "detector.log",
    )
    wait(
        "gateways Ready",
        lambda: (
            "False"
            not in kubectl(
                state,
                "get",
                "ibgateways",
                "-A",
                "-o",
                "jsonpath={range .items[*]}"
                '{.status.conditions[?(@.type=="Ready")].status}{" "}{end}',
            )
            and True
        ),
        60,
    )
