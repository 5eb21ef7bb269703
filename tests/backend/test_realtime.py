"""Realtime delivery: the local hub with a real WebSocket client, and the Azure Web
PubSub path through the real SDK against a protocol-level stand-in of the service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import websockets
from spy_backend.realtime import SUBPROTOCOL, WebPubSubPublisher, tokens
from websockets.exceptions import InvalidStatus

from ._support import HubClient, anomalies, anomaly
from .conftest import Backend
from .webpubsub_standin import WebPubSubStandIn

OTHER_KEY = "another-key-of-at-least-32-bytes-0000"


def hub_url(backend: Backend, token: str) -> str:
    return f"ws://127.0.0.1:{backend.server.port}/client/hubs/spy?access_token={token}"


def local_token(backend: Backend, **kwargs: Any) -> str:
    key = backend.settings.local_hub_key.get_secret_value()
    return tokens.issue(key, backend.url, "spy", **kwargs)


async def test_connect_join_receive(backend: Backend) -> None:
    hub = await HubClient.connect(backend.url, group=None)
    try:
        assert hub.connected["type"] == "system"
        assert hub.connected["event"] == "connected"
        assert hub.connected["connectionId"]
        assert await hub.join("SPY", ack_id=7) == {"type": "ack", "ackId": 7, "success": True}
        backend.ingest({"anomalies": [anomaly()]})
        raw = await hub.recv()
        assert raw["type"] == "message" and raw["from"] == "group" and raw["group"] == "SPY"
        assert raw["dataType"] == "json"
        assert raw["data"]["type"] == "anomaly"
        assert raw["data"]["data"]["contract"]["strike"] == 600.0
        assert len(raw["data"]["data"]["id"]) == 40
    finally:
        await hub.close()


async def test_ack_errors_for_groups_the_token_does_not_allow(backend: Backend) -> None:
    hub = await HubClient.connect(backend.url)
    try:
        ack = await hub.join("QQQ", ack_id=2)
        assert ack["ackId"] == 2 and ack["success"] is False
        assert ack["error"]["name"] == "Forbidden"
        send = {"type": "sendToGroup", "group": "SPY", "ackId": 3, "dataType": "json", "data": 1}
        await hub.ws.send(json.dumps(send))
        ack = await hub.recv()
        assert (ack["ackId"], ack["success"], ack["error"]["name"]) == (3, False, "Forbidden")
        await hub.ws.send("not json")  # ignored, the connection stays usable
        assert (await hub.join("SPY", ack_id=4))["success"] is True
    finally:
        await hub.close()


async def test_token_groups_are_joined_at_connect_and_leave_stops_delivery(
    backend: Backend,
) -> None:
    token = local_token(backend, roles=tokens.join_roles(["SPY"]), groups=["SPY"])
    ws = await websockets.connect(hub_url(backend, token), subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    hub = HubClient(ws)
    try:
        assert (await hub.recv())["event"] == "connected"
        backend.ingest({"anomalies": [anomaly(strike=601.0)]})
        assert (await hub.messages(1))[0]["data"]["contract"]["strike"] == 601.0
        await ws.send(json.dumps({"type": "leaveGroup", "group": "SPY", "ackId": 9}))
        assert (await hub.recv())["success"] is True
        backend.ingest({"anomalies": [anomaly(strike=602.0)]})
        # Rejoin and send a sentinel: ordered delivery proves 602 was not delivered.
        assert (await hub.join("SPY", ack_id=10))["success"] is True
        backend.ingest({"anomalies": [anomaly(strike=603.0)]})
        assert (await hub.messages(1))[0]["data"]["contract"]["strike"] == 603.0
    finally:
        await hub.close()


@pytest.mark.parametrize("problem", ["wrong key", "expired", "other hub", "missing"])
async def test_bad_tokens_are_refused(backend: Backend, problem: str) -> None:
    roles = tokens.join_roles(["SPY"])
    token = {
        "wrong key": tokens.issue(
            "another-key-of-at-least-32-bytes-0000", backend.url, "spy", roles=roles
        ),
        "expired": local_token(
            backend, roles=roles, now=datetime.now(UTC) - timedelta(hours=2), minutes=1
        ),
        "other hub": tokens.issue(
            backend.settings.local_hub_key.get_secret_value(), backend.url, "other", roles=roles
        ),
        "missing": "",
    }[problem]
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(hub_url(backend, token), subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    assert info.value.response.status_code == 403


async def test_subprotocol_is_required(backend: Backend) -> None:
    token = local_token(backend, roles=tokens.join_roles(["SPY"]))
    with pytest.raises(InvalidStatus):
        await websockets.connect(hub_url(backend, token))


async def test_many_clients_each_get_every_message_in_order(backend: Backend) -> None:
    clients = [await HubClient.connect(backend.url) for _ in range(5)]
    try:
        backend.ingest({"anomalies": anomalies(50)})
        expected = [a["contract"]["strike"] for a in anomalies(50)]
        for client in clients:
            got = await client.messages(50)
            assert [m["data"]["contract"]["strike"] for m in got] == expected
        metrics = backend.client.get("/metrics").text
        assert "spy_backend_hub_connections 5.0" in metrics
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
def standin() -> Iterator[WebPubSubStandIn]:
    service = WebPubSubStandIn().start()
    yield service
    service.stop()


async def test_sdk_publisher_sends_signed_rest_calls(standin: WebPubSubStandIn) -> None:
    publisher = WebPubSubPublisher(standin.connection_string, hub="spy")
    try:
        await publisher.publish("SPY", {"type": "anomaly", "data": {"id": "x"}})
        url = await publisher.client_url(http_endpoint="ignored", groups=("SPY",))
    finally:
        await publisher.close()
    (sent,) = standin.wait_for(1)
    assert (sent.hub, sent.group) == ("spy", "SPY")
    assert sent.api_version and sent.content_type.startswith("application/json")
    assert sent.body == {"type": "anomaly", "data": {"id": "x"}}
    parts = urlsplit(url)
    assert (parts.scheme, parts.path) == ("ws", "/client/hubs/spy")
    claims = jwt.decode(
        parse_qs(parts.query)["access_token"][0],
        standin.key,
        algorithms=["HS256"],
        audience=f"{standin.endpoint}/client/hubs/spy",
    )
    assert claims["role"] == ["webpubsub.joinLeaveGroup.SPY"]


def test_backend_with_azure_realtime_publishes_new_records_once(
    start_backend: Any, standin: WebPubSubStandIn
) -> None:
    backend: Backend = start_backend(
        realtime="azure", webpubsub_connection_string=standin.connection_string
    )
    batch = {"anomalies": anomalies(3)}
    assert backend.ingest(batch).json()["stored"] == 3
    assert backend.ingest(batch).json()["duplicate"] == 3
    assert backend.ingest({"anomalies": [anomaly(strike=999.0)]}).json()["stored"] == 1
    sent = standin.wait_for(4)
    assert len(sent) == 4  # the duplicate batch was not re-broadcast
    assert [s.body["data"]["contract"]["strike"] for s in sent][-1] == 999.0
    assert {s.group for s in sent} == {"SPY"}
    negotiated = backend.client.get("/api/v1/negotiate").json()
    assert negotiated["url"].startswith(
        standin.endpoint.replace("http", "ws") + "/client/hubs/spy?"
    )


def test_publish_failure_does_not_fail_ingest(
    start_backend: Any, standin: WebPubSubStandIn
) -> None:
    wrong = standin.connection_string.replace(
        standin.key, "d3Jvbmcta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVzLTAwMDA="
    )
    backend: Backend = start_backend(realtime="azure", webpubsub_connection_string=wrong)
    assert backend.ingest({"anomalies": [anomaly()]}).json()["stored"] == 1
    assert "bad token" in standin.wait_for_rejection()
    metrics = backend.client.get("/metrics").text
    assert 'spy_backend_realtime_published_total{result="error"}' in metrics


async def test_binary_frames_and_abrupt_disconnects_are_harmless(backend: Backend) -> None:
    first = await HubClient.connect(backend.url)
    await first.ws.send(json.dumps({"type": "joinGroup", "group": "SPY", "ackId": 5}).encode())
    assert (await first.recv())["ackId"] == 5
    first.ws.transport.abort()  # no close handshake
    second = await HubClient.connect(backend.url)
    try:
        backend.ingest({"anomalies": anomalies(20)})
        assert len(await second.messages(20)) == 20
        # The aborted connection is forgotten once the server notices it.
        for _ in range(200):
            if "spy_backend_hub_connections 1.0" in backend.client.get("/metrics").text:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the aborted connection was never forgotten")
    finally:
        await second.close()
