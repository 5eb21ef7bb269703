"""Inserts, coalesced across concurrent requests into entity-group transactions.

Called by `TableStore.insert_new` (the ingest route). Each new entity waits in its
partition's queue; a few drainers per partition (PARTITION_IN_FLIGHT) take up to one
transaction's worth at a time (same partition, at most 100 operations and well under
the service's 4 MiB), so under load twenty 10-record requests become two transactions
of 100 instead of twenty of 10, and each partition's queue drains concurrently with
the others (within the store's limit of requests in flight). An idle partition's first
record goes out at once: batching costs no latency, it only happens while a transaction
is in flight.

Transactions are the write path. When one fails because of one entity (already stored:
a retried batch; or refused by the service: too large), the service names it; it is
settled alone, the other entities of its request are split off (a retried request's
records are duplicates together: they are created one at a time, which finds them) and
the rest of the transaction is resubmitted, so one retried request does not slow the
others down. Every attempt settles at least one entity, so a batch of n costs at most
2n calls; when the service does not name the entity, the batch is created one entity
at a time. Every waiter learns its own entity's fate: stored, duplicate, rejected (with
the reason) or the outage.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from asyncio import Future
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables.aio import TableClient

from spy_backend.models import Resource
from spy_backend.storage.batch import TransactionFailedError, submit_creates
from spy_backend.storage.errors import StorageUnavailableError, rejection_reason, storage_call

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSACTION_MAX_OPS = 100  # service limit per transaction (one partition)
TRANSACTION_MAX_BYTES = 3_000_000  # service limit is 4 MiB per transaction payload
OP_OVERHEAD_BYTES = 600  # the operation's MIME part headers and URL in the payload
PARTITION_IN_FLIGHT = 2  # transactions in flight per partition (the rest coalesce)


class Written(NamedTuple):
    status: Literal["stored", "duplicate", "rejected"]
    reason: str = ""


STORED, DUPLICATE = Written("stored"), Written("duplicate")


def entity_weight(entity: dict[str, Any]) -> int:
    """An upper bound of the bytes an entity adds to a transaction's JSON payload
    (binary is base64; non-ASCII text may be escaped as \\uXXXX pairs)."""
    size = OP_OVERHEAD_BYTES
    for name, value in entity.items():
        size += len(name) + 48  # quotes, colon, the "@odata.type" annotation
        if isinstance(value, str):
            size += len(value) if value.isascii() else 12 * len(value)
        elif isinstance(value, bytes):
            size += (len(value) + 2) // 3 * 4
        else:
            size += 32
    return size


def chunks(items: Iterable[T], weight: Callable[[T], int]) -> Iterator[list[T]]:
    """Split one partition's items into transactions within count and size limits."""
    chunk: list[T] = []
    size = 0
    for item in items:
        w = weight(item)
        if chunk and (len(chunk) >= TRANSACTION_MAX_OPS or size + w > TRANSACTION_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += w
    if chunk:
        yield chunk


@dataclass(eq=False)
class Pending:
    """An entity waiting to be written and who waits for it: the first waiter's record
    is the one stored; later waiters (the same record in a concurrent request) learn it
    is a duplicate."""

    entity: dict[str, Any]
    weight: int
    group: int  # the insert call (request) that queued it first
    waiters: list[Future[Written]] = field(default_factory=list)

    def settle(self, written: Written) -> None:
        first, *others = self.waiters
        if not first.done():
            first.set_result(written)
        follow = written if written.status == "rejected" else DUPLICATE
        for waiter in others:
            if not waiter.done():
                waiter.set_result(follow)

    def fail(self, exc: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)


def _retrieve(future: Future[Written]) -> None:
    # A waiter whose request was cancelled never reads its future: read the exception
    # here so asyncio does not log "exception was never retrieved" for it.
    if not future.cancelled():
        future.exception()


def _culprit(exc: TransactionFailedError, batch: list[Pending]) -> tuple[Pending, Written] | None:
    """The entity a failed transaction names and its fate, or None when it names none.

    Raises `exc` when the failure is not about one entity (an unexpected 4xx): only 409
    (already stored) and 400/413 (refused: too large, invalid) are the entity's."""
    if exc.code == "EntityAlreadyExists" or exc.status == 409:
        written = DUPLICATE
    elif exc.status in (400, 413):
        written = Written("rejected", f"storage refused the record ({exc.code or exc.status})")
    else:
        raise exc
    if exc.index is None or exc.index >= len(batch):
        return None
    return batch[exc.index], written


class PartitionWriter:
    """Per-(resource, partition) queues of pending entities and their drainers."""

    def __init__(
        self, table: Callable[[Resource], TableClient], gate: asyncio.Semaphore, timeout: float
    ) -> None:
        self._table = table
        self._gate = gate  # the store's limit of requests in flight
        self._timeout = timeout
        self._pending: dict[tuple[Resource, str], dict[str, Pending]] = defaultdict(dict)
        self._drainers: dict[tuple[Resource, str], int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._groups = itertools.count()

    def submit(self, resource: Resource, entities: list[dict[str, Any]]) -> list[Future[Written]]:
        """Queue one request's entities; each future says what became of its entity."""
        group = next(self._groups)
        loop = asyncio.get_running_loop()
        futures = []
        for entity in entities:
            key = (resource, entity["PartitionKey"])
            future: Future[Written] = loop.create_future()
            future.add_done_callback(_retrieve)
            queue = self._pending[key]
            pending = queue.get(entity["RowKey"])
            if pending is None:
                weight = entity_weight(entity)
                pending = queue[entity["RowKey"]] = Pending(entity, weight, group)
            pending.waiters.append(future)
            futures.append(future)
            if self._drainers[key] < PARTITION_IN_FLIGHT:
                self._drainers[key] += 1
                task = asyncio.create_task(self._drain(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return futures

    async def close(self) -> None:
        """Stop the drainers; whoever still waits learns storage is unavailable."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        closing = StorageUnavailableError("store closed")
        for queue in self._pending.values():
            for pending in queue.values():
                pending.fail(closing)
        self._pending.clear()

    def _take(self, key: tuple[Resource, str]) -> list[Pending]:
        queue = self._pending[key]
        head = itertools.islice(queue.values(), TRANSACTION_MAX_OPS)
        batch = next(chunks(head, lambda p: p.weight), [])
        for pending in batch:
            del queue[pending.entity["RowKey"]]
        if not queue:
            del self._pending[key]
        return batch

    async def _drain(self, key: tuple[Resource, str]) -> None:
        try:
            while key in self._pending:
                # Waiting for a slot is what lets concurrent requests' entities coalesce.
                async with self._gate:
                    batch = self._take(key) if key in self._pending else []
                    if batch:
                        await self._write(self._table(key[0]), batch)
        finally:
            self._drainers[key] -= 1
            if not self._drainers[key]:
                del self._drainers[key]

    async def _write(self, table: TableClient, batch: list[Pending]) -> None:
        try:
            await self._transact(table, batch)
        except Exception as exc:
            # Settled entities keep their fate; the others share the failure (the
            # caller reports them failed, a retry stores them or finds them duplicate).
            for pending in batch:
                pending.fail(exc)
        except BaseException:
            closing = StorageUnavailableError("store closed")  # cancelled by close()
            for pending in batch:
                pending.fail(closing)
            raise

    async def _transact(self, table: TableClient, batch: list[Pending]) -> None:
        """Write `batch` as transactions; on a failure the service pins on one entity,
        settle it, split off its request's other entities and resubmit the rest."""
        parts = [batch]
        while parts:
            part = parts.pop()
            if len(part) == 1:  # one entity: a plain insert is cheaper than a transaction
                await self._one_by_one(table, part)
                continue
            try:
                async with storage_call("transaction", self._timeout):
                    await submit_creates(table, [p.entity for p in part])
            except TransactionFailedError as exc:
                culprit = _culprit(exc, part)
                if culprit is None:  # not named: find it (them) one at a time
                    await self._one_by_one(table, part)
                    continue
                pending, written = culprit
                if written.status == "rejected":
                    log.warning("storage refused a record", extra={"reason": written.reason})
                pending.settle(written)
                same = [p for p in part if p.group == pending.group and p is not pending]
                others = [p for p in part if p.group != pending.group]
                if written.status == "duplicate":
                    await self._one_by_one(table, same)  # likely duplicates too
                elif same:
                    parts.append(same)
                if others:
                    parts.append(others)
                continue
            for pending in part:
                pending.settle(STORED)

    async def _one_by_one(self, table: TableClient, batch: list[Pending]) -> None:
        """Create each entity alone: each is stored once and reported new exactly once,
        and a refused one is reported alone while the others are stored."""
        for pending in batch:
            try:
                async with storage_call("create", self._timeout):
                    await table.create_entity(pending.entity)
                pending.settle(STORED)
            except ResourceExistsError:
                pending.settle(DUPLICATE)
            except HttpResponseError as exc:
                reason = rejection_reason(exc)
                if reason is None:
                    raise
                log.warning("storage refused a record", extra={"reason": reason})
                pending.settle(Written("rejected", reason))
