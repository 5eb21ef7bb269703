"""VPN probe: a TCP connect across the tunnel with a timeout, and its policy.

`probe` is the only I/O, run in the background by `VpnProber` (one probe per target
every few seconds, shared by every object using it); `check_vpn` is the pure policy
behind the VPNReady condition. The RTT goes to status.vpnRttMs (target: under 30 ms)
and to the metric spy_operator_vpn_rtt_seconds{target} (alert SpyVpnRttHigh).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from spy_operator import metrics
from spy_operator.api import VpnTarget as VpnTarget
from spy_operator.conditions import Check


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    rtt_ms: float | None
    error: str | None = None


def check_vpn(target: VpnTarget | None, result: ProbeResult | None) -> Check:
    """VPNReady condition."""
    if target is None:
        return Check(True, "VPNNotConfigured", "no VPN probe configured")
    where = f"{target.host}:{target.port}"
    if result is None:
        return Check(False, "VPNProbePending", f"probe of {where} has not run yet")
    if not result.ok:
        return Check(False, "VPNUnreachable", f"TCP probe of {where} failed: {result.error}")
    # The RTT is in status.vpnRttMs (with hysteresis, rate-limited); the message stays
    # fixed so probe jitter never rewrites status.
    return Check(True, "VPNReachable", f"TCP probe of {where} connected")


def gate_view(target: VpnTarget | None, check: Check) -> Check:
    """What the gate sees: a failing probe blocks only when the probe is required."""
    if check.ok or target is None or target.required:
        return check
    return Check(True, "VPNNotRequired", check.message)


async def probe(host: str, port: int, timeout: float) -> ProbeResult:  # noqa: ASYNC109
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return ProbeResult(False, None, f"timed out after {timeout:g} s")
    except OSError as err:
        # Connection refused, unreachable, DNS failure: all mean "no tunnel".
        return ProbeResult(False, None, err.strerror or type(err).__name__)
    except (UnicodeError, ValueError) as err:
        # A host the schema allows but IDNA refuses ("vpn..corp", a 64-char label):
        # a failed probe, never an exception that stops the gate from closing.
        return ProbeResult(False, None, f"invalid host: {type(err).__name__}")
    rtt = (time.perf_counter() - started) * 1000
    writer.close()
    with contextlib.suppress(OSError):  # a reset after connect still proves the tunnel
        await writer.wait_closed()
    return ProbeResult(True, rtt)


class VpnProber:
    """Probes in the background; reconciles only read the latest result.

    A reconcile never waits on a probe: a blackholed tunnel with a long timeout must
    not tie up the workers that enforce halts and reverts. A result older than
    `max_age` counts as no result (the gate stays closed, VPNProbePending), and a
    probe is started whenever the latest result is older than `ttl`.
    """

    def __init__(
        self,
        ttl: float = 5.0,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        probe: Callable[[str, int, float], Awaitable[ProbeResult]] | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_age = max_age
        self.clock = clock  # injected: tests run on a virtual clock
        self.probe = probe or globals()["probe"]  # the TCP connect below, unless given
        self._results: dict[tuple[str, int], tuple[float, ProbeResult]] = {}
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}

    def result(self, target: VpnTarget) -> ProbeResult | None:
        key = (target.host, target.port)
        now = self.clock()
        cached = self._results.get(key)
        if (cached is None or now - cached[0] >= self.ttl) and key not in self._running:
            self._running[key] = asyncio.create_task(self._probe(key, target.timeout))
        if cached is None or now - cached[0] > self.max_age:
            return None
        return cached[1]

    async def _probe(self, key: tuple[str, int], timeout: float) -> None:  # noqa: ASYNC109
        try:
            result = await self.probe(key[0], key[1], timeout)
            self._results[key] = (self.clock(), result)
            metrics.record_vpn_rtt(key[0], key[1], result.rtt_ms if result.ok else None)
        finally:
            self._running.pop(key, None)


def rtt_changed(old: float | None, new: float | None) -> bool:
    """Hysteresis for status.vpnRttMs so a steady link does not rewrite status."""
    if old is None or new is None:
        return old != new
    return abs(new - old) > max(5.0, 0.5 * old)
