"""Replay of recorded snapshot files, and the recorder that writes them.

Used by ``service.Detector`` when ``SPY_SOURCE=replay`` (``SPY_REPLAY_FILE``), and by
``SPY_RECORD_FILE`` to record whatever source runs. Files are spy_analytics JSONL
snapshot files (docs/analytics.md, "Snapshot files"), so a recording from the live
gateway replays through exactly the same analytics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO

from spy_analytics import ChainSnapshot, read_snapshots, write_snapshot

from spy_detector.sharding import ShardSpec, shard_snapshot


class ReplaySource:
    """Yields the snapshots of one or more files, in order.

    ``speed`` 0 replays as fast as the consumer takes them; ``speed`` s > 0 waits the
    recorded gap between snapshots divided by s (1 = real time). ``loop`` restarts
    at the first file after the last (a demo feed).
    """

    name = "replay"

    def __init__(
        self,
        paths: Sequence[str | Path],
        shard: ShardSpec | None = None,
        *,
        speed: float = 0.0,
        loop: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not paths:
            raise ValueError("replay needs at least one file")
        for p in paths:
            if not Path(p).is_file():
                raise FileNotFoundError(str(p))
        self._paths = [Path(p) for p in paths]
        self._shard = shard or ShardSpec()
        self._speed = speed
        self._loop = loop
        self._sleep = sleep
        self._closed = False
        self.replayed = 0

    def not_ready(self) -> list[str]:
        return []

    async def close(self) -> None:
        self._closed = True

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        previous_ts: float | None = None
        while not self._closed:
            for path in self._paths:
                for snap in read_snapshots(path):
                    if self._closed:
                        return
                    if self._speed > 0 and previous_ts is not None:
                        gap = max(0.0, snap.ts_epoch - previous_ts) / self._speed
                        await self._sleep(gap)
                    else:
                        await asyncio.sleep(0)  # let the loop breathe between snapshots
                    previous_ts = snap.ts_epoch
                    self.replayed += 1
                    yield shard_snapshot(snap, self._shard)
            if not self._loop:
                return
            previous_ts = None


class SnapshotRecorder:
    """Appends every snapshot it is given to a JSONL snapshot file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self.written = 0

    def write(self, snapshot: ChainSnapshot) -> None:
        if self._fh is None:
            raise ValueError("recorder is closed")
        write_snapshot(self._fh, snapshot)
        self._fh.flush()
        self.written += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
