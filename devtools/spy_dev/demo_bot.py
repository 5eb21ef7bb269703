"""The demo's stand-in for the kubelet of one bot: runs `python -m spy_bot run` as a local
process while the bot's Deployment asks for a replica, and stops it when it asks for 0.

KWOK pods run nothing, so `make demo` (spy_dev.demo) starts this supervisor beside the
fake IB Gateway (spy_dev.fake_tws, the real TWS wire protocol, paper account). Every
`POLL_SECONDS` it reads the Deployment the operator manages (`<bot>-bot`):
`spec.replicas` >= 1 starts the bot with the environment the operator put in the pod
template, except what only exists inside a cluster (the gateway's Service address: the
fake TWS on 127.0.0.1; the in-cluster token: a kubeconfig with a token of the bot's own
ServiceAccount, which may only get/watch its TradingBot; Secret references: this
process's environment, e.g. SPY_BACKEND_TOKEN, is passed on). 0 sends SIGTERM, as the kubelet
does, and SIGKILL after the pod's grace period. A bot that exits while wanted is
restarted after a back-off. New `order` lines of the bot's audit log are printed to
this process's log. `state` (bot.json in the state dir) says what runs, for
`demo status` and the tests.

    python -m spy_dev.demo_bot --state-dir .local --namespace spy-paper --name mean-reversion \\
        --tws-port 4002 --backend-url http://127.0.0.1:8080
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
import yaml

from spy_dev.devcluster import ClusterState, admin_client, free_port

POLL_SECONDS = 0.5
GRACE_SECONDS = 30.0  # the bot pod's terminationGracePeriodSeconds
RESTART_BACKOFF = 2.0
TOKEN_SECONDS = 24 * 3600


def say(msg: str) -> None:
    print(f"[demo-bot] {msg}", flush=True)


def audit_path(state_dir: Path, namespace: str, name: str) -> Path:
    return state_dir / "bot-audit" / f"{namespace}.{name}.jsonl"


def state_path(state_dir: Path) -> Path:
    return state_dir / "bot.json"


def order_line(record: dict[str, Any]) -> str:
    """One audit `order` record as the demo prints it."""
    return (
        f"paper order {record.get('order_ref')} (IB order {record.get('order_id')}): "
        f"{record.get('action')} {record.get('quantity')} x {record.get('rule')} "
        f"limit {record.get('limit')} max loss {record.get('max_loss')} "
        f"for signal {record.get('signal_id')}"
    )


def wanted_replicas(client: httpx.Client, namespace: str, name: str) -> int:
    """The Deployment's spec.replicas; 0 when it is missing or being deleted."""
    reply = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}-bot")
    if reply.status_code == 404:
        return 0
    reply.raise_for_status()
    dep = reply.json()
    if dep["metadata"].get("deletionTimestamp"):
        return 0
    return int(dep["spec"].get("replicas") or 0)


def pod_env(client: httpx.Client, namespace: str, name: str) -> dict[str, str]:
    """The literal environment the operator put in the bot container."""
    reply = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}-bot")
    reply.raise_for_status()
    pod = reply.json()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def bot_kubeconfig(
    client: httpx.Client, state: ClusterState, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig with a token of the ServiceAccount the bot's pod runs as."""
    reply = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}-bot")
    reply.raise_for_status()
    account = reply.json()["spec"]["template"]["spec"].get("serviceAccountName") or "default"
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
    reply = client.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", json=request
    )
    reply.raise_for_status()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dev",
                "cluster": {"server": state.server, "certificate-authority": str(state.ca_file)},
            }
        ],
        "users": [{"name": account, "user": {"token": reply.json()["status"]["token"]}}],
        "contexts": [{"name": account, "context": {"cluster": "dev", "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class BotSupervisor:
    """Start/stop one bot process after its Deployment's replicas (one poll per `step`)."""

    def __init__(self, state: ClusterState, args: argparse.Namespace) -> None:
        self.state = state
        self.state_dir: Path = args.state_dir
        self.namespace: str = args.namespace
        self.name: str = args.name
        self.tws_port: int = args.tws_port
        self.backend_url: str = args.backend_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.not_before = 0.0  # restart back-off
        self.audit = audit_path(self.state_dir, self.namespace, self.name)
        self.audit_offset = self.audit.stat().st_size if self.audit.exists() else 0
        self.starts = 0

    def step(self, client: httpx.Client) -> None:
        want = wanted_replicas(client, self.namespace, self.name)
        running = self.proc is not None and self.proc.poll() is None
        if self.proc is not None and not running:
            say(f"bot exited with {self.proc.returncode}")
            self.proc = None
            self.not_before = time.monotonic() + RESTART_BACKOFF
            self.save()
        if want >= 1 and self.proc is None and time.monotonic() >= self.not_before:
            self.start(client)
        elif want == 0 and running:
            say("the gate scaled the bot's Deployment to 0: SIGTERM")
            self.stop()
        self.print_orders()

    def start(self, client: httpx.Client) -> None:
        env = {
            **os.environ,
            **pod_env(client, self.namespace, self.name),
            "SPY_IB_HOST": "127.0.0.1",  # the gateway's Service name resolves only in-cluster
            "SPY_IB_PORT": str(self.tws_port),
            "SPY_BACKEND_URL": self.backend_url,
            "KUBECONFIG": str(
                bot_kubeconfig(
                    client, self.state, self.namespace, self.name,
                    self.state_dir / f"bot-{self.namespace}.{self.name}.kubeconfig",
                )
            ),
            "SPY_HTTP_HOST": "127.0.0.1",
            "SPY_HTTP_PORT": str(free_port()),
            "SPY_AUDIT_FILE": str(self.audit),
        }  # fmt: skip
        log = (self.state_dir / "logs" / "bot.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spy_bot", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the audit lines are in the audit file
            stderr=log,
        )
        self.starts += 1
        say(f"the Deployment asks for a replica: bot started (pid {self.proc.pid})")
        self.save()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        say(f"bot stopped (exit {code})")
        self.proc = None
        self.save()
        self.print_orders()

    def print_orders(self) -> None:
        if not self.audit.exists():
            return
        with self.audit.open("rb") as f:
            f.seek(self.audit_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        self.audit_offset += end
        for raw in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if record.get("event") == "order":
                    say(order_line(record))

    def save(self) -> None:
        running = self.proc is not None and self.proc.poll() is None
        record = {
            "bot": f"{self.namespace}/{self.name}",
            "pid": self.proc.pid if running and self.proc is not None else None,
            "starts": self.starts,
            "audit_file": str(self.audit),
        }
        state_path(self.state_dir).write_text(json.dumps(record, indent=2))


def run(args: argparse.Namespace) -> int:
    state = ClusterState.load(args.state_dir)
    if state is None:
        say("no cluster in the state dir")
        return 1
    supervisor = BotSupervisor(state, args)
    supervisor.audit.parent.mkdir(parents=True, exist_ok=True)
    supervisor.save()
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    say(f"following deployment {args.namespace}/{args.name}-bot; audit: {supervisor.audit}")
    with admin_client(state) as client:
        while not stopping:
            try:
                supervisor.step(client)
            except (httpx.HTTPError, OSError) as exc:
                # The apiserver restarting is no reason to stop a running bot: the
                # operator's gate, not this stand-in, decides when it stops.
                say(f"could not read the Deployment: {exc}")
            time.sleep(POLL_SECONDS)
    supervisor.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.demo_bot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--tws-port", type=int, required=True)
    parser.add_argument("--backend-url", required=True)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
