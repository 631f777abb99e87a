"""Zero-copy buffer pools shared with worker processes (Linux first). SPIKE: see the
branch's notes; not yet part of the released package.

``SharedBufferPool(capacity, size)`` keeps ``capacity`` buffers of ``size`` bytes and
their free list in one shared-memory block (``backends/nexus_pool_shared.c``). The
producer acquires a :class:`SharedLease`, fills ``lease.buffer`` and sends
``lease.send()`` (a small picklable :class:`Handle`) to a worker process, which does
``with nexus_pool.shared.receive(handle) as buf:``; releasing there pushes the slot back
with one compare-and-swap, from any process. A stale, duplicate or foreign handle raises
:class:`ReleasedError`; it is never lent twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from types import TracebackType
from typing import Any, Final, final

from ._errors import PoolExhausted, ReleasedError

try:
    from ._shared_native import ffi, lib
except ImportError as _missing:  # no compiler, or not Linux
    _MISSING: str | None = str(_missing)
else:
    _MISSING = None

__all__ = ["Handle", "SharedBufferPool", "SharedLease", "receive"]

_SLICE: Final = 0.05  # seconds: a futex wait is cut into slices so that signals run


@final
@dataclass(frozen=True)
class Handle:
    """What travels to a worker: which block, which slot, which lease of it."""

    name: str
    slot: int
    generation: int


class _Block:
    """One mapping of a block, in this process."""

    def __init__(self, memory: shared_memory.SharedMemory) -> None:
        self.memory = memory
        self.base = ffi.from_buffer(memory.buf)
        if lib.nxs_check(self.base, memory.size) != 0:
            raise ValueError(f"shared memory {memory.name!r} holds no nexus_pool block")
        self.size = int(lib.nxs_buffer_size(self.base))

    def view(self, slot: int) -> memoryview:
        offset = int(lib.nxs_buffer_offset(self.base, slot))
        return self.memory.buf[offset : offset + self.size]  # each lease its own view


_attached: dict[str, _Block] = {}


def _attach(name: str) -> _Block:
    block = _attached.get(name)
    if block is None:
        memory = shared_memory.SharedMemory(name)
        # 3.11/3.12 register every attachment with the resource tracker, which would
        # unlink the producer's block when this process exits: only the creator owns it.
        resource_tracker.unregister(memory._name, "shared_memory")  # type: ignore[attr-defined]
        block = _attached[name] = _Block(memory)
    return block


@final
class SharedLease:
    """A lease on one shared buffer: ``buffer``, ``release()``, ``with``, ``send()``."""

    __slots__ = ("_block", "_generation", "_held", "_slot", "_view")

    def __init__(self, block: _Block, slot: int, generation: int) -> None:
        self._block = block
        self._slot = slot
        self._generation = generation
        self._view: memoryview | None = block.view(slot)
        self._held = True

    @property
    def buffer(self) -> memoryview:
        if self._view is None:
            raise ReleasedError("this shared lease was released or sent")
        return self._view

    def _end(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None

    def send(self) -> Handle:
        """Hand the lease over: the picklable handle a worker receives it by."""
        if self._view is None or lib.nxs_send(
            self._block.base, self._slot, self._generation, os.getpid(), time.monotonic_ns()
        ) != 0:
            raise ReleasedError("this shared lease was released or sent already")
        self._end()
        return Handle(self._block.memory.name, self._slot, self._generation)

    def release(self) -> None:
        if self._view is None:
            raise ReleasedError("this shared lease was released or sent already")
        self._end()
        if lib.nxs_release(self._block.base, self._slot, self._generation, os.getpid()) != 0:
            raise ReleasedError("this shared lease is no longer held here (reclaimed?)")

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self._view is not None else "released"
        return f"<SharedLease slot={self._slot} generation={self._generation} {state}>"


def receive(handle: Handle) -> SharedLease:
    """Claim a sent lease in this process (attaching the block once); ``ReleasedError``
    for a stale, duplicate or foreign handle."""
    if _MISSING is not None:
        raise RuntimeError(f"nexus_pool.shared is unavailable here: {_MISSING}")
    block = _attach(handle.name)
    if lib.nxs_claim(block.base, handle.slot, handle.generation, os.getpid()) != 0:
        raise ReleasedError(f"{handle} is stale, a duplicate, or was reclaimed: not in transit")
    return SharedLease(block, handle.slot, handle.generation)


@final
class SharedBufferPool:
    """``capacity`` buffers of ``size`` bytes in one shared-memory block (the producer's)."""

    def __init__(self, capacity: int, size: int, *, name: str | None = None) -> None:
        if _MISSING is not None:
            raise RuntimeError(f"nexus_pool.shared is unavailable here: {_MISSING}")
        total = int(lib.nxs_block_size(capacity, size))
        if total == 0:
            raise ValueError(f"capacity and size out of range: {capacity}, {size}")
        self._memory = shared_memory.SharedMemory(name, create=True, size=total)
        base = ffi.from_buffer(self._memory.buf)
        if lib.nxs_init(base, self._memory.size, capacity, size, os.getpid()) != 0:
            self._memory.close()
            self._memory.unlink()
            raise ValueError("the block does not fit its mapping")
        self._block = _Block(self._memory)
        _attached[self._memory.name] = self._block

    @property
    def name(self) -> str:
        return self._memory.name

    @property
    def capacity(self) -> int:
        return int(lib.nxs_capacity(self._block.base))

    @property
    def buffer_size(self) -> int:
        return self._block.size

    def available(self) -> int:
        return int(lib.nxs_available(self._block.base))

    def try_acquire(self) -> SharedLease | None:
        generation = ffi.new("uint32_t *")
        slot = lib.nxs_try_acquire(self._block.base, os.getpid(), generation)
        return None if slot < 0 else SharedLease(self._block, int(slot), int(generation[0]))

    def acquire(self, timeout: float | None = None) -> SharedLease:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (lease := self.try_acquire()) is None:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if remaining <= 0:
                raise PoolExhausted(f"all {self.capacity} shared buffers are in use")
            lib.nxs_wait(self._block.base, int(remaining * 1e9))
        return lease

    def reclaim(self, transit_max_age: float | None = None) -> int:
        """Give back the buffers of dead holders (and of handles in transit too long)."""
        age = -1 if transit_max_age is None else int(transit_max_age * 1e9)
        return int(lib.nxs_reclaim(self._block.base, time.monotonic_ns(), age))

    def close(self) -> None:
        """Unmap and remove the block (the producer's job)."""
        _attached.pop(self._memory.name, None)
        ffi.release(self._block.base)  # cffi's view of the mapping must go before the mapping
        self._memory.close()
        self._memory.unlink()


def _lease_word(pool: SharedBufferPool, slot: int) -> Any:  # for tests
    return int(lib.nxs_lease(pool._block.base, slot))
