"""POST /api/v1/ingest: the detector's batches, stored once and broadcast once."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from spy_backend.api.deps import IngestAuth, MetricsDep, PartsDep, PublisherDep, StoreDep
from spy_backend.metrics import BackendMetrics
from spy_backend.models import IngestBatch, IngestResult, KindCount, Problem, PublicRecord, Resource
from spy_backend.realtime import Publisher
from spy_backend.shards import Merged, drop_rounds, merge_parts, split_parts
from spy_backend.storage import Rejection, StorageUnavailableError, TableStore


class UndecodableBodyIs422(APIRoute):
    """A body FastAPI can not parse is a 422, like one that is not JSON.

    FastAPI answers a JSON syntax error with 422 (`json_invalid`) but any other parse
    failure (bytes that are not UTF-8, nesting too deep) with 400; a producer must drop
    both rather than retry them, so both are 422 (the detector drops 413/422 items and
    retries anything else).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:  # FastAPI raises Starlette's own
                if exc.status_code != status.HTTP_400_BAD_REQUEST:
                    raise
                error = {"type": "json_invalid", "loc": ("body",), "input": None}
                error["msg"] = "body could not be decoded as JSON"
                raise RequestValidationError([error]) from exc

        return route


router = APIRouter(tags=["ingest"], route_class=UndecodableBodyIs422)
BATCH_FIELD = {
    Resource.ANOMALY: "anomalies",
    Resource.MARKET: "market",
    Resource.GEX: "gex",
    Resource.FLOW: "flow",
    Resource.SIGNAL: "signals",
}


def rejected_error(
    resource: Resource, records: list[PublicRecord], rejected: list[Rejection]
) -> list[dict[str, Any]]:
    """422 details naming each refused record by its index in the posted list."""
    errors = []
    for rejection in rejected:
        index = next(i for i, r in enumerate(records) if r is rejection.record)
        errors.append(
            {
                "type": "storage_rejected",
                "loc": ("body", BATCH_FIELD[resource], index),
                "msg": rejection.reason,
                "input": None,
            }
        )
    return errors


def invalid_parts_error(posted: IngestBatch, merged: Merged) -> list[dict[str, Any]]:
    """422 details for shard parts whose merged record would break the wire bounds."""
    errors = []
    for resource, part, reason in merged.invalid:
        items: list[Any] = list(posted.gex if resource is Resource.GEX else posted.flow)
        index = next(i for i, item in enumerate(items) if item is part)
        loc = ("body", BATCH_FIELD[resource], index)
        errors.append({"type": "shards_merge", "loc": loc, "msg": reason, "input": None})
    return errors


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


def storage_unavailable(metrics: BackendMetrics) -> HTTPException:
    """The 503 a producer retries (the same batch: what was stored is then a duplicate)."""
    metrics.storage_unavailable.inc()
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "storage unavailable; retry the batch",
        headers={"Retry-After": "1"},
    )


async def store_and_broadcast(
    store: TableStore,
    publisher: Publisher,
    metrics: BackendMetrics,
    resource: Resource,
    records: list[PublicRecord],
) -> tuple[KindCount, list[dict[str, Any]]]:
    """Store one resource's records, broadcast the new ones: (counts, 422 details)."""
    try:
        outcome = await store.insert_new(resource, records)
    except StorageUnavailableError as exc:
        # What was durably created is broadcast now: a retry will find it duplicate.
        await broadcast(publisher, metrics, resource, exc.stored)
        raise storage_unavailable(metrics) from exc
    await broadcast(publisher, metrics, resource, outcome.stored)
    counts = KindCount(stored=len(outcome.stored), duplicate=outcome.duplicate)
    metrics.records.labels(resource.value, "stored").inc(len(outcome.stored))
    metrics.records.labels(resource.value, "duplicate").inc(outcome.duplicate)
    if not outcome.rejected:
        return counts, []
    metrics.records.labels(resource.value, "rejected").inc(len(outcome.rejected))
    return counts, rejected_error(resource, records, outcome.rejected)


@router.post(
    "/ingest",
    response_model=IngestResult,
    dependencies=[IngestAuth],
    summary="Store a batch from the detector and broadcast the new records",
    responses={
        401: {"model": Problem, "description": "No bearer token."},
        403: {"model": Problem, "description": "Wrong bearer token."},
        413: {"model": Problem, "description": "Body too large."},
        503: {"model": Problem, "description": "Storage unavailable; retry the same batch."},
    },
)
async def ingest(
    batch: IngestBatch,
    store: StoreDep,
    parts: PartsDep,
    publisher: PublisherDep,
    metrics: MetricsDep,
) -> IngestResult:
    """Records are stored once; a record the storage service refuses (too large for an
    entity) is a 422 naming it, and the rest of the batch is stored all the same.
    GEX/flow *parts* of a sharded detector are kept aside and stored as one merged
    record once every shard's part of their snapshot time is in (`spy_backend.shards`)."""
    kinds: dict[Resource, KindCount] = {}
    errors: list[dict[str, Any]] = []
    posted = batch
    batch, gex_parts, flow_parts = split_parts(batch)
    try:
        merged = await merge_parts(parts, gex_parts, flow_parts)
    except StorageUnavailableError as exc:
        raise storage_unavailable(metrics) from exc
    errors += invalid_parts_error(posted, merged)
    by_resource = batch.by_resource()
    for resource, records in merged.records.items():
        by_resource[resource] = by_resource[resource] + records
    for resource, records in by_resource.items():
        if not records:
            continue
        kinds[resource], rejected = await store_and_broadcast(
            store, publisher, metrics, resource, records
        )
        errors += rejected
    if merged.rounds:
        # The merged records are stored: their parts can go (a failure here leaves
        # them to the retention purge; a re-merge would be a duplicate).
        with contextlib.suppress(StorageUnavailableError):
            await drop_rounds(parts, merged)
    if errors:
        # 4xx, not 5xx: the producer drops what cannot be stored instead of retrying it
        # forever; what was stored is a duplicate on any resend.
        raise RequestValidationError(errors)
    return IngestResult(
        stored=sum(k.stored for k in kinds.values()),
        duplicate=sum(k.duplicate for k in kinds.values()),
        kinds=kinds,
    )
