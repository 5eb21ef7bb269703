"""WorkQueue: de-duplication, one worker per key, events before resync, scheduled adds.

Driven on the virtual-time loop: `add_after` timers fire at exact virtual times.
"""

from __future__ import annotations

import asyncio

from spy_operator.workqueue import WorkQueue
from virtual_time import virtual_time


async def take(queue: WorkQueue[str], n: int) -> list[str]:
    keys = []
    for _ in range(n):
        key = await queue.get()
        keys.append(key)
        queue.done(key)
    return keys


@virtual_time
async def test_a_key_added_many_times_is_handed_out_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    queue.add("a", urgent=False)
    assert len(queue) == 2
    assert await take(queue, 2) == ["a", "b"]
    assert len(queue) == 0


@virtual_time
async def test_events_go_before_a_resync_batch_and_promote_waiting_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for i in range(5):
        queue.add(f"resync-{i}", urgent=False)
    queue.add("event")
    queue.add("resync-3")  # an event for a key already waiting in the resync batch
    assert await take(queue, 6) == [
        "event",
        "resync-3",
        "resync-0",
        "resync-1",
        "resync-2",
        "resync-4",
    ]


@virtual_time
async def test_a_key_added_while_processing_is_processed_again_after_done_not_in_parallel() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    first = await queue.get()
    queue.add("a")  # an event while a worker holds "a"
    queue.add("a")
    assert len(queue) == 0, "a key being processed must not be handed to a second worker"
    other = asyncio.create_task(queue.get())
    await asyncio.sleep(1)
    assert not other.done()
    queue.done(first)
    assert await asyncio.wait_for(other, 1) == "a"  # exactly once more
    queue.done("a")
    assert len(queue) == 0


@virtual_time
async def test_waiting_workers_wake_for_each_key_and_never_share_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str] = []

    async def worker() -> None:
        while True:
            key = await queue.get()
            got.append(key)
            await asyncio.sleep(1)  # a reconcile takes time
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(3)]
    await asyncio.sleep(0.1)
    for key in "abcab":
        queue.add(key)
    await asyncio.sleep(0.5)
    assert sorted(got) == ["a", "b", "c"]  # three workers, three distinct keys
    await asyncio.sleep(5)
    assert sorted(got) == ["a", "b", "c"], "re-adding waiting keys must not duplicate work"
    for task in workers:
        task.cancel()


@virtual_time
async def test_add_after_fires_at_its_time_and_the_earlier_schedule_wins() -> None:
    loop = asyncio.get_running_loop()
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("expiry", 10)
    queue.add_after("expiry", 30)  # later: ignored
    queue.add_after("retry", 5)
    queue.add_after("retry", 2)  # earlier: replaces
    started = loop.time()
    assert await queue.get() == "retry"
    assert loop.time() - started == 2
    queue.done("retry")
    assert await queue.get() == "expiry"
    assert loop.time() - started == 10
    queue.done("expiry")
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(60)
    assert not waiter.done(), "the ignored later schedule must not fire as well"
    waiter.cancel()


@virtual_time
async def test_a_scheduled_key_that_fires_while_processing_is_processed_after() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add_after("a", 1)
    await asyncio.sleep(2)  # fired while "a" is still being processed
    assert len(queue) == 0
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 1) == "a"


@virtual_time
async def test_a_negative_delay_is_now() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("late", -5)
    assert await asyncio.wait_for(queue.get(), 0.001) == "late"
