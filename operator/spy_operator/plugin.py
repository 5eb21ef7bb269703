"""`kubectl spyoptions`: arm, approve, disarm, halt, resume and explain TradingBots.

Installed as the executable `kubectl-spyoptions` (pyproject [project.scripts]), so
kubectl finds it as a plugin. It drives `kubectl` itself (same kubeconfig, context and
identity as the user's kubectl), does the right patches, waits for the operator's
verdict and says why a bot is not running. The approval webhook records who approved
and who armed from the API server's identity; this tool only writes the fields.

    kubectl spyoptions approve mean-reversion -n spy-paper --for 2h --reason "paper run"
    kubectl spyoptions arm mean-reversion -n spy-paper       # as another person
    kubectl spyoptions status -A
    kubectl spyoptions halt --reason "market halt"; kubectl spyoptions resume
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

from spy_operator import admission as adm
from spy_operator import constants as c

KUBECTL = os.environ.get("KUBECTL", "kubectl")

# What a person should do about each reason (docs/safety-gate.md has the full table).
ADVICE = {
    "GlobalHalt": "a global halt is set: `kubectl spyoptions resume` when it is safe",
    "NotArmed": "arm it: `kubectl spyoptions arm NAME` (by someone other than the approver)",
    "ApprovalMissing": "approve it: `kubectl spyoptions approve NAME --for 2h --reason ...`",
    "ApprovalInvalid": "approve again with a valid expiry",
    "ApprovalExpired": "the approval expired: approve again",
    "ApprovalUnverified": "the approval webhook did not record this approval/arming: "
    "approve and arm again through the API with the webhook registered",
    "GatewayNotFound": "create the IBGateway or fix spec.gatewayRef",
    "GatewayNotReady": "see `kubectl get ibgateway` (credentials, pull secret, VPN, pod)",
    "GatewayModeMismatch": "use a gateway whose tradingMode equals the bot's mode",
    "GatewayReadOnly": "a live bot needs its gateway's readOnlyApi: false",
    "VPNUnreachable": "the VPN probe fails: check the tunnel",
    "ForeignChange": "someone edited the bot's Deployment; the operator is rebuilding it",
    "EnforcementFailed": "the operator could not write the Deployment: see the Enforced message",
    "InvalidSpec": "fix the field named in the message",
}


class PluginError(RuntimeError):
    pass


def kubectl(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [KUBECTL, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise PluginError(proc.stderr.strip() or f"kubectl {' '.join(args)} failed")
    return proc.stdout


def whoami() -> str:
    info = json.loads(kubectl("auth", "whoami", "-o", "json"))
    return str(info["status"]["userInfo"]["username"])


def parse_duration(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise PluginError(f"--for {text!r}: use a number and a unit, e.g. 90m or 2h")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return dt.timedelta(seconds=float(match.group(1)) * unit)


def ns_args(args: argparse.Namespace) -> list[str]:
    return ["-n", args.namespace] if args.namespace else []


def get_bot(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        kubectl("get", "tradingbot", args.name, *ns_args(args), "-o", "json")
    )
    return out


def patch_spec(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        kubectl(
            "patch",
            "tradingbot",
            args.name,
            *ns_args(args),
            "--type=merge",
            "-p",
            json.dumps({"spec": spec}),
            "-o",
            "json",
        )
    )
    return out


def wait_verdict(args: argparse.Namespace, generation: int, timeout: float) -> dict[str, Any]:
    """The bot once the operator has reconciled `generation` (or as it is at timeout)."""
    deadline = time.monotonic() + timeout
    bot = get_bot(args)
    while time.monotonic() < deadline:
        if (bot.get("status") or {}).get("observedGeneration", 0) >= generation:
            return bot
        time.sleep(0.25)
        bot = get_bot(args)
    return bot


def explain(bot: dict[str, Any]) -> str:
    meta, spec, status = bot["metadata"], bot.get("spec", {}), bot.get("status") or {}
    notes = meta.get("annotations") or {}
    reason = status.get("reason", "Pending")
    lines = [
        f"{meta['namespace']}/{meta['name']}: mode {spec.get('mode', 'paper')}, "
        f"armed {str(bool(status.get('armed'))).lower()} "
        f"(spec.armed {str(spec.get('armed') is True).lower()}), replicas "
        f"{status.get('replicas', 0)}, reason {reason}",
    ]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    approval = spec.get("approval") or {}
    if approval:
        lines.append(
            f"  approval: by {approval.get('approvedBy')} until {approval.get('expiresAt')} "
            f"(recorded for {notes.get(adm.APPROVAL_RECORDED_BY, '-')} via "
            f"{notes.get(adm.APPROVAL_VIA, '-')}; armed by {notes.get(adm.ARMED_BY, '-')})"
        )
    for cond in status.get("conditions") or []:
        mark = "ok " if cond.get("status") == "True" else "-- "
        if cond.get("type") == "Halted":
            mark = "-- " if cond.get("status") == "True" else "ok "
        lines.append(
            f"  {mark}{cond['type']:<17} {cond.get('reason', '')}: {cond.get('message', '')}"
        )
    if not status.get("armed") and reason in ADVICE:
        lines.append(f"  why not running: {ADVICE[reason]}")
    return "\n".join(lines)


def cmd_approve(args: argparse.Namespace) -> int:
    if args.until:
        expires = args.until
    else:
        moment = dt.datetime.now(dt.UTC) + parse_duration(args.for_)
        expires = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    approval = {"approvedBy": whoami(), "expiresAt": expires}
    if args.reason:
        approval["reason"] = args.reason
    bot = patch_spec(args, {"approval": approval})
    print(explain(wait_verdict(args, bot["metadata"]["generation"], args.wait)))
    return 0


def cmd_arm(args: argparse.Namespace, armed: bool) -> int:
    bot = patch_spec(args, {"armed": armed})
    print(explain(wait_verdict(args, bot["metadata"]["generation"], args.wait)))
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    kubectl(
        "-n", args.operator_namespace, "create", "configmap", c.HALT_CONFIGMAP,
        f"--from-literal=reason={args.reason}",
    )  # fmt: skip
    print(f"halted: every bot goes to 0 ({args.operator_namespace}/{c.HALT_CONFIGMAP})")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    kubectl("-n", args.operator_namespace, "delete", "configmap", c.HALT_CONFIGMAP)
    print("halt lifted: bots return to what their gate allows")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.name:
        print(explain(get_bot(args)))
        return 0
    scope = ["-A"] if args.all_namespaces else ns_args(args)
    bots = json.loads(kubectl("get", "tradingbots", *scope, "-o", "json"))["items"]
    print(f"{'NAMESPACE':<14} {'NAME':<24} {'MODE':<6} {'ARMED':<6} {'REPLICAS':<8} REASON")
    for bot in bots:
        st = bot.get("status") or {}
        print(
            f"{bot['metadata']['namespace']:<14} {bot['metadata']['name']:<24} "
            f"{bot['spec'].get('mode', 'paper'):<6} {str(bool(st.get('armed'))).lower():<6} "
            f"{st.get('replicas', 0):<8} {st.get('reason', 'Pending')}"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubectl spyoptions", description=__doc__.split("\n\n")[0])
    p.add_argument("--operator-namespace", default=c.DEFAULT_OPERATOR_NAMESPACE)
    sub = p.add_subparsers(dest="command", required=True)

    def bot_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("name")
        sp.add_argument("-n", "--namespace", default="")
        sp.add_argument("--wait", type=float, default=10, help="seconds to wait for the verdict")
        return sp

    ap = bot_cmd("approve", "approve a bot as yourself (the webhook records you)")
    when = ap.add_mutually_exclusive_group()
    when.add_argument("--for", dest="for_", default="2h", help="lifetime, e.g. 90m, 2h")
    when.add_argument("--until", help="RFC 3339 expiry, e.g. 2026-12-02T21:00:00Z")
    ap.add_argument("--reason", default="", help="why it may trade (required for live bots)")
    bot_cmd("arm", "request trading (someone other than the approver)")
    bot_cmd("disarm", "stop the bot")
    halt = sub.add_parser("halt", help="halt every bot (the kill switch)")
    halt.add_argument("--reason", required=True)
    sub.add_parser("resume", help="lift the global halt")
    st = sub.add_parser("status", help="bots and why they are (not) running")
    st.add_argument("name", nargs="?")
    st.add_argument("-n", "--namespace", default="")
    st.add_argument("-A", "--all-namespaces", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "approve":
            return cmd_approve(args)
        if args.command in ("arm", "disarm"):
            return cmd_arm(args, args.command == "arm")
        if args.command == "halt":
            return cmd_halt(args)
        if args.command == "resume":
            return cmd_resume(args)
        return cmd_status(args)
    except PluginError as err:
        print(f"kubectl spyoptions {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
