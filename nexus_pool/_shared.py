"""Zero-copy buffer pools shared with worker processes (``nexus_pool.shared``; Linux).

One shared-memory block holds a header, one record per slot and the page-aligned
buffers; the C core (``backends/nexus_pool_shared.c``) keeps the free slots on a
lock-free stack inside the block and each slot's lease word (generation, state, holder
pid), so a buffer is handed between processes by one compare-and-swap each way:

* the producer acquires a :class:`SharedLease` (``acquire``/``try_acquire``), fills
  ``lease.buffer`` and calls ``lease.send()``: a small picklable :class:`Handle`;
* a worker does ``with nexus_pool.shared.receive(handle) as buffer:``, which attaches the
  block by name (once per process) and claims the slot; the end of the block releases
  it, from that process, straight back to the producer's pool;
* a stale, duplicate or foreign handle is refused (:class:`ReleasedError`); a buffer is
  never lent twice.

Crash safety: ``pool.reclaim()`` gives back the buffers of processes that died holding
them (and, on request, of handles stuck in transit longer than an age); a worker can ask
:func:`producer_alive` instead of waiting for ever; :func:`remove_orphans` removes the
blocks of producers that died without closing them. The producer's block is unlinked by
``close()``, at the end of a ``with`` block, or when the pool is collected or the
interpreter exits normally.
"""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sized
from multiprocessing import resource_tracker, shared_memory
from types import TracebackType
from typing import TYPE_CHECKING, Final, NamedTuple, NoReturn, Protocol, SupportsIndex, final

from ._errors import BackendUnavailable, PoolError, PoolExhausted, ReleasedError
from ._base import check_capacity, check_timeout

if TYPE_CHECKING:
    from ._shared_native import _Pointer

__all__ = [
    "BLOCK_PREFIX",
    "Handle",
    "ProducerGone",
    "SharedBufferPool",
    "SharedLease",
    "handles",
    "producer_alive",
    "receive",
    "remove_orphans",
    "shared_unavailable",
]

BLOCK_PREFIX: Final = "nxp-"
"""Every block's name starts so: ``nxp-<creator pid>-<random>``."""

_PID: list[int] = [os.getpid()]
"""This process's pid, kept current across fork (os.getpid() is a system call)."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))

_SLICE: Final = 0.05
"""Seconds: a blocked acquire sleeps on the futex in slices, so that signals
(KeyboardInterrupt) are handled promptly and the deadline holds."""


def _load() -> tuple[object, object, str]:
    if not sys.platform.startswith("linux"):
        return None, None, f"nexus_pool.shared needs Linux (futexes, /dev/shm); this is {sys.platform}"
    try:
        from ._shared_native import ffi, lib
    except ImportError as exc:
        return None, None, f"its compiled module is missing ({exc}); pip builds it at install time"
    return ffi, lib, ""


_ffi, _lib, _missing = _load()


def shared_unavailable() -> str:
    """Why ``nexus_pool.shared`` cannot work here; empty if it can."""
    return _missing


def _native() -> tuple[object, object]:
    if _missing:
        raise BackendUnavailable(_missing)
    return _ffi, _lib


if TYPE_CHECKING:
    from ._shared_native import ffi as _ffi_t
    from ._shared_native import lib as _lib_t

    ffi = _ffi_t
    lib = _lib_t
else:

    class _Deferred:
        """``ffi``/``lib`` that raise BackendUnavailable where the module cannot load."""

        def __init__(self, index: int) -> None:
            self._index = index

        def __getattr__(self, name: str) -> object:
            return getattr(_native()[self._index], name)

    ffi = _Deferred(0)
    lib = _Deferred(1)


@final
class Handle(NamedTuple):
    """What travels to a worker: which block, which slot, which lease of the slot (a
    tuple: the cheapest thing to pickle)."""

    name: str
    slot: int
    generation: int


@final
class _Block:
    """One mapping of a block in this process."""

    __slots__ = ("base", "memory", "size")

    def __init__(self, memory: shared_memory.SharedMemory) -> None:
        self.memory = memory
        self.base: _Pointer = ffi.from_buffer(_buffer_of(memory))
        if lib.nxs_check(self.base, memory.size) != 0:
            ffi.release(self.base)
            raise ValueError(f"shared memory {memory.name!r} holds no nexus_pool block")
        self.size = lib.nxs_buffer_size(self.base)

    def view(self, slot: int) -> memoryview:
        # Each lease gets its own view: on free-threaded 3.14 slicing one memoryview from
        # several threads at once can release it (CPython gh-127716).
        offset = lib.nxs_buffer_offset(self.base, slot)
        return _buffer_of(self.memory)[offset : offset + self.size]

    def close(self) -> None:
        ffi.release(self.base)  # cffi's view of the mapping goes before the mapping
        self.memory.close()


_attached: dict[str, _Block] = {}


def _buffer_of(memory: shared_memory.SharedMemory) -> memoryview:
    buffer = memory.buf
    if buffer is None:
        raise ValueError(f"shared memory {memory.name!r} is closed")
    return buffer


_attach_lock = threading.Lock()


def _skip_registration(name: Sized, rtype: str) -> None:
    """Stands in for ``resource_tracker.register`` while a block is attached."""


def _open_untracked(name: str) -> shared_memory.SharedMemory:
    """Attach block ``name`` without telling the resource tracker.

    Before 3.13 every attachment registers the name, and the tracker unlinks it when the
    attaching process exits (or, for a child sharing the producer's tracker, an
    unregister here would drop the producer's own registration): only the creator owns
    the block. 3.13 has ``track=False``; before, registration is skipped for this call.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg,unused-ignore]
    with _attach_lock:
        register = resource_tracker.register
        resource_tracker.register = _skip_registration
        try:
            return shared_memory.SharedMemory(name)
        finally:
            resource_tracker.register = register


def _attach(name: str) -> _Block:
    block = _attached.get(name)
    if block is None:
        block = _attached.setdefault(name, _Block(_open_untracked(name)))
    return block


@atexit.register
def _detach_all() -> None:
    """At exit, unmap what this process attached (cffi's views first, or the mapping's
    own finalizer complains that a buffer is still exported)."""
    for name in list(_attached):
        block = _attached.pop(name)
        try:
            block.close()
        except BufferError:
            pass  # a lease's view is still out: the mapping goes with the process


@final
class SharedLease:
    """A lease on one shared buffer: ``buffer``, ``release()``, ``with``, ``send()``.

    Ends with ``release()`` (the slot goes back to the pool) or ``send()`` (the handle
    now stands for it); either way ``buffer`` is gone from here.
    """

    __slots__ = ("_block", "_generation", "_slot", "_view")

    def __init__(self, block: _Block, slot: int, generation: int) -> None:
        self._block = block
        self._slot = slot
        self._generation = generation
        self._view: memoryview | None = block.view(slot)

    @property
    def buffer(self) -> memoryview:
        """The slot's bytes, writable; ``ReleasedError`` once released or sent."""
        if self._view is None:
            raise ReleasedError("this shared lease was released or sent")
        return self._view

    def _end(self) -> None:
        view, self._view = self._view, None
        if view is None:
            raise ReleasedError("this shared lease was released or sent already")
        view.release()  # a view kept past this point would alias the next lease

    def send(self) -> Handle:
        """End the lease here; the picklable handle a worker receives it by."""
        sent = self._view is not None and lib.nxs_send(self._block.base, self._slot, self._generation, _PID[0]) == 0
        self._end()  # raises if it had ended already
        if not sent:
            raise ReleasedError("this shared lease was reclaimed: it is no longer held here")
        return Handle(self._block.memory.name, self._slot, self._generation)

    def release(self) -> None:
        """Give the buffer back to its pool, from whichever process holds it."""
        self._end()
        if lib.nxs_release(self._block.base, self._slot, self._generation, _PID[0]) != 0:
            raise ReleasedError("this shared lease was reclaimed: it is no longer held here")

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("a SharedLease stays in its process: send() it and pass the Handle")

    def __repr__(self) -> str:
        state = "held" if self._view is not None else "ended"
        return f"<SharedLease slot={self._slot} generation={self._generation} {state}>"


def receive(handle: Handle) -> SharedLease:
    """Claim the lease ``handle`` stands for, in this process (attaching its block once).

    ``ReleasedError`` for a stale, duplicate or foreign handle, or one reclaimed meanwhile.
    """
    block = _attach(handle.name)
    if lib.nxs_claim(block.base, handle.slot, handle.generation, _PID[0]) != 0:
        raise ReleasedError(f"{handle} is stale, a duplicate, or was reclaimed: it is not in transit")
    return SharedLease(block, handle.slot, handle.generation)


class _Getter(Protocol):
    def get(self, block: bool = ..., timeout: float | None = ...) -> Handle | None: ...


class ProducerGone(PoolError):
    """The producer of a shared block died: no more handles will come."""


def _pid_alive(pid: int) -> bool:
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
    return _pid_alive(lib.nxs_creator(block.base))


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
    _native()
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
            memory = _open_untracked(entry)
        except FileNotFoundError:
            continue
        memory.close()
        try:
            os.unlink(f"/dev/shm/{entry}")  # not memory.unlink(): it would unregister a name never registered
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed


def _unlink(memory: shared_memory.SharedMemory, block: _Block) -> None:
    """Close and remove a producer's block (its finalizer: close(), collection, exit)."""
    _attached.pop(memory.name, None)
    try:
        block.close()
    except BufferError:
        pass  # a buffer view is still out: the mapping goes with the process
    try:
        memory.unlink()
    except FileNotFoundError:
        pass


@final
class SharedBufferPool:
    """``capacity`` buffers of ``size`` bytes in one shared-memory block, made now.

    This process (the producer) acquires; any process that receives a handle releases.
    ``name`` defaults to ``nxp-<pid>-<random>``.
    """

    __slots__ = ("__weakref__", "_block", "_finalizer", "_generation", "_memory")

    def __init__(self, capacity: int, size: int, *, name: str | None = None) -> None:
        _native()
        slots = check_capacity(capacity)
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        total = lib.nxs_block_size(slots, size) if size >= 1 else 0
        if total == 0:
            raise ValueError(f"capacity and size out of range: {capacity} buffers of {size} bytes")
        self._memory = shared_memory.SharedMemory(
            name or f"{BLOCK_PREFIX}{os.getpid()}-{secrets.token_hex(4)}", create=True, size=total
        )
        base = ffi.from_buffer(_buffer_of(self._memory))
        initialised = lib.nxs_init(base, self._memory.size, slots, size, os.getpid())
        ffi.release(base)
        if initialised != 0:
            self._memory.close()
            self._memory.unlink()
            raise ValueError("the block does not fit its mapping")
        self._block = _Block(self._memory)
        self._generation = ffi.new("uint32_t *")
        _attached[self._memory.name] = self._block
        self._finalizer = weakref.finalize(self, _unlink, self._memory, self._block)

    @property
    def name(self) -> str:
        """The block's name: what handles carry."""
        return self._memory.name

    @property
    def capacity(self) -> int:
        return lib.nxs_capacity(self._block.base)

    @property
    def buffer_size(self) -> int:
        return self._block.size

    def available(self) -> int:
        """Free buffers now (a snapshot while workers release)."""
        return lib.nxs_available(self._block.base)

    def try_acquire(self) -> SharedLease | None:
        """A lease on a free buffer, or ``None`` at once."""
        generation = self._generation  # one acquirer: one out-parameter per pool
        slot = lib.nxs_try_acquire(self._block.base, _PID[0], generation)
        return None if slot < 0 else SharedLease(self._block, slot, generation[0])

    def acquire(self, timeout: float | None = None) -> SharedLease:
        """A lease, waiting (futex, no spinning) up to ``timeout`` seconds for a release."""
        seconds = check_timeout(timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        while (lease := self.try_acquire()) is None:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if remaining <= 0:
                raise PoolExhausted(
                    f"all {self.capacity} shared buffers are in use"
                    + ("" if seconds == 0 else f" and none came back within {timeout} s")
                )
            lib.nxs_wait(self._block.base, int(remaining * 1e9))
        return lease

    def reclaim(self, transit_max_age: float | None = None) -> int:
        """Give back the buffers held by processes that died; with ``transit_max_age``
        (seconds), also those sent that long ago and never received. How many."""
        age = -1 if transit_max_age is None else int(transit_max_age * 1e9)
        return lib.nxs_reclaim(self._block.base, age)

    def close(self) -> None:
        """Unmap and remove the block (workers that attached keep their mapping)."""
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
        return f"<nexus_pool.shared.SharedBufferPool {self.name!r} capacity={self.capacity} size={self.buffer_size}>"
