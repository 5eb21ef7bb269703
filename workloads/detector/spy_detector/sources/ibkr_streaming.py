"""Streaming the discovered window and building its snapshots (step 5 in ibkr.py):
the subscriptions, the wall-clock snapshot grid shared by the shards, and the
underlying's live spot.

A mixin of ``ibkr.IBKRSource`` (its only user), whose ``snapshots`` loop calls
``_stream`` after each (re)connect and discovery; the connection and the quotes are
the source's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, Contract, Ticker
from spy_analytics import ChainSnapshot

from spy_detector.metrics import DetectorMetrics
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr_chain import contract_key as _key
from spy_detector.sources.ibkr_chain import num as _num
from spy_detector.sources.ibkr_chain import quote_record, rotation_batches
from spy_detector.sources.ibkr_chain import quoted as _quoted
from spy_detector.sources.ibkr_connection import IBConnection
from spy_detector.sources.ibkr_settings import IBSettings
from spy_detector.spot_history import SpotHistory


class ChainStreaming:
    """Subscribe, wait, snapshot. The state it shares with ``IBKRSource`` is set there."""

    settings: IBSettings
    shard: ShardSpec
    _metrics: DetectorMetrics
    _clock: Callable[[], datetime]
    _conn: IBConnection
    _und_ticker: Ticker | None
    _spot_history: SpotHistory
    _contracts: list[Contract]
    _context: frozenset[str]
    _quotes: dict[tuple[str, float, str], dict[str, Any]]

    def _require(self) -> IB:
        return self._conn.require()

    async def _wait_ticks(self, within: float) -> None:
        await self._conn.wait_ticks(within)

    def _spot(self, *, allow_close: bool = False) -> float | None:
        """The underlying's live price (last within the quote, else the midpoint).

        Never the previous close for a snapshot: option quotes priced off a live spot
        compared against yesterday's close raise false parity / early-exercise breaks.
        Without a live price this returns None and the snapshot is skipped as
        ``bad_spot``. ``allow_close`` is for strike-window discovery only.
        """
        t = self._und_ticker
        if t is None:
            return None
        values = (t.marketPrice(), t.close) if allow_close else (t.marketPrice(),)
        for value in values:
            v = _num(value)
            if v:
                return v
        return None

    # -- streaming --------------------------------------------------------------------
    async def _stream(self) -> AsyncIterator[ChainSnapshot]:
        s = self.settings
        lines = s.option_lines
        if len(self._contracts) <= lines:
            tickers = self._subscribe(self._contracts)
            loop = asyncio.get_running_loop()
            # the requests leave at the throttled rate; the dwell starts after
            await self._wait_quoted(tickers, self._send_time(len(tickers)) + s.dwell)
            while True:
                next_at = loop.time() + self._until_next_slot()
                yield self._snapshot(tickers)
                while loop.time() < next_at:
                    await self._wait_ticks(next_at - loop.time())
                    self._require()
        else:
            while True:
                for batch in rotation_batches(self._contracts, lines):
                    tickers = self._subscribe(batch)
                    # the requests leave at the throttled rate; the dwell starts after
                    await self._wait_quoted(tickers, self._send_time(len(batch)) + s.dwell)
                    for c, t in tickers.items():
                        self._quotes[_key(c)] = quote_record(c, t)
                    self._unsubscribe(batch)
                yield self._snapshot({})

    def _until_next_slot(self) -> float:
        """Seconds to the next snapshot. With several shards, snapshots fall on the
        wall-clock grid of ``snapshot_interval`` and carry the slot's time
        (``_snapshot``), so every shard's parts of one slot share a timestamp and the
        backend can merge them; alone, one interval from now."""
        interval = self.settings.snapshot_interval
        if self.shard.count == 1 or interval <= 0:
            return interval
        now = self._clock().timestamp()
        return _slot(now, interval) + interval - now

    def _send_time(self, messages: int) -> float:
        return messages / self.settings.max_msgs_per_sec

    def _subscribe(self, contracts: Sequence[Contract]) -> dict[Contract, Ticker]:
        ib = self._require()
        tickers = {
            c: ib.reqMktData(c, self.settings.generic_ticks, False, False) for c in contracts
        }
        self._metrics.ib_lines.set(1 + len(contracts))
        return tickers

    def _unsubscribe(self, contracts: Sequence[Contract]) -> None:
        ib = self._require()
        for c in contracts:
            ib.cancelMktData(c)
        self._metrics.ib_lines.set(1)

    async def _wait_quoted(self, tickers: dict[Contract, Ticker], within: float) -> None:
        """Wait until every ticker is quoted (see ``_quoted``), at most ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not all(_quoted(t) for t in tickers.values()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._wait_ticks(remaining)
            self._require()

    def _snapshot(self, tickers: dict[Contract, Ticker]) -> ChainSnapshot:
        for c, t in tickers.items():
            self._quotes[_key(c)] = quote_record(c, t)
        spot = self._spot()
        now = self._clock()
        interval = self.settings.snapshot_interval
        if self.shard.count > 1 and interval > 0:
            # the slot's time (see _until_next_slot); quotes newer than it count as fresh
            now = datetime.fromtimestamp(_slot(now.timestamp(), interval), UTC)
        snapshot = ChainSnapshot.from_records(
            [self._quotes[k] for k in sorted(self._quotes)],
            ts=now,
            symbol=self.settings.symbol,
            spot=spot if spot is not None else math.nan,
            rate=self.settings.rate,
            div_yield=self.settings.div_yield,
            spot_history=self._spot_history.arrays(now.timestamp()),
        )
        return dataclasses.replace(snapshot, context_expiries=self._context)


def _slot(epoch: float, interval: float) -> float:
    """The grid time (a multiple of ``interval``) a snapshot taken at ``epoch`` belongs
    to; a timer firing up to 5% of an interval early still lands on its slot."""
    return math.floor(epoch / interval + 0.05) * interval
