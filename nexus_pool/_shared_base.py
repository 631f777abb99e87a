"""The public class :class:`SharedBufferPool` of ``nexus_pool.shared``, and its work queue's.

The pool's per-buffer path (acquire, queue, take, send, receive, release) is C: the
compiled module ``nexus_pool._shared_native`` makes its pool type as a subclass of this
class, as the native facade's ``Pool`` subclasses :class:`nexus_pool.Pool`, so that
``isinstance`` and the documentation see this one. Methods whose speed does not matter
(``holders``, ``acquire_async``, the context manager) are written here, once. This
module imports no implementation: ``_shared.py`` installs the function that
``SharedBufferPool(...)`` calls to make a pool.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, SupportsIndex, final

from ._checks import check_capacity, check_timeout, not_made_by
from ._errors import PoolExhausted
from ._records import SharedHolder
from ._stats import PoolStats

if TYPE_CHECKING:
    from typing_extensions import deprecated

    from ._shared_native import SharedBuffer, SharedLease, WorkQueue
else:

    def deprecated(_message: str, /, *, category: object = None) -> Any:
        """For type checkers only (typing-extensions is no run-time dependency): the
        deprecated property warns by itself."""
        return lambda function: function


__all__ = [
    "BLOCK_PREFIX",
    "Buffers",
    "SharedBufferPool",
    "describe_shared",
    "exhausted",
    "install_maker",
    "pid_alive",
    "shared_holders",
]

BLOCK_PREFIX: Final = "nxp-"
"""Every block's name starts so: ``nxp-<creator pid>-<random>``."""

_STATES: Final = {1: "held", 2: "in transit", 3: "queued"}

ASYNC_SLICE: Final = 0.005
"""Seconds: an event loop waiting for a shared buffer sleeps on the block's futex in an
executor thread at most this long before it looks again (and notices cancellation)."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a positive pid; ``EPERM``: another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Buffers(Protocol):
    """What a pool's blocks say of their slots (the compiled pool type has these)."""

    @property
    def name(self) -> str: ...
    @property
    def capacity(self) -> int: ...
    def lease_word(self, slot: int, /) -> tuple[int, int, int, int]: ...


def shared_holders(block: Buffers) -> list[SharedHolder]:
    """The lent buffers of ``block``: what the pool and the operators' tools report."""
    now = time.monotonic_ns()
    holders = []
    for slot in range(block.capacity):
        state, _generation, pid, since = block.lease_word(slot)
        name = _STATES.get(state)
        if name is None:
            continue  # free
        holders.append(SharedHolder(slot, name, pid, pid_alive(pid), max(now - since, 0) / 1e9))  # type: ignore[arg-type]
    return holders


def describe_shared(holders: list[SharedHolder]) -> str:
    """``"oldest held 12.4 s (slot 2, pid 1234, dead); 3 held by pid 1234, 1 in transit"``."""
    if not holders:
        return ""
    oldest = max(holders, key=lambda holder: holder.seconds)
    life = "alive" if oldest.alive else "dead"
    parts = [f"oldest {oldest.state} {oldest.seconds:.1f} s (slot {oldest.slot}, pid {oldest.pid}, {life})"]
    held = Counter(holder.pid for holder in holders if holder.state == "held")
    spread = [f"{count} held by pid {pid}" for pid, count in held.most_common(3)]
    for state in ("in transit", "queued"):
        waiting = sum(holder.state == state for holder in holders)
        if waiting:
            spread.append(f"{waiting} {state}")
    return "; ".join([*parts, ", ".join(spread)])


def exhausted(pool: SharedBufferPool, waited: object) -> PoolExhausted:
    """The PoolExhausted of a shared pool: all out, who holds them, how long it waited."""
    message = f"all {pool.capacity} shared buffers are in use"
    if waited is not None:
        message += f" and none came back within {waited} s"
    holders = shared_holders(pool)
    if holders:
        message += f"; {describe_shared(holders)}"
    error = PoolExhausted(message)
    error.holders = holders
    return error


class _Maker(Protocol):
    def __call__(self, capacity: int, size: int, name: str | None, /) -> SharedBufferPool: ...


_makers: list[_Maker] = []


def install_maker(maker: _Maker) -> None:
    """Make ``maker`` the function that ``SharedBufferPool(...)`` calls (see ``_shared.py``)."""
    _makers[:] = [maker]


class SharedBufferPool:
    """``capacity`` buffers of ``size`` bytes in one shared-memory block, made now.

    This process (the producer) acquires, as from :class:`nexus_pool.BufferPool`; a lease's
    ``value`` is a buffer with the same interface (``data``, ``size``, ``length``,
    ``filled``, ``readinto``, ``recv_into``, ``write``), whose filled length lives in the
    block, so the worker sees what the producer filled. A lease goes to a worker process
    through the block's own work queue (``pool.queue.put(lease)``; a worker does
    ``for lease in nexus_pool.shared.receiver(pool.name)``), or as a small picklable
    :class:`~nexus_pool.shared.Handle` (``lease.send()``) through any queue; the worker
    releases it, and it comes straight back to this pool. ``name`` defaults to
    ``nxp-<pid>-<random>``.
    """

    __slots__ = ()

    def __new__(cls, capacity: int, size: int, *, name: str | None = None) -> SharedBufferPool:
        slots = check_capacity(capacity)
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if size < 1:
            raise ValueError(f"capacity and size out of range: {capacity} buffers of {size} bytes")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, not {type(name).__name__}")
        return _makers[0](slots, size, name)

    # The compiled type implements what follows; these bodies serve only an object
    # that ``SharedBufferPool(...)`` did not make.

    @property
    def name(self) -> str:
        """The block's name: what handles carry, and what workers attach by."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    def capacity(self) -> int:
        """The number of buffers."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    def size(self) -> int:
        """The size of each buffer in bytes."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the pool was finalized)."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    def is_shutdown(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    def queue(self) -> WorkQueue:
        """The block's work queue: ``put(lease)`` hands a lease to whichever worker
        takes it next; ``put(None)`` ends one worker's loop."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def try_acquire(self) -> SharedLease | None:
        """A lease on a free buffer, or ``None`` at once."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def acquire(self, timeout: float | None = None) -> SharedLease:
        """A lease, waiting (futex, no spinning) up to ``timeout`` seconds for a release;
        :class:`~nexus_pool.PoolExhausted` naming the holders when time runs out."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def available(self) -> int:
        """Free buffers now (a snapshot while workers release)."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters, as :meth:`nexus_pool.Pool.stats`."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def shutdown(self) -> None:
        """Lend nothing more: acquisitions, waiting ones too, raise
        :class:`~nexus_pool.PoolShutDown`; releases (and workers taking what was
        queued) go on. Every process sees it."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def reclaim(self, transit_max_age: float | None = None) -> int:
        """Give back the buffers held by processes that died; with ``transit_max_age``
        (seconds), also those sent or queued that long ago and never taken. How many."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def close(self) -> None:
        """Close the pool and remove the block's name (workers that attached keep their
        mapping). Waiting acquirers wake up and raise ``ValueError``; leases still out
        keep working until released. Calling it again does nothing."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def lease_word(self, slot: int, /) -> tuple[int, int, int, int]:
        """What the block says of ``slot``: state, generation, pid, stamp (ns)."""
        raise not_made_by(self, "SharedBufferPool(...)")

    def _wait(self, seconds: float, /) -> int:
        """Sleep until a release may have freed a buffer, at most ``seconds``."""
        raise not_made_by(self, "SharedBufferPool(...)")

    @property
    @deprecated("SharedBufferPool.buffer_size is deprecated: use .size", category=None)
    def buffer_size(self) -> int:
        """The size of each buffer in bytes (deprecated: use :attr:`size`)."""
        warnings.warn("SharedBufferPool.buffer_size is deprecated: use .size", DeprecationWarning, stacklevel=2)
        return self.size

    def holders(self) -> list[SharedHolder]:
        """The lent buffers: slot, held, in transit or queued, by which process, whether it
        still runs, and for how long (a snapshot while workers release)."""
        self.available()  # raises if the pool is closed
        return shared_holders(self)

    def acquire_async(self, timeout: float | None = None) -> _AsyncSharedAcquisition:
        """Acquire from a coroutine (the event loop is the producer): ``await
        pool.acquire_async()`` gives a lease, ``async with pool.acquire_async() as buffer:``
        the buffer, released at the end. Waits (in an executor thread, on the block's
        futex) up to ``timeout`` seconds without blocking the loop, then raises
        :class:`~nexus_pool.PoolExhausted`; cancelling loses nothing."""
        seconds = check_timeout(timeout)
        shown = timeout if type(timeout) in (int, float) and seconds is not None else seconds
        return _AsyncSharedAcquisition(self, seconds, shown)

    def __enter__(self) -> SharedBufferPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("a SharedBufferPool stays with its producer: pass its name (or handles)")

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<nexus_pool.shared.SharedBufferPool {self.name!r} capacity={self.capacity} size={self.size}{state}>"


async def _acquire_async(pool: SharedBufferPool, seconds: float | None, shown: object) -> SharedLease:
    lease = pool.try_acquire()
    if lease is not None:
        return lease
    if seconds == 0:
        raise exhausted(pool, None)
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        remaining = ASYNC_SLICE if deadline is None else min(deadline - time.monotonic(), ASYNC_SLICE)
        if remaining <= 0:
            raise exhausted(pool, shown)
        # The wait holds no buffer: cancelling it loses nothing. The buffer is taken here,
        # on the loop's thread, the pool's one acquirer.
        await loop.run_in_executor(None, pool._wait, remaining)
        lease = pool.try_acquire()
        if lease is not None:
            return lease


@final
class _AsyncSharedAcquisition:
    """What ``pool.acquire_async()`` returns: await it for a lease, or ``async with`` it
    for the buffer (released when the block ends)."""

    __slots__ = ("_lease", "_pool", "_seconds", "_shown")

    def __init__(self, pool: SharedBufferPool, seconds: float | None, shown: object) -> None:
        self._pool = pool
        self._seconds = seconds
        self._shown = shown
        self._lease: SharedLease | None = None

    def __await__(self) -> Any:
        return _acquire_async(self._pool, self._seconds, self._shown).__await__()

    async def __aenter__(self) -> SharedBuffer:
        if self._lease is not None:
            raise RuntimeError("this acquire_async() is already in use by an async with block")
        self._lease = await _acquire_async(self._pool, self._seconds, self._shown)
        return self._lease.value

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()
