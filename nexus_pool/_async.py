"""``pool.acquire_async()``: an event loop as the pool's one acquirer.

The loop's task waits without blocking the loop. It puts a *callable* token in the
pool's waiting set, the one a blocked thread puts a plain token in; a release that finds
a token takes it and calls it (``_waiting.wake_token``, or ``wake_waiter`` in C), and the
token schedules the wake-up on the loop with ``call_soon_threadsafe``. A release with
nobody waiting costs nothing more than before: the set is empty.

Cancellation loses nothing: the only await is on a future that carries no slot. A slot
is taken by a synchronous ``take()`` after the await returns, and handed to the caller
with no await in between; a ``KeyboardInterrupt`` landing there drops a guard, which
returns its slot as any dropped guard does.

Why not ``await asyncio.to_thread(pool.acquire)``: that acquires on an executor thread,
a second acquiring thread beside the loop (and, from call to call, a third and a
fourth). The pool's single-acquirer contract is broken, and the ``debug`` backend raises
``OwnershipError`` naming both threads.
"""

from __future__ import annotations

from collections.abc import Generator
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, final

from ._holders import exhausted
from ._records import Holder
from ._waiting import WAIT_SLICE, Waiter

if TYPE_CHECKING:
    import asyncio

    from ._guard import Pooled

__all__ = ["AsyncAcquisition"]

T = TypeVar("T")


class Lender(Protocol[T]):
    """What the asyncio acquirer needs of a pool (every :class:`~nexus_pool.Pool` has it):
    this module depends on no pool class, so the pool classes can depend on it."""

    @property
    def capacity(self) -> int: ...

    def holders(self) -> list[Holder]: ...

    def _waiter(self) -> Waiter[Pooled[T]]: ...


def _set_done(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


async def acquire(pool: Lender[T], seconds: float | None, shown: object) -> Pooled[T]:
    """A guard from ``pool``, waiting on the running loop up to ``seconds`` (checked)."""
    waiter = pool._waiter()
    guard = waiter.take()
    if guard is not None:
        return guard
    capacity = pool.capacity
    if seconds == 0:
        waiter.note_wait(0.0)
        raise exhausted(capacity, pool.holders())
    import asyncio  # here: importing nexus_pool does not import asyncio

    loop = asyncio.get_running_loop()
    started = monotonic()
    deadline = None if seconds is None else started + seconds
    try:
        while True:
            woken: asyncio.Future[None] = loop.create_future()
            token = _Token(loop, woken)
            waiter.waiting.add(token)  # before looking: a release after this look wakes us
            try:
                guard = waiter.take()
                if guard is not None:
                    return guard
                # Look again now and then, as a blocked thread does (see WAIT_SLICE).
                delay = WAIT_SLICE if deadline is None else min(deadline - monotonic(), WAIT_SLICE)
                if delay <= 0:
                    raise exhausted(capacity, pool.holders(), shown)
                timer = loop.call_later(delay, _set_done, woken)
                try:
                    await woken
                finally:
                    timer.cancel()
            finally:
                waiter.waiting.discard(token)
    finally:
        waiter.note_wait(monotonic() - started)


@final
class _Token:
    """A waiting task's token: called by a release, on any thread, to wake the task."""

    __slots__ = ("_loop", "_woken")

    def __init__(self, loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None]) -> None:
        self._loop = loop
        self._woken = woken

    def __call__(self) -> None:
        self._loop.call_soon_threadsafe(_set_done, self._woken)


@final
class AsyncAcquisition(Generic[T]):
    """What ``pool.acquire_async()`` returns: await it for a guard, or ``async with`` it
    for the value (released when the block ends)."""

    __slots__ = ("_guard", "_pool", "_seconds", "_shown")

    def __init__(self, pool: Lender[T], seconds: float | None, shown: object) -> None:
        self._pool = pool
        self._seconds = seconds
        self._shown = shown
        self._guard: Pooled[T] | None = None

    def __await__(self) -> Generator[Any, None, Pooled[T]]:
        return acquire(self._pool, self._seconds, self._shown).__await__()

    async def __aenter__(self) -> T:
        if self._guard is not None:
            raise RuntimeError("this acquire_async() is already in use by an async with block")
        guard = await acquire(self._pool, self._seconds, self._shown)
        self._guard = guard
        return guard.value

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.release()

    def __repr__(self) -> str:
        state = "not acquired" if self._guard is None else "holding " + repr(self._guard)
        return f"<nexus_pool acquire_async() {state}>"
