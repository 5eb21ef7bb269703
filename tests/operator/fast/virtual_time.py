"""An event loop whose clock is virtual: waiting costs no real time.

`loop.time()` starts at 0 and moves only when every task waits on a timer: the loop
then jumps to the next timer instead of sleeping. `asyncio.sleep(30)`, `call_at`,
`wait_for` and the operator's Lease and backoff timers therefore run in microseconds
and always in the same order, so the fast tier has no real sleeps and no races with
the wall clock. Nothing here may open sockets or threads (the fake API server does
neither). A state in which every task waits on something no timer will ever deliver
is a deadlock and raises instead of hanging; so is a livelock (time never moves).

Used by the tests in this folder through `@virtual_time` (a sync test function that
runs the async body on a fresh loop, so pytest-asyncio's loop is not involved).
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any

# A test that has not finished after this much virtual time is stuck.
VIRTUAL_LIMIT = 24 * 3600.0
# Loop iterations without time moving: tasks ping-ponging forever (two controllers
# undoing each other's writes) would otherwise spin in real time.
LIVELOCK_SPINS = 20_000


class _VirtualSelector:
    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop
        self._spins = 0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = self._real.select(0)  # the loop's self-pipe only; never blocks
        if ready or timeout == 0:
            self._spins += 1
            if self._spins > LIVELOCK_SPINS:
                raise RuntimeError(
                    f"livelock: {LIVELOCK_SPINS} loop iterations at virtual time "
                    f"{self._loop.now:.3f} s without any task waiting on a timer"
                )
            return ready
        self._spins = 0
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is scheduled")
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _VirtualSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self.now


def run_virtual(main: Coroutine[Any, Any, Any]) -> Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main, VIRTUAL_LIMIT))
    finally:
        # Whatever the test left running (workers, the Lease loop) ends with the loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(_drain(pending))
        loop.close()


async def _drain(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def virtual_time(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async test body on a fresh virtual-time loop."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_virtual(fn(*args, **kwargs))

    return wrapper
