"""The operator's view of the cluster: kopf indices plus the responses of its own writes.

kopf fills one index per watched kind (handlers.py) and runs no handler before every
index is populated, so a reconcile never sees a half-listed world after a restart.
Writes return the new object; it is kept as an overlay until the watch delivers that
version, so the next pass compares against what was written, not a stale copy, and a
no-op pass writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Protocol

from spy_operator.pullsecrets import SecretFacts

Body = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


class IndexLike(Protocol):
    """The read side of kopf.Index: key -> store of values."""

    def get(self, key: Any, default: Any = None) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __getitem__(self, key: Any) -> Any: ...


def _rv(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


class World:
    # Names of the kopf indices (handlers.py defines functions with these names).
    BOTS = "idx_tradingbots"
    GATEWAYS = "idx_ibgateways"
    DETECTORS = "idx_optionsdetectors"
    DEPLOYMENTS = "idx_deployments"
    STATEFULSETS = "idx_statefulsets"
    SERVICES = "idx_services"
    SECRETS = "idx_secrets"
    HALT = "idx_halt"
    # Every Deployment with the bot label, owned or not: orphans (--cascade=orphan) and
    # look-alike copies are found here and kept at 0, and a halt scales them all.
    BOT_DEPLOYMENTS = "idx_bot_deployments"
    # Facts of the running IB Gateway pods by (namespace, gateway name): the gate
    # trusts what runs (mode, revision), not only the gateway's spec.
    GATEWAY_PODS = "idx_gateway_pods"
    ALL = (
        BOTS,
        GATEWAYS,
        DETECTORS,
        DEPLOYMENTS,
        STATEFULSETS,
        SERVICES,
        SECRETS,
        HALT,
        BOT_DEPLOYMENTS,
        GATEWAY_PODS,
    )
    CUSTOM = (BOTS, GATEWAYS, DETECTORS)
    CHILD_INDEX: ClassVar[dict[str, str]] = {
        "Deployment": DEPLOYMENTS,
        "StatefulSet": STATEFULSETS,
        "Service": SERVICES,
    }

    # A child we wrote but the watch has not shown for this long is taken as deleted
    # (a DELETED event can overtake our own write's reply; a re-list after a watch
    # expiry never reports objects deleted in the gap).
    GHOST_SECONDS = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.indices: dict[str, IndexLike] = {}
        self._overlay: dict[tuple[str, Key], tuple[Body, float]] = {}
        self._clock = clock

    def attach(self, indices: Mapping[str, Any]) -> None:
        for name in self.ALL:
            if name in indices:
                self.indices[name] = indices[name]

    @property
    def synced(self) -> bool:
        return all(name in self.indices for name in self.ALL)

    def _from_index(self, index: str, key: Any) -> Any:
        idx = self.indices.get(index)
        if idx is None:
            return None
        store = idx.get(key)
        if store is None:
            return None
        return next(iter(store), None)

    def get(self, index: str, key: Key) -> Body | None:
        seen: Body | None = self._from_index(index, key)
        entry = self._overlay.get((index, key))
        if entry is None:
            return seen
        written, when = entry
        if seen is None and (
            # The operator never creates its custom resources: gone from the watch
            # means deleted, whatever status it last wrote.
            index in self.CUSTOM or self._clock() - when > self.GHOST_SECONDS
        ):
            del self._overlay[(index, key)]
            return None
        if seen is not None and _rv(seen) >= _rv(written):
            del self._overlay[(index, key)]
            return seen
        return written

    def all_of(self, index: str, key: Any) -> list[Any]:
        """Every value stored under `key` (an index may hold several, e.g. pods)."""
        idx = self.indices.get(index)
        store = idx.get(key) if idx is not None else None
        return list(store) if store is not None else []

    def remember(self, index: str, key: Key, body: Body) -> None:
        self._overlay[(index, key)] = (body, self._clock())

    def forget(self, index: str, key: Key) -> None:
        self._overlay.pop((index, key), None)

    def keys(self, index: str) -> list[Key]:
        idx = self.indices.get(index)
        return list(idx) if idx is not None else []

    def values(self, index: str) -> Iterator[Body]:
        for key in self.keys(index):
            body = self.get(index, key)
            if body is not None:
                yield body

    def secret(self, namespace: str, name: str) -> SecretFacts | None:
        facts: SecretFacts | None = self._from_index(self.SECRETS, (namespace, name))
        return facts

    def secrets_in(self, namespace: str, names: list[str]) -> dict[str, SecretFacts]:
        out = {}
        for name in names:
            facts = self.secret(namespace, name)
            if facts is not None:
                out[name] = facts
        return out

    def halt(self) -> Body | None:
        halt: Body | None = self._from_index(self.HALT, "halt")
        return halt
