"""The IBKR source's connection trouble through the real ib_async client against the
fake gateway (spy_dev.fake_tws): a duplicate client id is refused, a drop reconnects
with backoff, an unanswered request times out and reconnects, connectivity notices
flip the state, and a data-lost notice resubscribes.
"""

from __future__ import annotations

import asyncio

import pytest
from detector_support import SMALL, eventually, ib_settings, next_snapshot
from spy_detector.metrics import DetectorMetrics
from spy_detector.sources.ibkr import ClientIdInUseError, IBKRSource
from spy_dev.fake_tws import FakeTWS


async def test_duplicate_client_id_is_refused(fake_tws: FakeTWS) -> None:
    """The IB Gateway stand-in answers a second connection with the same client id with
    error 326 and a close, as the real gateway does; the source fails fast."""
    metrics = DetectorMetrics()
    first = IBKRSource(ib_settings(fake_tws.port), SMALL, metrics)
    second = IBKRSource(ib_settings(fake_tws.port), SMALL, DetectorMetrics())
    agen = first.snapshots()
    try:
        await next_snapshot(agen)
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
    src = IBKRSource(ib_settings(fake_tws.port), SMALL, metrics)
    agen = src.snapshots()
    try:
        await next_snapshot(agen)
        assert src.connects == 1
        fake_tws.refuse_connections = True  # the first retry fails: backoff must grow
        fake_tws.drop_connections()
        await eventually(lambda: src.state != "connected", what="disconnect noticed")
        pending = asyncio.ensure_future(next_snapshot(agen))
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
    src = IBKRSource(ib_settings(fake_tws.port, request_timeout=0.5), SMALL, metrics)
    agen = src.snapshots()
    try:
        snap = await next_snapshot(agen)
    finally:
        await agen.aclose()
        await src.close()
    assert len(snap) > 0
    assert src.connects == 2 and len(fake_tws.requests_of(78)) == 2
    assert metrics.registry.get_sample_value("spy_detector_ib_reconnects_total") == 1.0


async def test_connectivity_notices_flip_state(fake_tws: FakeTWS) -> None:
    metrics = DetectorMetrics()
    src = IBKRSource(ib_settings(fake_tws.port, snapshot_interval=0.05), SMALL, metrics)
    agen = src.snapshots()
    try:
        await next_snapshot(agen)
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
        snap = await next_snapshot(agen)
        assert len(snap) > 0
    finally:
        await agen.aclose()
        await src.close()
    assert src.connects == 1, "1100/1102 do not tear the socket down"


async def test_data_lost_notice_resubscribes(fake_tws: FakeTWS) -> None:
    """1101: connectivity restored but market data lost -> the stream is rebuilt."""
    metrics = DetectorMetrics()
    src = IBKRSource(ib_settings(fake_tws.port), SMALL, metrics)
    agen = src.snapshots()
    try:
        await next_snapshot(agen)
        subscribed = len(fake_tws.requests_of(1))
        fake_tws.broadcast_error(
            1101, "Connectivity between IB and Trader Workstation has been restored - data lost."
        )
        snap = await next_snapshot(agen)
        await eventually(lambda: src.connects == 2, what="stream rebuilt")
        assert len(fake_tws.requests_of(1)) >= 2 * subscribed, "every line requested again"
        assert len(snap) > 0
    finally:
        await agen.aclose()
        await src.close()
