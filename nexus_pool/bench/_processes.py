"""Process fan-out: a producer fills chunks, worker *processes* hash them.

The contenders, each written the way its users write it:

* ``nexus_pool.shared``: the producer acquires a shared buffer, fills it, sends its
  handle through a ``multiprocessing.Queue``; the worker receives, hashes, releases
  (the buffer goes straight back to the producer's pool: no return queue);
* ``multiprocessing.Queue of bytes``: the chunk itself is pickled through the queue;
* ``multiprocessing.Pool.imap``: the chunks as the iterable of ``imap(chunksize=1)``;
* ``hand-rolled shared memory``: one ``SharedMemory`` of capacity x size, slot indices
  out through one queue and back through a second.

Workers are started (spawn) and warmed up before the clock starts; each worker sends one
small result per chunk (its digest), which the producer checks against the chunks'.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.pool
import time
from multiprocessing import shared_memory
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "MP_QUEUE", "WAKING_KINDS", "process_fan_out", "process_wakeup"]

WAKING_KINDS = ("shared", "queue")
"""The contenders of the wake-up scenario: a producer blocked until a worker's return."""

MP_QUEUE = "multiprocessing.Queue: bytes"
"""The process scenarios' reference contender."""

KINDS = ("shared", "queue", "imap", "handrolled")

_SPAWN = multiprocessing.get_context("spawn")


def _digest(data: Any) -> bytes:
    return hashlib.sha256(data).digest()


def _shared_worker(inbox: Any, outbox: Any) -> None:
    from nexus_pool import shared

    outbox.put(b"ready")
    while (handle := inbox.get()) is not None:
        with shared.receive(handle) as buffer:
            outbox.put(_digest(buffer))


def _queue_worker(inbox: Any, outbox: Any) -> None:
    outbox.put(b"ready")
    while (chunk := inbox.get()) is not None:
        outbox.put(_digest(chunk))


def _handrolled_worker(name: str, size: int, inbox: Any, outbox: Any, returns: Any) -> None:
    memory = shared_memory.SharedMemory(name)
    buffer = memory.buf
    assert buffer is not None
    try:
        outbox.put(b"ready")
        while (slot := inbox.get()) is not None:
            with buffer[slot * size : (slot + 1) * size] as view:
                outbox.put(_digest(view))
            returns.put(slot)
    finally:
        del buffer
        memory.close()


def _chunks(data: bytes, size: int) -> list[memoryview]:
    view = memoryview(data)
    return [view[offset : offset + size] for offset in range(0, len(data), size)]


def process_fan_out(kind: str, data: bytes, size: int, workers: int) -> float:
    """Seconds to fan ``data`` out in chunks of ``size`` to ``workers`` processes."""
    chunks = _chunks(data, size)
    expected = sorted(_digest(chunk) for chunk in chunks)
    capacity = 2 * workers + 2
    if kind == "imap":
        with _SPAWN.Pool(workers) as pool:
            pool.map(_digest, [b"warm"] * workers)
            started = time.perf_counter()
            got = list(pool.imap(_digest, (bytes(chunk) for chunk in chunks), chunksize=1))
            elapsed = time.perf_counter() - started
    else:
        inbox, outbox = _SPAWN.Queue(), _SPAWN.Queue()
        extra: dict[str, Any] = {}
        target: Callable[..., None]
        args: tuple[Any, ...]
        if kind == "shared":
            from nexus_pool import shared

            pool_ = extra["pool"] = shared.SharedBufferPool(capacity, size)
            target, args = _shared_worker, (inbox, outbox)
        elif kind == "queue":
            target, args = _queue_worker, (inbox, outbox)
        else:
            memory = extra["memory"] = shared_memory.SharedMemory(create=True, size=capacity * size)
            returns = extra["returns"] = _SPAWN.Queue()
            for slot in range(capacity):
                returns.put(slot)
            target, args = _handrolled_worker, (memory.name, size, inbox, outbox, returns)
        processes = [_SPAWN.Process(target=target, args=args, daemon=True) for _ in range(workers)]
        try:
            for process in processes:
                process.start()
            for _ in processes:
                outbox.get(timeout=120)
            started = time.perf_counter()
            for chunk in chunks:
                if kind == "shared":
                    lease = pool_.acquire()
                    lease.buffer[: len(chunk)] = chunk
                    inbox.put(lease.send())
                elif kind == "queue":
                    inbox.put(bytes(chunk))
                else:
                    slot = returns.get()
                    assert memory.buf is not None
                    memory.buf[slot * size : slot * size + len(chunk)] = chunk
                    inbox.put(slot)
            got = [outbox.get(timeout=120) for _ in chunks]
            elapsed = time.perf_counter() - started
            for _ in processes:
                inbox.put(None)
            for process in processes:
                process.join(60)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
            if "pool" in extra:
                extra["pool"].close()
            if "memory" in extra:
                extra["memory"].close()
                extra["memory"].unlink()
    if sorted(got) != expected:
        raise AssertionError(f"{kind}: the chunks' digests do not match: a buffer was overwritten in use")
    return elapsed


def _shared_waker(inbox: Any, started: Any) -> None:
    from nexus_pool import shared

    started.put(b"ready")
    while (handle := inbox.get()) is not None:
        lease = shared.receive(handle)
        time.sleep(0.0005)  # the producer is asleep in acquire() by now
        lease.buffer[:8] = time.monotonic_ns().to_bytes(8, "little")
        lease.release()


def _queue_waker(inbox: Any, returns: Any) -> None:
    returns.put(b"ready")
    while inbox.get() is not None:
        time.sleep(0.0005)
        returns.put(time.monotonic_ns())


def process_wakeup(kind: str, rounds: int) -> list[int]:
    """Nanoseconds from a worker process's return of the one buffer to the blocked
    producer's wake-up, ``rounds`` times: the buffer's release (``shared``: the worker
    stamps the time into the buffer) or a ``multiprocessing.Queue`` put (``queue``)."""
    inbox, back = _SPAWN.Queue(), _SPAWN.Queue()
    pool = None
    if kind == "shared":
        from nexus_pool import shared

        pool = shared.SharedBufferPool(1, 4096)
        process = _SPAWN.Process(target=_shared_waker, args=(inbox, back), daemon=True)
    else:
        process = _SPAWN.Process(target=_queue_waker, args=(inbox, back), daemon=True)
    latencies = []
    try:
        process.start()
        back.get(timeout=120)
        for _ in range(rounds):
            if pool is not None:
                inbox.put(pool.acquire().send())
                lease = pool.acquire(timeout=60)  # asleep until the worker releases
                woke = time.monotonic_ns()
                latencies.append(woke - int.from_bytes(lease.buffer[:8], "little"))
                lease.release()
            else:
                inbox.put(True)
                returned = back.get(timeout=60)
                latencies.append(time.monotonic_ns() - returned)
        inbox.put(None)
        process.join(60)
    finally:
        if process.is_alive():
            process.kill()
        if pool is not None:
            pool.close()
    return latencies
