"""The benchmark's scenarios, after the Rust crate's benches.

Each scenario runs one contender once and returns a :class:`Run`: the time per
operation of a batch run (no timer inside the loop), and per-operation samples from a
second run that reads the clock around every operation. The clock's own cost (two
back-to-back ``perf_counter_ns()`` calls, median) is subtracted from every sample.
"""

from __future__ import annotations

import gc
import hashlib
import os
import queue
import statistics
import tempfile
import threading
import tracemalloc
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter, perf_counter_ns
from typing import Any

from .. import Buffer, BufferPool, Pooled
from ._contenders import Contender

__all__ = [
    "CAPACITY",
    "FRAME",
    "DataFile",
    "Run",
    "Sizes",
    "barrier_release",
    "clock_cost_ns",
    "cross_thread",
    "file_fan_out",
    "floor_cycle",
    "make_data_file",
    "same_thread_cycle",
    "with_block",
]

CAPACITY = 64
FRAME = b"market frame 0123456789abcdef" * 2  # what the fan-out parser writes into a buffer


make_buffer = bytearray  # an empty buffer per slot; the fan-out parser writes a FRAME into it
reset_buffer = bytearray.clear


@dataclass(frozen=True)
class Sizes:
    cycles: int  # same-thread acquire+release cycles per run
    items: int  # buffers handed across threads per run
    rounds: int  # barrier rounds per run (each releases all CAPACITY slots)
    file_bytes: int  # the size of the file the real-work scenarios read
    file_capacity: int | None = None  # slots in the file scenarios; None: 64 up to 64 KiB chunks, else 2N+2


@dataclass
class Run:
    """One contender, one scenario, one repeat."""

    ns_per_op: float
    samples: dict[str, list[int]] = field(default_factory=dict)  # op name -> ns, clock cost removed
    peak_bytes: int | None = None  # peak of traced memory, where the scenario measures it
    cpu_ns: float | None = None  # CPU time of every process involved, per operation, where measured


def clock_cost_ns(count: int = 20_000) -> float:
    """What timing an empty stretch of code reads: the cost subtracted from samples."""
    clock = perf_counter_ns
    costs = []
    for _ in range(count):
        start = clock()
        costs.append(clock() - start)
    return statistics.median(costs)


@contextmanager
def _collected() -> Iterator[None]:
    """Start each run from a clean heap, so one contender's garbage is not the next one's cost."""
    gc.collect()
    yield


def _net(samples: list[int], clock_cost: float) -> list[int]:
    return [max(0, round(sample - clock_cost)) for sample in samples]


def _cycle_run(elapsed: float, cycles: int, acquire_ns: list[int], release_ns: list[int], clock_cost: float) -> Run:
    return Run(
        elapsed / cycles * 1e9,
        {"acquire": _net(acquire_ns, clock_cost), "release": _net(release_ns, clock_cost)},
    )


def floor_cycle(sizes: Sizes, clock_cost: float) -> Run:
    """The floor: a bare deque ``pop()`` + ``clear()`` + ``append()``, inline."""
    free = deque(make_buffer() for _ in range(CAPACITY))
    pop, append = free.pop, free.append
    with _collected():
        started = perf_counter()
        for _ in range(sizes.cycles):
            value = pop()
            value.clear()
            append(value)
        elapsed = perf_counter() - started
    clock = perf_counter_ns
    acquire_ns, release_ns = [], []
    for _ in range(sizes.cycles // 2):
        t0 = clock()
        value = pop()
        t1 = clock()
        value.clear()
        append(value)
        t2 = clock()
        acquire_ns.append(t1 - t0)
        release_ns.append(t2 - t1)
    return _cycle_run(elapsed, sizes.cycles, acquire_ns, release_ns, clock_cost)


def same_thread_cycle(contender: Contender, sizes: Sizes, clock_cost: float) -> Run:
    """``release(try_acquire())`` on one thread, the pool never empty."""
    pool = contender.make(CAPACITY, make_buffer, reset_buffer)
    try_acquire, release = pool.try_acquire, pool.release
    with _collected():
        started = perf_counter()
        for _ in range(sizes.cycles):
            release(try_acquire())
        elapsed = perf_counter() - started
    clock = perf_counter_ns
    acquire_ns, release_ns = [], []
    for _ in range(sizes.cycles // 2):
        t0 = clock()
        handle = try_acquire()
        t1 = clock()
        release(handle)
        t2 = clock()
        acquire_ns.append(t1 - t0)
        release_ns.append(t2 - t1)
    return _cycle_run(elapsed, sizes.cycles, acquire_ns, release_ns, clock_cost)


def with_block(contender: Contender, sizes: Sizes, clock_cost: float) -> Run:
    """``with pool.acquire(0): pass`` (nexus_pool only: the others have no guard)."""
    pool = contender.make(CAPACITY, make_buffer, reset_buffer)
    acquire = pool.acquire
    with _collected():
        started = perf_counter()
        for _ in range(sizes.cycles):
            with acquire(0):
                pass
        elapsed = perf_counter() - started
    clock = perf_counter_ns
    block_ns = []
    for _ in range(sizes.cycles // 2):
        t0 = clock()
        with acquire(0):
            pass
        block_ns.append(clock() - t0)
    return Run(elapsed / sizes.cycles * 1e9, {"with-block": _net(block_ns, clock_cost)})


def cross_thread(contender: Contender, sizes: Sizes, clock_cost: float, returners: int, *, fill: bool) -> Run:
    """One acquirer hands buffers to ``returners`` threads through SimpleQueues.

    The acquirer blocks in ``acquire()`` while every slot is out (it never spins);
    with ``fill`` it writes a frame into each buffer and the returner reads it back,
    the fan-out pipeline. ``ns_per_op`` is wall time per buffer handed over.
    """
    pool = contender.make(CAPACITY, make_buffer, reset_buffer)
    acquire, release = pool.acquire, pool.release
    value_of: Callable[[Any], bytearray] = pool.value
    inboxes: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(returners)]
    release_ns: list[list[int]] = [[] for _ in range(returners)]
    corrupted: list[bytes] = []
    clock = perf_counter_ns

    def returner(inbox: queue.SimpleQueue[Any], timings: list[int]) -> None:
        while (handle := inbox.get()) is not None:
            if fill and value_of(handle) != FRAME:
                corrupted.append(bytes(value_of(handle)))  # report it, but keep the slots flowing
            t0 = clock()
            release(handle)
            timings.append(clock() - t0)

    threads = [
        threading.Thread(target=returner, args=(inbox, timings), daemon=True)
        for inbox, timings in zip(inboxes, release_ns, strict=True)
    ]
    acquire_ns = []
    with _collected():
        for thread in threads:
            thread.start()
        started = perf_counter()
        for number in range(sizes.items):
            t0 = clock()
            handle = acquire()
            acquire_ns.append(clock() - t0)
            if fill:
                value_of(handle).extend(FRAME)
            inboxes[number % returners].put(handle)
        for inbox in inboxes:
            inbox.put(None)
        for thread in threads:
            thread.join()
        elapsed = perf_counter() - started
    if corrupted:
        raise AssertionError(f"{contender.name}: {len(corrupted)} buffers held other data, e.g. {corrupted[0]!r}")
    return Run(
        elapsed / sizes.items * 1e9,
        {
            "acquire": _net(acquire_ns, clock_cost),
            "release": _net([ns for timings in release_ns for ns in timings], clock_cost),
        },
    )


def barrier_release(contender: Contender, sizes: Sizes, clock_cost: float, threads: int) -> Run:
    """All slots taken, then released by ``threads`` threads starting at one barrier.

    ``ns_per_op`` is wall time per release, from the barrier to the last thread done.
    """
    pool = contender.make(CAPACITY, make_buffer, reset_buffer)
    try_acquire, release = pool.try_acquire, pool.release
    # Timeouts turn a releaser that died into an error instead of a hang.
    start = threading.Barrier(threads + 1, timeout=60)
    done = threading.Barrier(threads + 1, timeout=60)
    shares: list[list[Any]] = [[] for _ in range(threads)]
    release_ns: list[list[int]] = [[] for _ in range(threads)]
    clock = perf_counter_ns

    def releaser(share: list[Any], timings: list[int]) -> None:
        for _ in range(sizes.rounds):
            start.wait()
            for handle in share:
                t0 = clock()
                release(handle)
                timings.append(clock() - t0)
            share.clear()
            done.wait()

    workers = [
        threading.Thread(target=releaser, args=(share, timings), daemon=True)
        for share, timings in zip(shares, release_ns, strict=True)
    ]
    elapsed = 0.0
    with _collected():
        for worker in workers:
            worker.start()
        for _ in range(sizes.rounds):
            handles = [try_acquire() for _ in range(CAPACITY)]
            for index, share in enumerate(shares):
                share.extend(handles[index::threads])
            del handles
            started = perf_counter()
            start.wait()
            done.wait()
            elapsed += perf_counter() - started
        for worker in workers:
            worker.join()
    releases = sizes.rounds * CAPACITY
    return Run(elapsed / releases * 1e9, {"release": _net([ns for t in release_ns for ns in t], clock_cost)})


@dataclass(frozen=True)
class DataFile:
    """The file the real-work scenarios read, made once per benchmark run."""

    path: str
    size: int
    digest_sum: dict[tuple[int, str], int]  # (chunk size, work) -> sum of the chunks' digests


def _sha256(view: memoryview | bytes) -> int:
    return int.from_bytes(hashlib.sha256(view).digest(), "big")


WORKS: dict[str, Callable[[memoryview | bytes], int]] = {"sha256": _sha256, "crc32": zlib.crc32}
"""What a worker does with a chunk: a heavy hash and a light checksum (both release the GIL
for large inputs)."""


def make_data_file(size: int, chunks: tuple[int, ...]) -> DataFile:
    handle, path = tempfile.mkstemp(prefix="nexus-pool-bench-", suffix=".data")
    with os.fdopen(handle, "wb") as out:
        for offset in range(0, size, 1 << 20):
            out.write(os.urandom(min(1 << 20, size - offset)))
    sums = {}
    with open(path, "rb") as source:
        for chunk in chunks:
            for name, work in WORKS.items():
                source.seek(0)
                total = 0
                while data := source.read(chunk):
                    total += work(data)
                sums[chunk, name] = total % (1 << 256)
    return DataFile(path, size, sums)


def file_fan_out(
    contender: Contender,
    sizes: Sizes,
    clock_cost: float,
    data: DataFile,
    chunk: int,
    workers: int,
    work: str = "sha256",
) -> Run:
    """A reader fills chunks of a file, ``workers`` threads hash them (``work``): real work.

    Pools: ``readinto()`` a pooled ``bytearray(chunk)``, hand (handle, length) over a
    SimpleQueue, the worker hashes the filled part and releases; ``BufferPool``: the
    buffer's own ``readinto`` and ``filled``, no length carried. Fresh bytes: ``read()``
    a new ``bytes`` per chunk through a bounded ``queue.Queue`` (as many as the pools
    have slots) or an unbounded ``SimpleQueue``. ``ns_per_op`` is wall time per chunk;
    ``peak`` the peak of traced memory (tracemalloc, in a separate pass). The hashes are
    checked, so a buffer reused while a worker reads it would fail the run.
    """
    capacity = sizes.file_capacity or (CAPACITY if chunk <= 64 * 1024 else 2 * workers + 2)
    elapsed = _file_pass(contender, data, chunk, workers, capacity, work)
    tracemalloc.start()
    try:
        _file_pass(contender, data, chunk, workers, capacity, work)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Run(elapsed / (data.size / chunk) * 1e9, {}, peak)


def _file_pass(contender: Contender, data: DataFile, chunk: int, workers: int, capacity: int, work: str) -> float:
    """One pass over the file; the seconds it took."""
    digests: list[int] = []
    digest = WORKS[work]

    def hash_chunk(view: memoryview | bytes) -> None:
        digests.append(digest(view))

    if contender.buffers:
        buffers = BufferPool(capacity, chunk, backend=contender.buffers)
        filled_buffers: queue.SimpleQueue[Pooled[Buffer] | None] = queue.SimpleQueue()

        def buffer_worker() -> None:
            while (guard := filled_buffers.get()) is not None:
                with guard as buffer:
                    hash_chunk(buffer.filled)

        threads = [threading.Thread(target=buffer_worker, daemon=True) for _ in range(workers)]
        with _collected(), open(data.path, "rb", buffering=0) as source:
            for thread in threads:
                thread.start()
            started = perf_counter()
            while True:
                guard = buffers.acquire()
                if not guard.value.readinto(source):
                    guard.release()
                    break
                filled_buffers.put(guard)
            del guard
            for _ in threads:
                filled_buffers.put(None)
            for thread in threads:
                thread.join()
            elapsed = perf_counter() - started
    elif contender.fresh:
        chunks: queue.Queue[bytes | None] | queue.SimpleQueue[bytes | None] = (
            queue.Queue(capacity) if contender.fresh == "bounded" else queue.SimpleQueue()
        )

        def fresh_worker() -> None:
            while (block := chunks.get()) is not None:
                hash_chunk(block)

        threads = [threading.Thread(target=fresh_worker, daemon=True) for _ in range(workers)]
        with _collected(), open(data.path, "rb", buffering=0) as source:
            for thread in threads:
                thread.start()
            started = perf_counter()
            while block := source.read(chunk):
                chunks.put(block)
            for _ in threads:
                chunks.put(None)
            for thread in threads:
                thread.join()
            elapsed = perf_counter() - started
    else:
        pool = contender.make(capacity, lambda: bytearray(chunk), _keep)
        acquire, release = pool.acquire, pool.release
        value_of: Callable[[Any], bytearray] = pool.value
        filled: queue.SimpleQueue[tuple[Any, int] | None] = queue.SimpleQueue()

        def pooled_worker() -> None:
            while (item := filled.get()) is not None:
                handle, length = item
                hash_chunk(memoryview(value_of(handle))[:length])
                release(handle)

        threads = [threading.Thread(target=pooled_worker, daemon=True) for _ in range(workers)]
        with _collected(), open(data.path, "rb", buffering=0) as source:
            for thread in threads:
                thread.start()
            started = perf_counter()
            while True:
                handle = acquire()
                length = source.readinto(value_of(handle))
                if not length:
                    release(handle)
                    break
                filled.put((handle, length))
            for _ in threads:
                filled.put(None)
            for thread in threads:
                thread.join()
            elapsed = perf_counter() - started
    if sum(digests) % (1 << 256) != data.digest_sum[chunk, work]:
        raise AssertionError(f"{contender.name}: the chunks' hashes do not add up: a buffer was overwritten in use")
    return elapsed


def _keep(buffer: bytearray) -> None:
    """No reset: readinto() overwrites the buffer, and the length travels with it."""
