"""Leader election on a coordination.k8s.io Lease, so two operator replicas can run.

Every replica watches and keeps its cache warm; only the Lease holder reconciles and
writes. kopf's own peering pauses kopf's watchers but not operator-level tasks (the
work queue and the resync loop), so the Lease is what guards writes. A holder that
cannot renew stops acting before its Lease can expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable

from spy_operator import metrics
from spy_operator.api import parse_time
from spy_operator.kube import ApiError, Kube, object_path

log = logging.getLogger("spy_operator.leader")


def _micro(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        lease_seconds: float = 15.0,
        renew_seconds: float = 2.0,
        on_elected: Callable[[], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        host: str | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.on_elected = on_elected
        self.clock = clock
        self._host = host or socket.gethostname()  # a pod's name in a cluster
        self.identity = f"{self._host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._renewed_at: float | None = None  # loop time just before the last renew
        # (holder, renewTime) of the other replica's Lease and the local loop time we
        # first saw it: expiry is judged on our own clock, never by comparing clocks.
        self._observed: tuple[str, str, float] | None = None
        self.elected = asyncio.Event()
        # The Lease as last read: its holder and renewTime (for leader_alive).
        self._holder: str = ""
        self._holder_renewed: dt.datetime | None = None

    @property
    def is_leader(self) -> bool:
        if self._renewed_at is None:
            return False
        # Stop acting well before the Lease could be taken over by another replica.
        age = asyncio.get_running_loop().time() - self._renewed_at
        return age < self.lease_seconds - 2 * self.renew_seconds

    async def run(self) -> None:
        was = False
        while True:
            # Taken before the request: the Lease we write may be older than the reply.
            started = asyncio.get_running_loop().time()
            try:
                got = await self._try_acquire_or_renew()
            except ApiError as err:
                # Network trouble or a conflict: keep trying; is_leader lapses by itself.
                log.warning("lease renewal failed", extra={"error": str(err)})
                got = False
            except Exception:
                # A malformed Lease or reply must not end election: this replica would
                # then stay passive (or, worse, believe it leads) while looking healthy.
                log.exception("lease renewal crashed")
                got = False
            # Leadership may have lapsed while the request was in flight (a slow renew):
            # work deferred during the lapse must be announced again when it returns.
            lapsed = was and not self.is_leader
            if got:
                self._renewed_at = started
            now = self.is_leader
            metrics.LEADER.set(1 if now else 0)
            if now and (not was or lapsed):
                log.info("became leader", extra={"identity": self.identity})
                self.elected.set()
                if self.on_elected:
                    self.on_elected()
            elif was and not now:
                log.warning("lost leadership", extra={"identity": self.identity})
                self.elected.clear()
            was = now
            await asyncio.sleep(self.renew_seconds)

    async def _try_acquire_or_renew(self) -> bool:
        path = object_path("coordination.k8s.io/v1", "Lease", self.namespace, self.name)
        now = self.clock()
        lease = await self.kube.get(path)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "renewTime": _micro(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            try:
                await self.kube.create(
                    object_path("coordination.k8s.io/v1", "Lease", self.namespace), body, "leases"
                )
            except ApiError as err:
                if err.status == 409:
                    return False  # another replica created it first
                raise
            return True
        current = lease.get("spec", {})
        holder = str(current.get("holderIdentity") or "")
        self._holder = holder
        self._holder_renewed = parse_time(current.get("renewTime"))
        duration = float(current.get("leaseDurationSeconds") or self.lease_seconds)
        if holder not in (self.identity, ""):
            seen = (holder, str(current.get("renewTime")))
            local = asyncio.get_running_loop().time()
            if self._observed is None or self._observed[:2] != seen:
                self._observed = (*seen, local)
            if local - self._observed[2] <= duration:
                return False  # the holder renewed within a Lease duration, by our clock
        new_spec = dict(current, **spec)
        if holder != self.identity:
            new_spec["acquireTime"] = _micro(now)
            new_spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            await self.kube.replace(path, lease, "leases")
        except ApiError as err:
            if err.status == 409:
                return False  # lost a race; the resourceVersion moved
            raise
        return True

    def leader_alive(self) -> bool:
        """True when another live replica holds the Lease: not us, not a previous
        incarnation of this pod (same host name: a restarted container's predecessor
        is dead), and renewed within three renew periods by our clock."""
        holder = self._holder
        if holder in ("", self.identity) or self._holder_renewed is None:
            return False
        if holder.startswith(f"{self._host}-"):
            return False
        age = (self.clock() - self._holder_renewed).total_seconds()
        return age < 3 * self.renew_seconds

    async def release(self) -> None:
        """Hand the Lease over at shutdown so a standby takes over at once."""
        if not self.is_leader:
            return
        path = object_path("coordination.k8s.io/v1", "Lease", self.namespace, self.name)
        lease = await self.kube.get(path)
        if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = ""
        lease["spec"]["renewTime"] = _micro(self.clock() - dt.timedelta(hours=1))
        with contextlib.suppress(ApiError):  # best effort: it expires anyway
            await self.kube.replace(path, lease, "leases")
        self._renewed_at = None
