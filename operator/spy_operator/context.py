"""What a reconcile pass works with (Context) and reports (Outcome).

Shared by reconcile.py, facts.py, writes.py and the controller.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spy_operator import constants as c
from spy_operator.kube import Kube
from spy_operator.vpn import VpnProber
from spy_operator.world import World

ReconcileKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Outcome:
    """What a pass did, for metrics, tests and the controller's scheduling."""

    writes: int = 0
    requeue_after: float | None = None
    armed: bool = False  # for a TradingBot: the gate allows it to run


@dataclass
class Context:
    kube: Kube
    world: World
    prober: VpnProber
    clock: Callable[[], dt.datetime]  # wall clock: approvals expire in real time
    monotonic: Callable[[], float] = time.monotonic  # intervals (RTT report pacing)
    # Key of the approval webhook's signatures (admission.py); None: nothing verifies.
    approval_key: bytes | None = None
    operator_namespace: str = c.DEFAULT_OPERATOR_NAMESPACE
    vpn_recheck_seconds: float = 5.0
    # RTT-only status updates at most this often per object (an up/down flip is
    # written at once): a loaded node's probe jitter is not a change of the world.
    rtt_report_seconds: float = 60.0
    rtt_reported_at: dict[ReconcileKey, float] = field(default_factory=dict)
    # Children the operator does not watch (a bot's ServiceAccount, Role, RoleBinding):
    # (kind, namespace, name) -> (desired hash, monotonic time of the last apply).
    unwatched_applied: dict[ReconcileKey, tuple[str, float]] = field(default_factory=dict)
    unwatched_reapply_seconds: float = 600.0


def sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
