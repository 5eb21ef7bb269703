"""The approval webhook on the local control plane: key, certificates, process and
registration (what the Helm chart does in a cluster).

* `material(state_dir)` makes (once) the approval signing key and a CA plus a serving
  certificate for 127.0.0.1, under state_dir/approval/;
* `WebhookProcess` runs `python -m spy_operator --webhook-only` on a free loopback port
  and registers it as the MutatingWebhookConfiguration `spyoptions-approval`
  (failurePolicy Fail, TradingBot CREATE/UPDATE, main resource only);
* `operator_env(state_dir)` is what an operator process needs to verify approvals.

Used by the test session (tests/conftest.py), the benchmarks, the demo and
`make run` (`python -m spy_dev.webhook register --state-dir .local --port N`).
In development the identity `admin` stands for the GitOps pipeline (it may carry
approvals for others); alice and bob are plain users bound by the two-person rule.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from spy_dev import pki
from spy_dev.devcluster import ClusterState, client_options, free_port

CONFIG_NAME = "spyoptions-approval"
DEV_GITOPS_IDENTITIES = "admin"


@dataclass(frozen=True)
class Material:
    key_file: Path  # the HMAC signing key (a Secret in a cluster)
    cert_file: Path
    cert_key_file: Path
    ca_pem: bytes


def material(state_dir: Path) -> Material:
    """Create (once) and return the webhook's key and certificates under state_dir."""
    root = Path(state_dir) / "approval"
    out = Material(root / "signing.key", root / "tls.crt", root / "tls.key", b"")
    if out.key_file.exists() and out.cert_file.exists() and (root / "ca.crt").exists():
        return Material(
            out.key_file, out.cert_file, out.cert_key_file, (root / "ca.crt").read_bytes()
        )
    root.mkdir(parents=True, exist_ok=True)
    ca = pki.new_ca("spyoptions-webhook-ca", days=30)
    serving = pki.server_cert(ca, "spyoptions-webhook", ["127.0.0.1"], days=30)
    ca_pem = ca.cert_pem()
    (root / "ca.crt").write_bytes(ca_pem)
    out.cert_file.write_bytes(serving.cert_pem())
    out.cert_key_file.write_bytes(serving.key_pem())
    out.key_file.write_text(secrets.token_hex(32))
    for path in (out.cert_key_file, out.key_file):
        path.chmod(0o600)
    return Material(out.key_file, out.cert_file, out.cert_key_file, ca_pem)


def operator_env(state_dir: Path) -> dict[str, str]:
    """Environment an operator process needs to verify recorded approvals."""
    return {"SPY_APPROVAL_KEY_FILE": str(material(state_dir).key_file)}


def configuration(port: int, ca_pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIG_NAME, "labels": {"app.kubernetes.io/part-of": "spyoptions"}},
        "webhooks": [
            {
                "name": "approval.tradingbots.spyoptions.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 5,
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/mutate-tradingbot",
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["spyoptions.io"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["tradingbots"],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }


def register(state: ClusterState, port: int) -> None:
    """Create or replace the MutatingWebhookConfiguration pointing at 127.0.0.1:port."""
    body = configuration(port, material(Path(state.state_dir)).ca_pem)
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    with httpx.Client(**client_options(state)) as api:
        resp = api.get(f"{path}/{CONFIG_NAME}")
        if resp.status_code == 200:
            body["metadata"]["resourceVersion"] = resp.json()["metadata"]["resourceVersion"]
            api.put(f"{path}/{CONFIG_NAME}", json=body).raise_for_status()
        else:
            api.post(path, json=body).raise_for_status()


def unregister(state: ClusterState) -> None:
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    with httpx.Client(**client_options(state)) as api:
        api.delete(f"{path}/{CONFIG_NAME}")


def wait_serving(
    port: int, mat: Material, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    """Wait until https://127.0.0.1:port/healthz answers with the webhook's CA."""
    tls = ssl.create_default_context(cadata=mat.ca_pem.decode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the approval webhook exited")
        try:
            if httpx.get(f"https://127.0.0.1:{port}/healthz", verify=tls).is_success:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the approval webhook did not answer on 127.0.0.1:{port}")


def editors_rbac() -> dict[str, Any]:
    """A Role and RoleBinding letting alice and bob edit TradingBots in a namespace."""
    rbac = "rbac.authorization.k8s.io"
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": "tradingbot-editor"},
                "rules": [
                    {
                        "apiGroups": ["spyoptions.io"],
                        "resources": ["tradingbots"],
                        "verbs": ["get", "list", "watch", "patch", "update"],
                    }
                ],
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "tradingbot-editors"},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "tradingbot-editor"},
                "subjects": [
                    {"apiGroup": rbac, "kind": "User", "name": user} for user in ("alice", "bob")
                ],
            },
        ],
    }


class WebhookProcess:
    """`python -m spy_operator --webhook-only` on a loopback port, registered."""

    def __init__(self, state: ClusterState, log_dir: Path, identities: str = DEV_GITOPS_IDENTITIES):
        self.state = state
        self.log_path = Path(log_dir) / "approval-webhook.log"
        self.identities = identities
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> WebhookProcess:
        mat = material(Path(self.state.state_dir))
        self.port = port or self.port or free_port()
        env = dict(
            os.environ,
            SPY_APPROVAL_KEY_FILE=str(mat.key_file),
            SPY_GITOPS_IDENTITIES=self.identities,
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spy_operator",
                "--webhook-only",
                "--webhook-port",
                str(self.port),
                "--webhook-host",
                "127.0.0.1",
                "--webhook-cert",
                str(mat.cert_file),
                "--webhook-key",
                str(mat.cert_key_file),
            ],
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_serving(self.port, mat, self.proc)
        except RuntimeError as err:
            raise RuntimeError(f"{err}; see {self.log_path}") from err
        register(self.state, self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.webhook",
        description="Register the operator's approval webhook on the local control plane.",
    )
    parser.add_argument("command", choices=["register", "unregister", "env"])
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--port", type=int, default=9443)
    args = parser.parse_args(argv)
    state = ClusterState.load(args.state_dir)
    if state is None:
        print(f"no cluster in {args.state_dir}: run `make cluster`", file=sys.stderr)
        return 1
    mat = material(args.state_dir)
    if args.command == "register":
        register(state, args.port)
        print(
            f"[webhook] registered https://127.0.0.1:{args.port}/mutate-tradingbot", file=sys.stderr
        )
    elif args.command == "unregister":
        unregister(state)
    else:  # shell lines for `make run`
        print(
            f"SPY_APPROVAL_KEY_FILE={mat.key_file} SPY_GITOPS_IDENTITIES={DEV_GITOPS_IDENTITIES} "
            f"SPY_WEBHOOK_CERT={mat.cert_file} SPY_WEBHOOK_KEY={mat.cert_key_file}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
