"""The chaos suite's hands on the cluster: the harness's own API calls and one run's
world (namespace, Secrets, gateway, bots). The faults it injects from the cluster's
side (the VPN stand-in it toggles, the admission policy that refuses the operator's
writes) are chaos_faults.py.

Used by chaos_runner.py and chaos_steps.py. Every write is made as the `admin` user
with its own field manager (`chaos-hand`), so a foreign change shows as one in
managedFields, and a write refused by a prevention policy (HTTP 403/422) is counted,
not raised.
"""

from __future__ import annotations

from typing import Any

import httpx
from k8s_support import wait_for
from operator_support import bot, credentials, gateway, in_seconds, pull_secret
from spy_operator import constants as c

HAND = "chaos-hand"  # field manager of every change the harness makes by hand


NAMESPACE_PREFIX = "chaos-"


CHAOS_LABEL = "spyoptions.io/chaos"


_MERGE = {"Content-Type": "application/merge-patch+json"}


_STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


APPLY_PATCH = {"Content-Type": "application/apply-patch+yaml"}


_CUSTOM = f"/apis/{c.GROUP}/{c.VERSION}"


class RefusedError(Exception):
    """The apiserver refused a hand write (a prevention policy did its job)."""


def path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    base = {
        "deployment": "/apis/apps/v1/{ns}deployments",
        "statefulset": "/apis/apps/v1/{ns}statefulsets",
        "pod": "/api/v1/{ns}pods",
        "secret": "/api/v1/{ns}secrets",
        "configmap": "/api/v1/{ns}configmaps",
        "namespace": "/api/v1/namespaces",
        "persistentvolume": "/api/v1/persistentvolumes",
        "tradingbot": _CUSTOM + "/{ns}tradingbots",
        "ibgateway": _CUSTOM + "/{ns}ibgateways",
        "vap": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
        "vapb": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
    }[kind].format(ns=f"namespaces/{namespace}/" if namespace else "")
    return f"{base}/{name}" if name else base


class Api:
    """The harness's writes (as admin) and reads, with short timeouts."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.refused = 0

    def _check(self, resp: httpx.Response, ok: tuple[int, ...] = ()) -> httpx.Response:
        if resp.status_code in (403, 422) and "denied" in resp.text.lower():
            self.refused += 1
            raise RefusedError(resp.json().get("message", resp.text)[:300])
        if resp.status_code >= 400 and resp.status_code not in ok:
            where = f"{resp.request.method} {resp.request.url.path}"
            raise AssertionError(f"{where}: {resp.text[:300]}")
        return resp

    def get(self, p: str) -> Any:
        resp = self.client.get(p)
        if resp.status_code == 404:
            return None
        return self._check(resp).json()

    def apply(self, body: dict[str, Any], namespace: str | None = None) -> None:
        meta = body["metadata"]
        ns = namespace or meta.get("namespace")
        kind = body["kind"].lower()
        target = path(kind, ns, meta["name"])
        self._check(
            self.client.patch(
                target,
                params={"fieldManager": HAND, "force": "true"},
                json={**body, "metadata": {**meta, **({"namespace": ns} if ns else {})}},
                headers=APPLY_PATCH,
            )
        )

    def merge(self, p: str, patch: dict[str, Any], strategic: bool = False) -> None:
        headers = _STRATEGIC if strategic else _MERGE
        params = {"fieldManager": HAND}
        self._check(self.client.patch(p, params=params, json=patch, headers=headers))

    def delete(self, p: str, propagation: str = "Background") -> None:
        self._check(
            self.client.request("DELETE", p, json={"propagationPolicy": propagation}), ok=(404,)
        )

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        target = path("deployment", namespace, deployment) + "/scale"
        self.merge(target, {"spec": {"replicas": replicas}})

    def halt(self, reason: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": c.HALT_CONFIGMAP, "namespace": c.DEFAULT_OPERATOR_NAMESPACE},
            "data": {"reason": reason},
        }
        self.apply(body)

    def lift_halt(self) -> None:
        self.delete(path("configmap", c.DEFAULT_OPERATOR_NAMESPACE, c.HALT_CONFIGMAP))


# ------------------------------------------------------------------- the world


def approval_in(seconds: float) -> dict[str, Any]:
    return {"approvedBy": "bob", "reason": "chaos run", "expiresAt": in_seconds(seconds)}


def bot_body(name: str, gateway_mode: str, vpn_port: int, expiry_seconds: float) -> dict[str, Any]:
    """The run's five bots (chaos_plan.py's module docstring says what each is for)."""
    mode = {"paper": "paper", "live": "live"}.get(name, gateway_mode)
    body = bot(name, gw="gw", mode=mode, armed=name != "off")
    if name == "vpn":
        body["spec"]["vpn"] = {"host": "127.0.0.1", "port": vpn_port, "timeoutSeconds": 0.5}
    if name == "exp":
        body["spec"]["approval"] = approval_in(expiry_seconds)
    return body


def gateway_body(mode: str) -> dict[str, Any]:
    return gateway("gw", mode=mode, read_only=False)


def create_world(api: Api, namespace: str, gateway_mode: str, vpn_port: int, expiry: float) -> None:
    api.client.post(
        path("namespace"),
        json={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {CHAOS_LABEL: "true"}},
        },
    ).raise_for_status()
    wait_for(
        f"default service account in {namespace}",
        lambda: api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
        90,
    )
    for body in (pull_secret(), credentials(), gateway_body(gateway_mode)):
        api.apply(body, namespace)
    for name in ("paper", "live", "vpn", "exp", "off"):
        api.apply(bot_body(name, gateway_mode, vpn_port, expiry), namespace)


def recycle_volumes(api: Api) -> int:
    """Make volumes released by deleted chaos namespaces available again (the dev
    cluster pre-makes a fixed number with reclaimPolicy Retain)."""
    count = 0
    for pv in (api.get(path("persistentvolume")) or {}).get("items", []):
        ref = pv.get("spec", {}).get("claimRef") or {}
        if pv.get("status", {}).get("phase") == "Released" and str(
            ref.get("namespace", "")
        ).startswith(NAMESPACE_PREFIX):
            target = path("persistentvolume", None, pv["metadata"]["name"])
            api.merge(target, {"spec": {"claimRef": None}})
            count += 1
    return count
