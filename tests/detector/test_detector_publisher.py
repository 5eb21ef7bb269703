"""Publisher against a real HTTP sink on 127.0.0.1: auth, batching, outage, overflow."""

from __future__ import annotations

import socket

from detector_sink import IngestSink
from detector_support import eventually
from spy_detector.backoff import Backoff
from spy_detector.metrics import DetectorMetrics
from spy_detector.publisher import Publisher

FAST = Backoff(initial=0.01, maximum=0.05, jitter=0.0)


def _anomalies(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"id": f"a{i:05d}", "kind": "iv_residual", "severity": "HIGH", "score": 5.0}
        for i in range(start, start + n)
    ]


def _value(metrics: DetectorMetrics, name: str, **labels: str) -> float:
    v = metrics.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


async def test_publishes_with_bearer_token_in_batches(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        pub.submit({"anomalies": _anomalies(2500), "market": [{"ts": "t", "spot": 600.0}]})
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert ingest_sink.count("anomalies") == 2500
    assert ingest_sink.count("market") == 1
    assert ingest_sink.statuses == [200, 200, 200], "2501 items -> 3 requests of <= 1000"
    assert _value(metrics, "spy_detector_publish_items_total", type="anomalies") == 2500


async def test_outage_buffers_then_flushes_nothing_lost(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, max_items=1000, backoff=FAST)
    await pub.start()
    try:
        ingest_sink.down = True
        pub.submit({"anomalies": _anomalies(300)})
        await eventually(lambda: ingest_sink.statuses.count(503) >= 3, what="retries")
        pub.submit({"anomalies": _anomalies(300, start=300), "flow": [{"net_premium": 1.0}]})
        assert pub.buffered == 601
        assert ingest_sink.count("anomalies") == 0
        ingest_sink.down = False
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert sorted(ingest_sink.anomaly_ids) == [f"a{i:05d}" for i in range(600)]
    assert all(n == 1 for n in ingest_sink.anomaly_ids.values()), "each item sent once"
    assert ingest_sink.count("flow") == 1
    assert _value(metrics, "spy_detector_publish_failures_total", reason="http_503") >= 3
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 0


async def test_overflow_drops_oldest_and_counts(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, max_items=100, backoff=FAST)
    await pub.start()
    try:
        ingest_sink.down = True
        pub.submit({"anomalies": _anomalies(60)})
        await eventually(lambda: ingest_sink.statuses.count(503) >= 1, what="a failed attempt")
        dropped = pub.submit({"anomalies": _anomalies(90, start=60)})
        assert dropped == 50 and pub.buffered == 100
        ingest_sink.down = False
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    # the newest 100 survive; the oldest 50 were dropped and counted
    assert sorted(ingest_sink.anomaly_ids) == [f"a{i:05d}" for i in range(50, 150)]
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 50


async def test_overflow_while_a_batch_is_in_flight(ingest_sink: IngestSink) -> None:
    """Items displaced from the buffer during a slow POST are not resent or re-dropped."""
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, max_items=100, backoff=FAST)
    ingest_sink.delay = 0.3
    await pub.start()
    try:
        pub.submit({"anomalies": _anomalies(100)})
        await eventually(lambda: ingest_sink.in_flight == 1, what="batch in flight")
        assert pub.submit({"anomalies": _anomalies(50, start=100)}) == 50
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert sorted(ingest_sink.anomaly_ids) == [f"a{i:05d}" for i in range(150)]
    assert all(n == 1 for n in ingest_sink.anomaly_ids.values()), "nothing sent twice"


async def test_invalid_item_costs_only_itself(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        items = _anomalies(700)
        items[123]["invalid"] = True
        pub.submit({"anomalies": items, "market": [{"spot": 600.0, "invalid": True}]})
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert len(ingest_sink.anomaly_ids) == 699 and "a00123" not in ingest_sink.anomaly_ids
    assert all(n == 1 for n in ingest_sink.anomaly_ids.values())
    assert ingest_sink.count("market") == 0
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 1
    assert _value(metrics, "spy_detector_publish_drops_total", type="market") == 1
    assert ingest_sink.requests < 60, "bisection, not one request per item"


async def test_invalid_item_bisected_when_the_422_names_no_location(
    ingest_sink: IngestSink,
) -> None:
    ingest_sink.name_invalid = False
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        items = _anomalies(700)
        items[123]["invalid"] = True
        pub.submit({"anomalies": items})
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert len(ingest_sink.anomaly_ids) == 699 and "a00123" not in ingest_sink.anomaly_ids
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 1
    assert 2 < ingest_sink.requests < 60, "bisection, not one request per item"


async def test_all_invalid_batch_takes_a_handful_of_posts(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        items = [{**a, "invalid": True} for a in _anomalies(1000)]
        pub.submit({"anomalies": items})
        await pub.wait_idle(within=10)
        pub.submit({"anomalies": _anomalies(5, start=2000)})
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 1000
    assert ingest_sink.requests <= 3, f"{ingest_sink.requests} POSTs for one rejected batch"
    assert sorted(ingest_sink.anomaly_ids) == [f"a{i:05d}" for i in range(2000, 2005)]


async def test_422_locations_drop_exactly_the_named_items(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        items = _anomalies(600)
        for i in (0, 7, 599):
            items[i]["invalid"] = True
        flows: list[dict[str, object]] = [{"net_premium": 1.0}, {"invalid": True}]
        pub.submit({"anomalies": items, "flow": flows})
        await pub.wait_idle(within=10)
    finally:
        await pub.stop()
    assert ingest_sink.statuses == [422, 200], "one rejected round trip, then the rest"
    assert len(ingest_sink.anomaly_ids) == 597
    assert not {"a00000", "a00007", "a00599"} & set(ingest_sink.anomaly_ids)
    assert ingest_sink.received["flow"] == [{"net_premium": 1.0}]
    assert _value(metrics, "spy_detector_publish_drops_total", type="anomalies") == 3
    assert _value(metrics, "spy_detector_publish_drops_total", type="flow") == 1


async def test_non_finite_item_is_dropped_and_publishing_goes_on(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST)
    await pub.start()
    try:
        pub.submit(
            {
                "flow": [
                    {"call_premium": float("inf")},
                    {"call_premium": float("nan")},
                    {"call_premium": 1.0},
                ]
            }
        )
        await pub.wait_idle(within=5)
        pub.submit({"anomalies": _anomalies(2)})
        await pub.wait_idle(within=5)
        assert pub.not_ready() == []
    finally:
        await pub.stop()
    assert ingest_sink.received["flow"] == [{"call_premium": 1.0}]
    assert sorted(ingest_sink.anomaly_ids) == ["a00000", "a00001"]
    assert _value(metrics, "spy_detector_publish_drops_total", type="flow") == 2


async def test_unexpected_error_never_kills_the_run_loop(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, ingest_sink.token, metrics, backoff=FAST, unhealthy_after=3)
    real_deliver = pub._deliver
    boom = {"left": 5}

    async def flaky(batch: list[tuple[int, str, dict[str, object]]]) -> tuple[int | None, bool]:
        if boom["left"]:
            boom["left"] -= 1
            raise RuntimeError("bug")
        return await real_deliver(batch)  # type: ignore[arg-type]

    pub._deliver = flaky  # type: ignore[method-assign]
    await pub.start()
    try:
        pub.submit({"anomalies": _anomalies(3)})
        await eventually(lambda: pub.not_ready() != [], what="failures reach readiness")
        assert "consecutive failed posts" in pub.not_ready()[0]
        await pub.wait_idle(within=5)
        assert pub.not_ready() == [], "a success makes it ready again"
    finally:
        await pub.stop()
    assert sorted(ingest_sink.anomaly_ids) == ["a00000", "a00001", "a00002"]
    assert _value(metrics, "spy_detector_publish_failures_total", reason="internal") == 5


async def test_dead_task_is_not_ready(ingest_sink: IngestSink) -> None:
    pub = Publisher(ingest_sink.url, ingest_sink.token, DetectorMetrics(), backoff=FAST)
    await pub.start()
    try:
        assert pub.not_ready() == []
        assert pub._task is not None
        pub._task.cancel()
        await eventually(lambda: pub.not_ready() != [], what="dead task noticed")
        assert pub.not_ready() == ["publisher stopped"]
    finally:
        await pub.stop(drain_timeout=0.1)


async def test_unreachable_backend_keeps_items(ingest_sink: IngestSink) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    metrics = DetectorMetrics()
    pub = Publisher(f"http://127.0.0.1:{dead_port}", "t", metrics, backoff=FAST, timeout=1.0)
    await pub.start()
    try:
        pub.submit({"gex": [{"net_gex": 1.0}]})
        await eventually(
            lambda: _value(metrics, "spy_detector_publish_failures_total", reason="network") >= 2,
            what="network failures counted",
        )
        assert pub.buffered == 1
    finally:
        await pub.stop(drain_timeout=0.1)


async def test_wrong_token_is_retried_not_dropped(ingest_sink: IngestSink) -> None:
    metrics = DetectorMetrics()
    pub = Publisher(ingest_sink.url, "wrong", metrics, backoff=FAST)
    await pub.start()
    try:
        pub.submit({"anomalies": _anomalies(3)})
        await eventually(lambda: ingest_sink.statuses.count(403) >= 2, what="403 retried")
        assert pub.buffered == 3
    finally:
        await pub.stop(drain_timeout=0.1)
    assert _value(metrics, "spy_detector_publish_failures_total", reason="auth") >= 2


def test_backoff_grows_and_caps() -> None:
    b = Backoff(initial=0.5, maximum=4.0, jitter=0.0)
    assert [b.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittered = Backoff(initial=1.0, maximum=10.0, jitter=0.2)
    assert jittered.delay(0, rand=lambda: 0.0) == 0.8
    assert jittered.delay(0, rand=lambda: 1.0) == 1.2
