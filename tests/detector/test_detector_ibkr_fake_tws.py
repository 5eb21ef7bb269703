"""The IBKR source through the real ib_async client against a fake gateway.

The peer (tests/detector/fake_tws.py) is a protocol-level stand-in for IB Gateway: it
speaks the TWS API socket protocol (API\\0 handshake with version range, startApi,
nextValidId, managedAccounts, reqSecDefOptParams, contract details, market-data ticks,
error codes 326/1100/1102/2104/100/101) on 127.0.0.1, and enforces the gateway's
50 msg/s and market-data-line limits. Nothing here talks to IBKR.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from detector_sink import IngestSink
from detector_support import eventually
from ib_async import IB, Stock
from spy_analytics import ChainSnapshot
from spy_detector.analysis import ChainAnalyzer
from spy_detector.backoff import Backoff
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher
from spy_detector.service import Detector
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr import ClientIdInUseError, IBKRSource, IBSettings
from spy_dev.fake_tws import FakeChain, FakeTWS

SMALL = ShardSpec(0, 3)  # 2 of the 6 expiries: 20 contracts, ~1 s of paced requests


def _settings(port: int, **kw: object) -> IBSettings:
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


async def _next(agen: AsyncIterator[ChainSnapshot], within: float = 20.0) -> ChainSnapshot:
    return await asyncio.wait_for(anext(agen), within)


async def test_snapshot_from_streamed_ticks(fake_tws: FakeTWS) -> None:
    """Handshake, option params, qualify, subscribe, ticks -> a snapshot of shard 0/2.

    The peer is fake_tws.FakeTWS, a protocol-level stand-in for IB Gateway (real TWS
    API wire protocol over 127.0.0.1), driven by the real ib_async client."""
    fake_tws.chain.missing = frozenset({(2, 605.0)})  # listed strike, no such contract
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port, market_data_type="delayed"), ShardSpec(0, 2), metrics)
    agen = src.snapshots()
    try:
        snap = await _next(agen)
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
        _settings(fake_tws.port, max_lines=10, strike_range=0.03, dwell=60.0),
        ShardSpec(0, 1),
        metrics,
    )
    agen = src.snapshots()
    try:
        first = await _next(agen)
        second = await _next(agen)
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


async def test_duplicate_client_id_is_refused(fake_tws: FakeTWS) -> None:
    """The IB Gateway stand-in answers a second connection with the same client id with
    error 326 and a close, as the real gateway does; the source fails fast."""
    metrics = DetectorMetrics()
    first = IBKRSource(_settings(fake_tws.port), SMALL, metrics)
    second = IBKRSource(_settings(fake_tws.port), SMALL, DetectorMetrics())
    agen = first.snapshots()
    try:
        await _next(agen)
        with pytest.raises(ClientIdInUseError):
            await asyncio.wait_for(second.connect(), 5)
        assert second.state == "client_id_in_use"
        assert second.not_ready() == ["ib connection client_id_in_use"]
        assert any(code == 326 for _, _, code in fake_tws.errors_sent)
        assert first.state == "connected"
    finally:
        await agen.aclose()
        await first.close()
        await second.close()


async def test_drop_and_reconnect_with_backoff(fake_tws: FakeTWS) -> None:
    """The IB Gateway stand-in drops the socket and refuses the first retry; the source
    backs off, reconnects and resumes the stream."""
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port), SMALL, metrics)
    agen = src.snapshots()
    try:
        await _next(agen)
        assert src.connects == 1
        fake_tws.refuse_connections = True  # the first retry fails: backoff must grow
        fake_tws.drop_connections()
        await eventually(lambda: src.state != "connected", what="disconnect noticed")
        pending = asyncio.ensure_future(_next(agen))
        await eventually(
            lambda: metrics.ib_reconnects._value.get() >= 2, what="a failed reconnect attempt"
        )
        fake_tws.refuse_connections = False
        snap = await asyncio.wait_for(pending, 20)
    finally:
        await agen.aclose()
        await src.close()
    assert src.connects == 2
    assert fake_tws.started == [11, 11]
    assert len(snap) > 0
    # the stream was rebuilt on the new connection: market data requested again
    assert len(fake_tws.requests_of(59)) == 2


async def test_unanswered_request_times_out_and_reconnects(fake_tws: FakeTWS) -> None:
    fake_tws.ignore_once = {78}  # the first reqSecDefOptParams gets no answer
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port, request_timeout=0.5), SMALL, metrics)
    agen = src.snapshots()
    try:
        snap = await _next(agen)
    finally:
        await agen.aclose()
        await src.close()
    assert len(snap) > 0
    assert src.connects == 2 and len(fake_tws.requests_of(78)) == 2
    assert metrics.registry.get_sample_value("spy_detector_ib_reconnects_total") == 1.0


async def test_connectivity_notices_flip_state(fake_tws: FakeTWS) -> None:
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port, snapshot_interval=0.05), SMALL, metrics)
    agen = src.snapshots()
    try:
        await _next(agen)
        assert any(code == 2104 for _, code, _ in src.errors), "farm OK notice received"
        fake_tws.broadcast_error(
            1100, "Connectivity between IB and Trader Workstation has been lost."
        )
        await eventually(lambda: src.state == "ib_link_lost", what="1100 handled")
        assert src.not_ready()
        fake_tws.broadcast_error(
            1102,
            "Connectivity between IB and Trader Workstation has been restored - data maintained.",
        )
        await eventually(lambda: src.state == "connected", what="1102 handled")
        fake_tws.push_ticks(bump=5)
        snap = await _next(agen)
        assert len(snap) > 0
    finally:
        await agen.aclose()
        await src.close()
    assert src.connects == 1, "1100/1102 do not tear the socket down"


async def test_data_lost_notice_resubscribes(fake_tws: FakeTWS) -> None:
    """1101: connectivity restored but market data lost -> the stream is rebuilt."""
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port), SMALL, metrics)
    agen = src.snapshots()
    try:
        await _next(agen)
        subscribed = len(fake_tws.requests_of(1))
        fake_tws.broadcast_error(
            1101, "Connectivity between IB and Trader Workstation has been restored - data lost."
        )
        snap = await _next(agen)
        await eventually(lambda: src.connects == 2, what="stream rebuilt")
        assert len(fake_tws.requests_of(1)) >= 2 * subscribed, "every line requested again"
        assert len(snap) > 0
    finally:
        await agen.aclose()
        await src.close()


async def test_gateway_to_backend_pipeline(fake_tws: FakeTWS, ingest_sink: IngestSink) -> None:
    """Fake gateway -> IBKR source -> real analytics -> publisher -> ingest sink, with
    readiness following the gateway connection."""
    metrics = DetectorMetrics()
    src = IBKRSource(_settings(fake_tws.port, snapshot_interval=0.1), SMALL, metrics)
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
        settings = _settings(fake_tws.port, client_id=20 + index, snapshot_interval=interval)
        src = IBKRSource(settings, ShardSpec(index, 2), DetectorMetrics())
        agen = src.snapshots()
        try:
            return [(await _next(agen)).ts_epoch for _ in range(5)]
        finally:
            await agen.aclose()
            await src.close()

    a, b = await asyncio.gather(stamps(0), stamps(1))
    for ts in a + b:
        assert ts / interval == pytest.approx(round(ts / interval), abs=1e-6), ts
    assert len(a) == len(set(a)) and len(b) == len(set(b)), "one snapshot per slot"
    assert len(set(a[1:]) & set(b[1:])) >= 2, (a, b)
