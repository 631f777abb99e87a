"""Zero-copy buffer pools shared with worker processes (``nexus_pool.shared``; Linux).

One shared-memory block holds a header, one record per slot, a work queue and the
page-aligned buffers. Each slot's lease word (generation, state, holder pid) is the only
truth of who has it, and every hand-over between processes is one compare-and-swap on it
(the C core, ``backends/nexus_pool_shared.c``; its Python types,
``backends/nexus_pool_shared_module.c``, whose pool type subclasses the public
:class:`SharedBufferPool` of ``_shared_base.py``):

* the producer acquires a lease (``acquire``/``try_acquire``), fills ``lease.value`` (a
  buffer with :class:`nexus_pool.Buffer`'s interface, its filled length kept in the
  block) and hands it on: ``pool.queue.put(lease)`` into the block's own work queue, or
  ``lease.send()``, a small picklable :class:`Handle`, through any queue;
* a worker does ``for lease in nexus_pool.shared.receiver(name):`` (or
  ``with nexus_pool.shared.receive(handle) as buffer:``), which attaches the block by name
  (once per process) and takes the slot; releasing it, from that process, puts it
  straight back in the producer's pool;
* a stale, duplicate or foreign handle is refused (:class:`~nexus_pool.ReleasedError`); a buffer is
  never lent twice.

The per-buffer path (acquire, put, get, send, receive, release) is C and runs no
bytecode of ours.

Crash safety: a process killed at any instruction leaves each slot in exactly one state,
and ``pool.reclaim()`` gives back the buffers of processes that died holding them (and,
on request, of handles sent or queued longer than an age and never taken); a worker's
loop ends with :class:`ProducerGone` when the producer dies; :func:`remove_orphans`
removes the blocks of producers that died without closing them.

Trust: the block is untrusted input (any process of the same user can write into it).
Each process keeps its own checked copy of the block's geometry and checks every index it
reads from the block; a block that says what no nexus_pool process writes raises
:class:`~nexus_pool.SharedBlockCorrupted`, and is never read or written out of bounds.

Closing: the producer's block is closed (and its name removed) by ``close()``, at the end
of a ``with`` block, or when the pool is collected or the interpreter exits. From then
on every method of the pool raises ``ValueError``, and threads waiting in ``acquire()``
wake up to raise it. The memory stays mapped for as long as anything can touch it: leases
still out keep working until released (their buffers, and views of them, stay valid).
"""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from ._errors import BackendUnavailable, ProducerGone
from ._shared_base import BLOCK_PREFIX, SharedBufferPool, describe_shared, install_maker, pid_alive, shared_holders
from ._shared_handle import Handle

if TYPE_CHECKING:
    from ._shared_native import SharedBufferPool as NativePool
    from ._shared_native import SharedLease, WorkQueue

__all__ = [
    "BLOCK_PREFIX",
    "Handle",
    "SharedBufferPool",
    "describe_shared",
    "handles",
    "producer_alive",
    "receive",
    "receiver",
    "remove_orphans",
    "shared_holders",
    "shared_unavailable",
]


def _load() -> tuple[type[NativePool] | None, str]:
    if not sys.platform.startswith("linux"):
        return None, f"nexus_pool.shared needs Linux (futexes, POSIX shared memory); this is {sys.platform}"
    try:
        from ._shared_native import SharedBufferPool as native_pool
    except ImportError as exc:
        return None, f"its compiled module is missing ({exc}); pip builds it at install time"
    return native_pool, ""


_native_pool, _missing = _load()


def shared_unavailable() -> str:
    """Why ``nexus_pool.shared`` cannot work here; empty if it can."""
    return _missing


def _native() -> type[NativePool]:
    if _native_pool is None:
        raise BackendUnavailable(_missing)
    return _native_pool


_attached: dict[str, NativePool] = {}
"""The blocks this process mapped, by name: the producer's own, and those it took from."""

_attach_lock = threading.Lock()

_producers: weakref.WeakSet[NativePool] = weakref.WeakSet()
"""The pools this process made: closed (their names removed) at interpreter exit."""


def _make(capacity: int, size: int, name: str | None) -> NativePool:
    pool = _native()._create(name or f"{BLOCK_PREFIX}{os.getpid()}-{secrets.token_hex(4)}", capacity, size)
    _attached[pool.name] = pool
    _producers.add(pool)
    return pool


install_maker(_make)


@atexit.register
def _close_producers() -> None:
    """At exit, close the pools this process made: their names go (threads still asleep
    in them wake up; the mappings go with the process)."""
    for pool in list(_producers):
        pool.close()


def _attach(name: str) -> NativePool:
    """The mapping of block ``name`` in this process, made on first use (checked)."""
    block = _attached.get(name)
    if block is None or block.closed:
        with _attach_lock:
            block = _attached.get(name)
            if block is None or block.closed:
                block = _attached[name] = _native()._attach(name)
    return block


def receive(handle: Handle) -> SharedLease:
    """Claim the lease ``handle`` stands for, in this process (attaching its block once).

    ``ReleasedError`` for a stale, duplicate or foreign handle, or one reclaimed meanwhile;
    :class:`~nexus_pool.SharedBlockCorrupted` if the block is not a sound nexus_pool block.
    """
    name, slot, generation = handle
    return _attach(name)._claim(slot, generation)


def receiver(source: str | Handle) -> WorkQueue:
    """The work queue of the shared block named ``source`` (a pool's ``name``, or any of
    its handles), attached in this process: what a worker takes leases from::

        for lease in shared.receiver(pool_name):      # up to a stop marker: queue.put(None)
            with lease as buffer:
                ...                                   # released: back in the producer's pool

    ``get(timeout=None)`` takes one (``None`` for a stop marker or a shut-down pool with
    nothing left; ``queue.Empty`` after ``timeout``); both end with
    :class:`~nexus_pool.shared.ProducerGone` if the producer dies and nothing is left.
    """
    name = source.name if isinstance(source, Handle) else source
    if not isinstance(name, str):
        raise TypeError(f"receiver() takes a block name or a Handle, not {type(source).__name__}")
    return _attach(name).queue


class _Getter(Protocol):
    def get(self, block: bool = ..., timeout: float | None = ...) -> Handle | None: ...


def producer_alive(name: str) -> bool:
    """Whether the process that created block ``name`` still runs (False if the block is
    gone): what a worker asks instead of waiting for ever on a dead producer."""
    try:
        block = _attach(name)
    except FileNotFoundError:
        return False
    return pid_alive(block.creator)


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
        if pid_alive(creator):
            continue
        try:
            os.unlink(f"/dev/shm/{entry}")
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed
