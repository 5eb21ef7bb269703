"""The one interface every market-data source implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from spy_analytics import ChainSnapshot


class MarketSource(Protocol):
    """An async stream of chain snapshots.

    ``snapshots()`` yields until the source is exhausted (replay) or forever (live,
    synthetic); transient failures (a dropped gateway connection) are handled inside
    the source, which resumes after reconnecting. ``not_ready()`` lists reasons the
    source cannot currently deliver data, for /readyz.
    """

    name: str

    def snapshots(self) -> AsyncIterator[ChainSnapshot]: ...

    def not_ready(self) -> list[str]: ...

    async def close(self) -> None: ...
