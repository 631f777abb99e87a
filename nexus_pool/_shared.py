"""Zero-copy buffer pools shared with worker processes (``nexus_pool.shared``; Linux).

One shared-memory block holds a header, one record per slot and the page-aligned
buffers. Each slot's lease word (generation, state, holder pid) is the only truth of who
has it, and every hand-over between processes is one compare-and-swap on it (the C core,
``backends/nexus_pool_shared.c``; its Python types, ``backends/nexus_pool_shared_module.c``):

* the producer acquires a :class:`SharedLease` (``acquire``/``try_acquire``), fills
  ``lease.buffer`` and calls ``lease.send()``: a small picklable :class:`Handle`;
* a worker does ``with nexus_pool.shared.receive(handle) as buffer:``, which attaches the
  block by name (once per process) and claims the slot; the end of the block releases
  it, from that process, straight back to the producer's pool;
* a stale, duplicate or foreign handle is refused (:class:`ReleasedError`); a buffer is
  never lent twice.

Crash safety: a process killed at any instruction leaves each slot in exactly one state,
and ``pool.reclaim()`` gives back the buffers of processes that died holding them (and,
on request, of handles stuck in transit longer than an age); a worker can ask
:func:`producer_alive` instead of waiting for ever; :func:`remove_orphans` removes the
blocks of producers that died without closing them.

Trust: the block is untrusted input (any process of the same user can write into it).
Each process keeps its own checked copy of the block's geometry and checks every index it
reads from the block; a block that says what no nexus_pool process writes raises
:class:`SharedBlockCorrupted`, and is never read or written out of bounds.

Closing: the producer's block is closed (and its name removed) by ``close()``, at the end
of a ``with`` block, or when the pool is collected or the interpreter exits. From then
on every method of the pool raises ``ValueError``, and threads waiting in ``acquire()``
wake up to raise it. The memory stays mapped for as long as anything can touch it: leases
still out keep working until released (their buffers, and views of them, stay valid).
"""

from __future__ import annotations

import os
import queue
from collections import Counter
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, NoReturn, Protocol, SupportsIndex, final

from ._base import check_capacity, check_timeout
from ._errors import BackendUnavailable, PoolError, PoolExhausted, ReleasedError, SharedBlockCorrupted
from ._holders import SharedHolder
from ._shared_handle import Handle

if TYPE_CHECKING:
    from ._shared_native import Block, SharedLease
else:
    try:
        from ._shared_native import Block, SharedLease
    except ImportError:  # shared_unavailable() says why
        Block = SharedLease = None

__all__ = [
    "BLOCK_PREFIX",
    "Handle",
    "ProducerGone",
    "SharedBlockCorrupted",
    "SharedBufferPool",
    "SharedHolder",
    "SharedLease",
    "handles",
    "producer_alive",
    "receive",
    "remove_orphans",
    "shared_unavailable",
]

BLOCK_PREFIX: Final = "nxp-"
"""Every block's name starts so: ``nxp-<creator pid>-<random>``."""

_SLICE: Final = 0.05
"""Seconds: a blocked acquire sleeps on the futex in slices, so that signals
(KeyboardInterrupt) are handled promptly and the deadline holds."""


def _why_unavailable() -> str:
    if not sys.platform.startswith("linux"):
        return f"nexus_pool.shared needs Linux (futexes, POSIX shared memory); this is {sys.platform}"
    try:
        import nexus_pool._shared_native  # noqa: F401
    except ImportError as exc:
        return f"its compiled module is missing ({exc}); pip builds it at install time"
    return ""


_missing: Final = _why_unavailable()


def shared_unavailable() -> str:
    """Why ``nexus_pool.shared`` cannot work here; empty if it can."""
    return _missing


def _require() -> None:
    if _missing:
        raise BackendUnavailable(_missing)


_attached: dict[str, Block] = {}
"""The blocks this process mapped, by name: the producer's own, and those it received from."""

_attach_lock = threading.Lock()


def _attach(name: str) -> Block:
    """The mapping of block ``name`` in this process, made on first use (checked)."""
    block = _attached.get(name)
    if block is None:
        _require()
        with _attach_lock:
            block = _attached.get(name)
            if block is None:
                block = _attached[name] = Block.attach(name)
    return block


def receive(handle: Handle) -> SharedLease:
    """Claim the lease ``handle`` stands for, in this process (attaching its block once).

    ``ReleasedError`` for a stale, duplicate or foreign handle, or one reclaimed meanwhile;
    :class:`SharedBlockCorrupted` if the block is not a sound nexus_pool block.
    """
    name, slot, generation = handle
    return _attach(name).claim(slot, generation)


class _Getter(Protocol):
    def get(self, block: bool = ..., timeout: float | None = ...) -> Handle | None: ...


class ProducerGone(PoolError):
    """The producer of a shared block died: no more handles will come."""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def producer_alive(name: str) -> bool:
    """Whether the process that created block ``name`` still runs (False if the block is
    gone): what a worker asks instead of waiting for ever on a dead producer."""
    try:
        block = _attach(name)
    except FileNotFoundError:
        return False
    return _pid_alive(block.creator)


def handles(inbox: _Getter, producer: str, *, poll: float = 0.5) -> Iterator[Handle]:
    """The handles a worker takes from ``inbox`` (any queue with ``get(timeout=)``), up to
    a ``None``; :class:`ProducerGone` if the process that made block ``producer`` dies
    meanwhile, noticed within ``poll`` seconds, instead of waiting for ever::

        for handle in shared.handles(inbox, pool_name):
            with shared.receive(handle) as buffer:
                ...
    """
    while True:
        try:
            item = inbox.get(timeout=poll)
        except queue.Empty:
            if not producer_alive(producer):
                raise ProducerGone(f"the process that made shared block {producer!r} has died") from None
            continue
        if item is None:
            return
        yield item


def remove_orphans() -> list[str]:
    """Unlink the blocks whose creator died without closing them; their names."""
    _require()
    removed = []
    for entry in sorted(os.listdir("/dev/shm")):
        if not entry.startswith(BLOCK_PREFIX):
            continue
        try:
            creator = int(entry.split("-")[1])
        except (IndexError, ValueError):
            continue
        if _pid_alive(creator):
            continue
        try:
            os.unlink(f"/dev/shm/{entry}")
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed


_STATES: Final = {1: "held", 2: "in transit"}


def shared_holders(block: Block) -> list[SharedHolder]:
    """The lent buffers of ``block`` (SharedBlockCorrupted if a slot's state is not one of
    ours): what the pool and the operators' tools report."""
    now = time.monotonic_ns()
    holders = []
    for slot in range(block.capacity):
        state, _generation, pid, since = block.lease_word(slot)
        if state == 0:
            continue
        name = _STATES.get(state)
        if name is None:
            raise SharedBlockCorrupted(f"shared block {block.name!r}: slot {slot} is in a state no process writes")
        holders.append(SharedHolder(slot, name, pid, _pid_alive(pid), max(now - since, 0) / 1e9))  # type: ignore[arg-type]
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
    in_transit = sum(holder.state == "in transit" for holder in holders)
    if in_transit:
        spread.append(f"{in_transit} in transit")
    return "; ".join([*parts, ", ".join(spread)])


def _close(block: Block) -> None:
    """The producer's finalizer (close(), collection, exit): refuse further pool calls,
    wake the threads waiting in acquire(), remove the name. The mapping itself goes when
    nothing refers to it (leases still out, their views, a call still running)."""
    block.close()
    if _attached.get(block.name) is block:
        del _attached[block.name]
    block.unlink()


@final
class SharedBufferPool:
    """``capacity`` buffers of ``size`` bytes in one shared-memory block, made now.

    This process (the producer) acquires; any process that receives a handle releases.
    ``name`` defaults to ``nxp-<pid>-<random>``.
    """

    __slots__ = ("__weakref__", "_block", "_finalizer")

    def __init__(self, capacity: int, size: int, *, name: str | None = None) -> None:
        _require()
        slots = check_capacity(capacity)
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if size < 1:
            raise ValueError(f"capacity and size out of range: {capacity} buffers of {size} bytes")
        block = Block.create(name or f"{BLOCK_PREFIX}{os.getpid()}-{secrets.token_hex(4)}", slots, size)
        self._block = block
        _attached[block.name] = block
        self._finalizer = weakref.finalize(self, _close, block)

    @property
    def name(self) -> str:
        """The block's name: what handles carry."""
        return self._block.name

    @property
    def capacity(self) -> int:
        """The number of buffers."""
        return self._block.capacity

    @property
    def buffer_size(self) -> int:
        """The size of each buffer in bytes."""
        return self._block.size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the pool was finalized)."""
        return self._block.closed

    def available(self) -> int:
        """Free buffers now (a snapshot while workers release)."""
        return self._block.available()

    def holders(self) -> list[SharedHolder]:
        """The lent buffers: slot, held or in transit, by which process, whether it still
        runs, and for how long (a snapshot while workers release)."""
        if self._block.closed:
            self._block.available()  # raises: the pool is closed
        return shared_holders(self._block)

    def try_acquire(self) -> SharedLease | None:
        """A lease on a free buffer, or ``None`` at once."""
        return self._block.try_acquire()

    def acquire(self, timeout: float | None = None) -> SharedLease:
        """A lease, waiting (futex, no spinning) up to ``timeout`` seconds for a release."""
        seconds = check_timeout(timeout)
        block = self._block
        deadline = None if seconds is None else time.monotonic() + seconds
        while (lease := block.try_acquire()) is None:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if remaining <= 0:
                message = f"all {block.capacity} shared buffers are in use"
                if seconds != 0:
                    message += f" and none came back within {timeout} s"
                holders = shared_holders(block)
                if holders:
                    message += f"; {describe_shared(holders)}"
                error = PoolExhausted(message)
                error.holders = holders
                raise error
            block.wait(remaining)
        return lease

    def reclaim(self, transit_max_age: float | None = None) -> int:
        """Give back the buffers held by processes that died; with ``transit_max_age``
        (seconds), also those sent that long ago and never received. How many."""
        if transit_max_age is not None and not transit_max_age >= 0:
            raise ValueError(f"transit_max_age must be >= 0 seconds or None, got {transit_max_age!r}")
        age = -1 if transit_max_age is None else int(transit_max_age * 1e9)
        return self._block.reclaim(age)

    def close(self) -> None:
        """Close the pool and remove the block's name (workers that attached keep their
        mapping). Waiting acquirers wake up and raise; leases still out keep working until
        released. Calling it again does nothing."""
        self._finalizer()

    def __enter__(self) -> SharedBufferPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("a SharedBufferPool stays with its producer: pass its handles (or its name)")

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return (
            f"<nexus_pool.shared.SharedBufferPool {self.name!r} capacity={self.capacity} "
            f"size={self.buffer_size}{state}>"
        )
