"""Small helpers for the detector tests (tests/detector/), and the IBKR source's settings
for the fake gateway (test_detector_ibkr_*.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from spy_analytics import ChainSnapshot
from spy_detector.backoff import Backoff
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr import IBSettings


async def eventually(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` holds (checked every 10 ms), or fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


SMALL = ShardSpec(0, 3)  # 2 of the 6 expiries: 20 contracts, ~1 s of paced requests


def ib_settings(port: int, **kw: object) -> IBSettings:
    """IBKR source settings for the fake gateway on `port`: 5 strikes, fast snapshots and
    backoff; `kw` overrides."""
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": 11,
        "strike_range": 0.02,  # 590..610: 5 strikes
        "dte_min": 0,
        "dte_max": 60,
        "dwell": 2.0,
        "snapshot_interval": 0.2,
        "connect_timeout": 5.0,
        "request_timeout": 10.0,
        "backoff": Backoff(initial=0.05, maximum=0.5, jitter=0.0),
    }
    base.update(kw)
    return IBSettings(**base)  # type: ignore[arg-type]


async def next_snapshot(agen: AsyncIterator[ChainSnapshot], within: float = 20.0) -> ChainSnapshot:
    return await asyncio.wait_for(anext(agen), within)
