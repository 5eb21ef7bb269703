"""Storage stop/start while the detector keeps ingesting: 503 while down, readiness
false, and afterwards every acknowledged record is stored once and broadcast at most
once (the producer retries a 503'd batch unchanged, like spy_detector's publisher)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from spy_dev.azurite import Azurite

from ._support import T0, HubClient, anomaly
from .conftest import TOKEN, Backend

BATCHES = 40
PER_BATCH = 5


def wait_until(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Producer(threading.Thread):
    """Posts numbered batches; retries each until acknowledged with 200."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acked: list[str] = []
        self.unavailable = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=10) as client:
                for b in range(BATCHES):
                    rows = [
                        anomaly(T0.replace(second=0, microsecond=b * 1000 + i), strike=500.0 + i)
                        for i in range(PER_BATCH)
                    ]
                    self._post_until_acked(client, rows)
        except BaseException as exc:  # surfaced by the test, with its traceback
            self.error = exc
        finally:
            self.done.set()

    def _post_until_acked(self, client: httpx.Client, rows: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = client.post(
                    "/api/v1/ingest",
                    json={"anomalies": rows},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                result = response.json()
                assert result["stored"] + result["duplicate"] == len(rows), result
                self.acked += [self._id(r) for r in rows]
                return
            assert response is None or response.status_code == 503, response.text
            self.unavailable += 1
            time.sleep(0.05)  # the producer's retry backoff, not a test wait
        raise AssertionError("batch never acknowledged")

    @staticmethod
    def _id(row: dict[str, Any]) -> str:
        from spy_backend.models import AnomalyCreate, anomaly_id

        return anomaly_id(AnomalyCreate.model_validate(row))


async def test_storage_stop_start_during_ingest(tmp_path: Path, start_backend: Any) -> None:
    azurite = Azurite(location=tmp_path / "azurite").start()
    try:
        backend: Backend = start_backend(
            connection_string=azurite.connection_string, storage_timeout_seconds=1.0
        )
        hub = await HubClient.connect(backend.url)
        producer = Producer(backend.url)
        producer.start()
        wait_until(lambda: len(producer.acked) >= 8 * PER_BATCH, what="first acks")
        azurite.stop()
        wait_until(lambda: producer.unavailable >= 3, what="503s while storage is down")
        assert backend.client.get("/readyz").status_code == 503
        azurite.start()
        wait_until(lambda: backend.client.get("/readyz").status_code == 200, what="readiness")
        wait_until(producer.done.is_set, timeout=90, what="producer")
        assert producer.error is None, producer.error
        assert len(producer.acked) == BATCHES * PER_BATCH

        page = backend.client.get(
            "/api/v1/anomalies",
            params={"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z", "limit": 1000},
        ).json()
        stored = [a["id"] for a in page["items"]]
        assert len(stored) == len(set(stored)), "duplicate rows"
        assert set(producer.acked) <= set(stored), "acknowledged records lost"

        # Broadcasts: a sentinel after the run bounds what was sent, in order.
        backend.ingest({"anomalies": [anomaly(T0.replace(hour=20), strike=999.0)]})
        seen: list[str] = []
        while True:
            message = (await hub.messages(1))[0]
            if message["data"]["contract"]["strike"] == 999.0:
                break
            seen.append(message["data"]["id"])
        assert len(seen) == len(set(seen)), "a record was broadcast twice"
        assert set(seen) <= set(stored)
        await hub.close()
    finally:
        azurite.stop()
