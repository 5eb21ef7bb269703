"""What the gate invariant watcher sees: the list+watch caches (kube_watch.py) of every
kind the gate's allowance depends on, read as one gate_allowance.WorldView per sample
at no API cost, and the VPN probe the operator would make (loopback targets only).
Used by gate_invariant.GateInvariantWatcher.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from collections.abc import Callable

import httpx
from gate_allowance import WorldView
from kube_watch import Reflector
from spy_operator import constants as c
from spy_operator.api import SpecError, TradingBot
from spy_operator.pullsecrets import secret_facts


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tcp_probe(host: str, port: int, timeout: float = 0.2) -> bool | None:
    """Connect like the operator's VPN probe does; None for a non-loopback target
    (this suite sends nothing off the machine, so such a target counts as reachable)."""
    if not _loopback(host):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ClusterWorld:
    """The reflectors the oracle needs, and one WorldView from their copies."""

    def __init__(self, client_factory: Callable[[], httpx.Client]) -> None:
        bot_sel = f"{c.LABEL_COMPONENT}={c.COMPONENT[c.KIND_BOT]}"
        pod_sel = (
            f"{c.LABEL_COMPONENT} in ({c.COMPONENT[c.KIND_BOT]},{c.COMPONENT[c.KIND_GATEWAY]})"
        )
        custom = f"/apis/{c.GROUP}/{c.VERSION}"
        r = Reflector
        self.bots = r(client_factory, f"{custom}/tradingbots")
        self.gateways = r(client_factory, f"{custom}/ibgateways")
        self.deployments = r(
            client_factory, "/apis/apps/v1/deployments", {"labelSelector": bot_sel}
        )
        self.pods = r(client_factory, "/api/v1/pods", {"labelSelector": pod_sel})
        self.secrets = r(client_factory, "/api/v1/secrets", reduce=secret_facts)
        self.halt = r(
            client_factory,
            f"/api/v1/namespaces/{c.DEFAULT_OPERATOR_NAMESPACE}/configmaps",
            {"fieldSelector": f"metadata.name={c.HALT_CONFIGMAP}"},
        )
        self.all = [self.bots, self.gateways, self.deployments, self.pods, self.secrets, self.halt]

    def start(self) -> None:
        for ref in self.all:
            ref.start()

    def stop(self) -> None:
        for ref in self.all:
            ref.stop()

    @property
    def synced(self) -> bool:
        return all(ref.synced for ref in self.all)

    def view(self) -> WorldView:
        bots = self.bots.copy()
        probes: dict[tuple[str, int], bool] = {}
        for body in bots.values():
            try:
                vpn = TradingBot.from_body(body).vpn
            except SpecError:
                continue
            if vpn is not None and vpn.required and (vpn.host, vpn.port) not in probes:
                seen = tcp_probe(vpn.host, vpn.port, min(0.2, vpn.timeout))
                if seen is not None:
                    probes[(vpn.host, vpn.port)] = seen
        return WorldView(
            bots=bots,
            gateways=self.gateways.copy(),
            deployments=self.deployments.copy(),
            pods=self.pods.copy(),
            secrets=self.secrets.copy(),
            halted=bool(self.halt.copy()),
            now=dt.datetime.now(dt.UTC),
            vpn=probes,
        )
