"""Ingest batching on real Azurite (issue 12, finding 8): concurrent requests coalesce
into entity-group transactions per partition, many partitions drain concurrently,
duplicates and failures are reported per record.

Transactions are counted at `spy_backend.storage.batch.submit_creates`, the one function
that sends them (the real call runs). The outage of one partition is injected there
as the transport error aiohttp raises when Azurite drops a connection; every other call
reaches Azurite.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from spy_backend.models import AnomalyCreate, PublicRecord, Resource
from spy_backend.storage import StorageUnavailableError, TableStore, batch, writes
from spy_backend.storage.entities import to_entity
from spy_dev.azurite import Azurite

from ._support import T0, anomaly
from .conftest import Backend


def records(n: int, days: int = 1, offset: int = 0) -> list[PublicRecord]:
    """`n` distinct anomalies spread over `days` trading days (partitions)."""
    return [
        AnomalyCreate.model_validate(
            anomaly(
                T0 - timedelta(days=i % days) + timedelta(microseconds=offset + i),
                strike=500.0 + i % 200,
            )
        ).public()
        for i in range(n)
    ]


@pytest.fixture
async def store(azurite: Azurite) -> AsyncIterator[TableStore]:
    instance = TableStore(azurite.connection_string, "b" + uuid.uuid4().hex[:12], timeout=20)
    await instance.open()
    yield instance
    await instance.close()


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the transactions sent (each still reaches Azurite)."""
    sizes: list[int] = []
    original = batch.submit_creates

    async def counted(table: Any, entities: list[dict[str, Any]]) -> None:
        sizes.append(len(entities))
        await original(table, entities)

    monkeypatch.setattr(writes, "submit_creates", counted)
    return sizes


async def stored_ids(store: TableStore) -> list[str]:
    table = store._table(Resource.ANOMALY)
    return [e["id"] async for e in table.list_entities(select=["id"])]


def test_a_mixed_partition_batch_of_1000_lands_completely_and_idempotently(
    start_backend: Any,
) -> None:
    backend: Backend = start_backend(storage_timeout_seconds=20)  # a loaded shared machine
    rows = [anomaly(T0 - timedelta(days=i % 40, microseconds=i), strike=500.0 + i % 200)
            for i in range(1000)]  # fmt: skip
    first = backend.ingest({"anomalies": rows})
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 1000 and first.json()["duplicate"] == 0
    again = backend.ingest({"anomalies": rows})
    assert again.status_code == 200, again.text
    assert again.json()["stored"] == 0 and again.json()["duplicate"] == 1000
    items: list[dict[str, Any]] = []
    cursor = None
    while True:  # every record is stored once, in every one of the 40 partitions
        params = {"start": "2026-10-01T00:00:00Z", "end": "2026-11-26T00:00:00Z", "limit": 1000}
        page = backend.client.get("/api/v1/anomalies", params={**params, "cursor": cursor} if
                                  cursor else params).json()  # fmt: skip
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert len(items) == len({i["id"] for i in items}) == 1000


async def test_concurrent_requests_share_transactions(
    store: TableStore, transactions: list[int]
) -> None:
    """20 concurrent 10-record inserts into one partition: a few transactions of up to
    100 instead of 20 of 10 (the old path sent one per request)."""
    await store.insert_new(Resource.ANOMALY, records(1, offset=999_999))  # the day is known
    transactions.clear()
    calls = [records(10, offset=1000 * c) for c in range(20)]
    outcomes = await asyncio.gather(*(store.insert_new(Resource.ANOMALY, r) for r in calls))
    assert [len(o.stored) for o in outcomes] == [10] * 20
    assert sum(transactions) == 200 and len(transactions) <= 4, transactions
    assert max(transactions) == 100
    assert len(await stored_ids(store)) == 201


async def test_a_retried_request_in_a_shared_transaction_slows_only_itself(
    store: TableStore, transactions: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-sent request (all duplicates) coalesced with new ones: it learns `duplicate`,
    the others are stored by transactions; only its own records go one at a time."""
    resent = records(10, offset=999_000)
    await store.insert_new(Resource.ANOMALY, resent)
    singles: list[str] = []
    original = store._table(Resource.ANOMALY).__class__.create_entity

    async def counted(self: Any, entity: dict[str, Any], **kwargs: Any) -> Any:
        singles.append(entity["RowKey"])
        return await original(self, entity, **kwargs)

    monkeypatch.setattr(store._table(Resource.ANOMALY).__class__, "create_entity", counted)
    transactions.clear()
    calls = [records(10, offset=1000 * c) for c in range(9)]
    calls.insert(4, resent)
    outcomes = await asyncio.gather(*(store.insert_new(Resource.ANOMALY, r) for r in calls))
    assert outcomes[4].duplicate == 10 and not outcomes[4].stored
    assert all(len(o.stored) == 10 for i, o in enumerate(outcomes) if i != 4)
    assert len(singles) <= 9, singles  # the resent request's others, never the new ones
    assert len(await stored_ids(store)) == 100


async def test_one_partition_failing_reports_its_records_and_loses_none_of_the_others(
    store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_records = records(300, days=3)
    by_pk: dict[str, list[PublicRecord]] = {}
    for record in batch_records:
        by_pk.setdefault(to_entity(record)["PartitionKey"], []).append(record)
    broken = sorted(by_pk)[1]
    original = batch.submit_creates

    async def outage_in_one_partition(table: Any, entities: list[dict[str, Any]]) -> None:
        if entities[0]["PartitionKey"] == broken:
            raise ServiceResponseError("Connection reset by peer")  # what aiohttp raises
        await original(table, entities)

    monkeypatch.setattr(writes, "submit_creates", outage_in_one_partition)
    with pytest.raises(StorageUnavailableError) as failure:
        await store.insert_new(Resource.ANOMALY, batch_records)
    assert {r.id for r in failure.value.failed} == {r.id for r in by_pk[broken]}
    others = {r.id for pk, rs in by_pk.items() if pk != broken for r in rs}
    assert {r.id for r in failure.value.stored} == others
    assert set(await stored_ids(store)) == others  # nothing of the others was lost

    monkeypatch.setattr(writes, "submit_creates", original)  # the partition is back
    retried = await store.insert_new(Resource.ANOMALY, batch_records)
    assert {r.id for r in retried.stored} == {r.id for r in by_pk[broken]}
    assert retried.duplicate == len(others)
    assert len(await stored_ids(store)) == 300
