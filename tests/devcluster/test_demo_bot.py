"""`make demo` end to end with the paper bot: the commands the demo prints (the kubectl
plugin, as bob then alice) arm the bot, the gate's replica starts it, and it places a
paper order at the fake IB Gateway that shows in its audit log; disarming stops it.

Everything is real and local: `python -m spy_dev.demo up` in a temporary state dir
starts its own control plane (real kube-apiserver, controllers, KWOK), the operator with
the approval webhook, Azurite + the backend + local hub, the synthetic detector, the
fake IB Gateway (spy_dev.fake_tws, the real TWS wire protocol) and the bot supervisor
(spy_dev.demo_bot, which runs `python -m spy_bot run` while the bot's Deployment has a
replica). The printed commands are run as printed, through bash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from k8s_support import wait_for
from spy_backend.settings import DEV_AUDIT_TOKEN
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT, free_port

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_BIN / "kube-apiserver").exists(), reason="control plane not built"
    ),
]


def demo(state_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spy_dev.demo", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )


def printed(output: str, pattern: str) -> str:
    """The one command line of the demo's output that contains `pattern`."""
    lines = [line.strip() for line in output.splitlines() if pattern in line]
    assert len(lines) == 1, f"the demo prints one `{pattern}` command:\n{output}"
    return lines[0].split("  #")[0]


def run_printed(command: str, path: str) -> str:
    proc = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_demo_runs_the_paper_bot_while_armed(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    try:
        up = demo(state_dir, "up", "--port", str(free_port()))
        assert up.returncode == 0, up.stdout + up.stderr[-4000:]
        try:
            demo_flow(state_dir, up.stdout)
        except AssertionError as exc:
            logs = {
                p.name: p.read_text(errors="replace")[-2000:]
                for p in sorted((state_dir / "logs").glob("*.log"))
                if p.name in ("bot.log", "demo-bot.log", "fake-tws.log", "operator.log")
            }
            raise AssertionError(f"{exc}\nlogs: {json.dumps(logs, indent=1)}") from exc
    finally:
        demo(state_dir, "down", timeout=180)


class Printed(NamedTuple):
    """What the demo's output tells the user to run, and where the bot audits."""

    path: str  # $PATH with the demo's kubectl plugin dir first
    approve: str
    arm: str
    disarm: str
    audit_file: Path


def printed_commands(output: str) -> Printed:
    export = printed(output, "export PATH=").removeprefix("export PATH=").strip()
    assert "kubectl spyoptions approve" in output and "kubectl spyoptions arm" in output
    commands = Printed(
        path=export.replace("$PATH", os.environ["PATH"]),
        approve=printed(output, "kubectl spyoptions approve"),
        arm=printed(output, "kubectl spyoptions arm"),
        disarm=printed(output, "kubectl spyoptions disarm"),
        audit_file=Path(printed(output, "Bot audit log:").split(":", 1)[1].strip()),
    )
    assert "kubeconfig-bob" in commands.approve and "kubeconfig-alice" in commands.arm, (
        "bob approves, alice arms"
    )
    return commands


def bot_pid(state_dir: Path) -> int | None:
    """The bot process the supervisor (spy_dev.demo_bot) runs, if any."""
    pid: int | None = json.loads((state_dir / "bot.json").read_text())["pid"]
    return pid


def demo_flow(state_dir: Path, output: str) -> None:
    cmd = printed_commands(output)
    assert bot_pid(state_dir) is None, "no bot before it is armed"

    run_printed(cmd.approve, cmd.path)
    assert bot_pid(state_dir) is None, "approval alone runs nothing"
    run_printed(cmd.arm, cmd.path)
    wait_for(
        "the bot process started by the gate's replica",
        lambda: bot_pid(state_dir) is not None,
        60,
    )
    pid = bot_pid(state_dir)
    assert pid is not None
    wait_for(
        "a paper order in the bot's audit log",
        lambda: any(r["event"] == "order" for r in audit(cmd.audit_file)),
        180,
    )
    order = next(r for r in audit(cmd.audit_file) if r["event"] == "order")
    assert order["bot"] == "spy-paper/mean-reversion"
    order_seen_everywhere(state_dir, cmd.audit_file, order)

    run_printed(cmd.disarm, cmd.path)

    def stopped() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return bot_pid(state_dir) is None
        return False

    wait_for("the bot process stopped after the disarm", stopped, 60)
    assert audit(cmd.audit_file)[-1]["event"] == "shutdown", "a clean SIGTERM exit"


def order_seen_everywhere(state_dir: Path, audit_file: Path, order: dict[str, Any]) -> None:
    """The bot's order reached the fake gateway, the backend's audit trail, `demo
    orders` and the supervisor's log."""
    # The stand-in gateway prints every order it receives.
    tws_log = (state_dir / "logs" / "fake-tws.log").read_text()
    received = rf"\[fake-tws\] order {order['order_id']} .* ref {order['order_ref']}"
    assert re.search(received, tws_log), tws_log[-2000:]
    # ... and the backend has the bot's audit trail (POST /api/v1/audit by the bot).
    url = json.loads((state_dir / "demo.json").read_text())["url"]

    def at_backend() -> list[dict[str, Any]]:
        reply = httpx.get(
            f"{url}/api/v1/audit",
            params={"bot": "spy-paper/mean-reversion", "event": "order"},
            headers={"Authorization": f"Bearer {DEV_AUDIT_TOKEN}"},
            timeout=10,
        )
        return [r for r in reply.json().get("items", []) if r["order_ref"] == order["order_ref"]]

    wait_for("the order line at the backend", at_backend, 30, 0.5)
    # ... and the demo prints it.
    shown = demo(state_dir, "orders", timeout=60)
    assert order["order_ref"] in shown.stdout and str(audit_file) in shown.stdout, shown.stdout
    wait_for(
        "the order line in the supervisor's log",
        lambda: order["order_ref"] in (state_dir / "logs" / "demo-bot.log").read_text(),
        10,
    )
