"""POST /api/v1/ingest: the detector's batches, stored once and broadcast once."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, HTTPException, status

from spy_backend.api.deps import IngestAuth, MetricsDep, PublisherDep, StoreDep
from spy_backend.metrics import BackendMetrics
from spy_backend.models import IngestBatch, IngestResult, KindCount, Problem, PublicRecord, Resource
from spy_backend.realtime import Publisher
from spy_backend.storage import StorageUnavailableError

router = APIRouter(tags=["ingest"])


async def broadcast(
    publisher: Publisher, metrics: BackendMetrics, resource: Resource, records: list[PublicRecord]
) -> None:
    """Push new records to their symbol's group; a failed push never fails the ingest."""
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_group[record.symbol].append(
            {"type": resource.value, "data": record.model_dump(mode="json")}
        )
    for group, messages in by_group.items():
        failed = await publisher.publish_many(group, messages)
        metrics.published.labels("ok").inc(len(messages) - failed)
        metrics.published.labels("error").inc(failed)


@router.post(
    "/ingest",
    response_model=IngestResult,
    dependencies=[IngestAuth],
    summary="Store a batch from the detector and broadcast the new records",
    responses={
        400: {"model": Problem, "description": "Body could not be decoded."},
        401: {"model": Problem, "description": "No bearer token."},
        403: {"model": Problem, "description": "Wrong bearer token."},
        413: {"model": Problem, "description": "Body too large."},
        503: {"model": Problem, "description": "Storage unavailable; retry the same batch."},
    },
)
async def ingest(
    batch: IngestBatch, store: StoreDep, publisher: PublisherDep, metrics: MetricsDep
) -> IngestResult:
    kinds: dict[Resource, KindCount] = {}
    for resource, records in batch.by_resource().items():
        if not records:
            continue
        try:
            outcome = await store.insert_new(resource, records)
        except StorageUnavailableError as exc:
            # What was durably created is broadcast now: a retry will find it duplicate.
            await broadcast(publisher, metrics, resource, exc.stored)
            metrics.storage_unavailable.inc()
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "storage unavailable; retry the batch",
                headers={"Retry-After": "1"},
            ) from exc
        await broadcast(publisher, metrics, resource, outcome.stored)
        kinds[resource] = KindCount(stored=len(outcome.stored), duplicate=outcome.duplicate)
        metrics.records.labels(resource.value, "stored").inc(len(outcome.stored))
        metrics.records.labels(resource.value, "duplicate").inc(outcome.duplicate)
    return IngestResult(
        stored=sum(k.stored for k in kinds.values()),
        duplicate=sum(k.duplicate for k in kinds.values()),
        kinds=kinds,
    )
