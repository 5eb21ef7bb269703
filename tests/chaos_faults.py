"""Faults the chaos suite injects from the cluster's side: `ToggleListener`, the VPN
stand-in a bot's probe reaches (up or down on demand), and `Refusal`, an admission
policy that refuses the operator's own writes in one namespace. Used by
chaos_steps.py; writes go through chaos_world.Api.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

import httpx
from chaos_world import APPLY_PATCH, HAND, Api, path
from k8s_support import wait_for
from spy_operator import constants as c

# --------------------------------------------------------------- VPN stand-in


class ToggleListener:
    """A loopback TCP listener standing in for a host across the VPN tunnel; `down()`
    closes it (connections are refused, as when the tunnel drops), `up()` listens on
    the same port again."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.port = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.up()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="vpn-listener")
        self._thread.start()

    def up(self) -> None:
        with self._lock:
            if self._sock is not None:
                return
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            self._sock = sock

    def down(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    @property
    def is_up(self) -> bool:
        return self._sock is not None

    def _accept(self) -> None:
        while not self._stop.is_set():
            sock = self._sock
            if sock is None:
                time.sleep(0.05)
                continue
            with contextlib.suppress(OSError, ValueError):
                ready, _, _ = select.select([sock], [], [], 0.1)
                if ready:
                    conn, _ = sock.accept()
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.down()


# ------------------------------------------------------------ refusing writes


class Refusal:
    """A ValidatingAdmissionPolicy that refuses the operator's writes to the bot
    Deployments of one namespace, the way a policy engine refuses a pod template it
    does not like (HTTP 403; issue 8, finding 1). It matches the `deployments`
    resource, not `deployments/scale`, as pod-template policies do."""

    def __init__(self, api: Api, operator_api: httpx.Client, operator_user: str, namespace: str):
        self.api = api
        self.operator_api = operator_api
        self.operator_user = operator_user
        self.namespace = namespace
        self.name = f"chaos-refuse-{namespace}"

    def _probe(self) -> int:
        """A dry-run apply as the operator's user: 403 while the policy is in force."""
        target = path("deployment", self.namespace, "off-bot")
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "off-bot"}}
        resp = self.operator_api.patch(
            target,
            params={"fieldManager": "chaos-probe", "dryRun": "All"},
            json=body,
            headers=APPLY_PATCH,
        )
        return resp.status_code

    def install(self) -> None:
        policy = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": self.name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                        }
                    ]
                },
                "matchConditions": [
                    {
                        "name": "the-operator",
                        "expression": f"request.userInfo.username == '{self.operator_user}'",
                    }
                ],
                "validations": [
                    {
                        "expression": "!object.spec.template.spec.containers.exists("
                        "ctr, ctr.name == 'bot')",
                        "message": "chaos: this policy refuses the bot's pod template",
                        "reason": "Forbidden",
                    }
                ],
            },
        }
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": self.name},
            "spec": {
                "policyName": self.name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
                    },
                    "objectSelector": {"matchLabels": {c.LABEL_COMPONENT: c.COMPONENT[c.KIND_BOT]}},
                },
            },
        }
        for body, kind in ((policy, "vap"), (binding, "vapb")):
            self.api.client.patch(
                path(kind, None, self.name),
                params={"fieldManager": HAND, "force": "true"},
                json=body,
                headers=APPLY_PATCH,
            ).raise_for_status()
        wait_for("refusal policy in force", lambda: self._probe() == 403, 15, 0.1)

    def remove(self) -> None:
        for kind in ("vapb", "vap"):
            self.api.delete(path(kind, None, self.name))
        wait_for("refusal policy lifted", lambda: self._probe() != 403, 15, 0.1)
