"""One API for threads and processes: the same pipeline over a ``BufferPool`` with worker
threads and over a ``SharedBufferPool`` with worker processes; the shared pool's side of
the guard protocol (``shutdown``, ``stats``, ``acquire_async``); and numpy views."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import threading
import time
from collections.abc import Iterator

import pytest

from nexus_pool import Buffer, BufferPool, Pooled, PoolExhausted, PoolShutDown, PoolStats, ReleasedError, shared
from nexus_pool._shared import shared_unavailable

from ..conformance.support import IN_CI
from . import pipeline
from .test_shared import SPAWN

pytestmark = pytest.mark.skipif(
    bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
)

WORKERS = 2


@pytest.fixture
def pool() -> Iterator[shared.SharedBufferPool]:
    with shared.SharedBufferPool(4, 4096) as made:
        yield made


def chunks() -> list[bytes]:
    sizes = [1, 4096, 17, 0, 4095, *range(100, 4000, 97)]
    return [os.urandom(size) for size in sizes]


def test_one_pipeline_over_worker_threads() -> None:
    data = chunks()
    results: queue.SimpleQueue[str] = queue.SimpleQueue()
    with BufferPool(4, 4096) as pool:
        outbox: queue.SimpleQueue[Pooled[Buffer] | None] = queue.SimpleQueue()
        workers = [threading.Thread(target=pipeline.work, args=(outbox, results)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        pipeline.produce(pool, outbox, data, WORKERS)
        got = [results.get(timeout=60) for _ in data]
        for worker in workers:
            worker.join(60)
        assert sorted(got) == sorted(hashlib.sha256(chunk).hexdigest() for chunk in data)
        assert pool.available() == 4 and pool.stats().acquisitions == len(data)


def test_the_same_pipeline_over_worker_processes() -> None:
    """Only the pool, the queue and how workers start differ from the threads' test."""
    data = chunks()
    results = SPAWN.Queue()
    with shared.SharedBufferPool(4, 4096) as pool:
        outbox = pool.queue
        workers = [SPAWN.Process(target=pipeline.work_in_a_process, args=(pool.name, results)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        pipeline.produce(pool, outbox, data, WORKERS)
        got = [results.get(timeout=60) for _ in data]
        for worker in workers:
            worker.join(60)
        assert sorted(got) == sorted(hashlib.sha256(chunk).hexdigest() for chunk in data)
        assert pool.available() == 4 and pool.stats().acquisitions == len(data)


def test_the_filled_length_travels_in_the_block(pool: shared.SharedBufferPool) -> None:
    lease = pool.acquire()
    assert lease.value.write(b"hello") == 5
    handle = lease.send()
    with shared.receive(handle) as buffer:
        assert (buffer.length, bytes(buffer.filled)) == (5, b"hello")
        buffer.length = 2
        assert bytes(buffer.filled) == b"he"
        with pytest.raises(ValueError, match="length must be between 0 and the buffer's size 4096"):
            buffer.length = 4097
    with pool.acquire() as again:
        assert again.length == 0, "acquiring forgets the last holder's length"


def test_the_work_queue_hands_each_lease_to_one_taker(pool: shared.SharedBufferPool) -> None:
    work = pool.queue
    leases = [pool.acquire() for _ in range(4)]
    for number, lease in enumerate(leases):
        lease.value.write(bytes([number]))
        work.put(lease)
    with pytest.raises(ReleasedError):
        _ = leases[0].value  # put: no longer this side's
    with pytest.raises(ReleasedError, match="released or sent already"):
        work.put(leases[0])
    taken = [work.get(timeout=1) for _ in range(4)]
    assert [bytes(lease.value.filled) for lease in taken if lease is not None] == [b"\0", b"\1", b"\2", b"\3"]
    with pytest.raises(queue.Empty):
        work.get(timeout=0.01)
    for got in taken:
        assert got is not None
        got.release()
    work.put(None)
    assert work.get(timeout=1) is None, "a stop marker"
    assert pool.available() == 4


def test_shutdown_wakes_the_waiting_acquirer_and_releases_still_count(pool: shared.SharedBufferPool) -> None:
    leases = [pool.acquire() for _ in range(4)]
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire(timeout=30)
        except BaseException as error:  # recorded for the assertion
            raised.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    pool.shutdown()
    waiter.join(10)
    assert not waiter.is_alive() and isinstance(raised[0], PoolShutDown)
    assert pool.is_shutdown
    with pytest.raises(PoolShutDown):
        pool.try_acquire()
    for lease in leases:
        lease.release()
    assert pool.available() == 4
    assert pool.queue.get(timeout=1) is None, "workers see the end"


def test_stats_count_what_happened(pool: shared.SharedBufferPool) -> None:
    held = [pool.acquire() for _ in range(4)]
    with pytest.raises(PoolExhausted):
        pool.acquire(timeout=0.02)
    stats = pool.stats()
    assert isinstance(stats, PoolStats)
    assert (stats.capacity, stats.in_use, stats.high_water, stats.acquisitions) == (4, 4, 4, 4)
    assert stats.exhaustions >= 1 and stats.wait_seconds >= 0.015
    assert stats.oldest_held is not None and stats.oldest_held >= 0.015
    for lease in held:
        lease.release()


def test_acquire_async_lets_an_event_loop_be_the_producer(pool: shared.SharedBufferPool) -> None:
    async def main() -> list[int]:
        held = [pool.acquire() for _ in range(4)]
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, held[2].release)
        lease = await pool.acquire_async(timeout=10)  # the loop runs on while it waits
        with pytest.raises(PoolExhausted):
            await pool.acquire_async(timeout=0.02)
        for other in held[:2] + held[3:]:
            other.release()
        slot = lease.slot
        lease.release()
        return [slot]

    assert asyncio.run(main()) == [2]
    assert pool.available() == 4


def test_size_is_the_buffer_size_and_buffer_size_is_deprecated(pool: shared.SharedBufferPool) -> None:
    assert pool.size == 4096
    with pytest.warns(DeprecationWarning, match=r"use \.size"):
        assert pool.buffer_size == 4096


# ---- numpy ---------------------------------------------------------------------------------


def test_numpy_views_a_shared_buffer_without_copying(pool: shared.SharedBufferPool) -> None:
    numpy = pytest.importorskip("numpy", reason="numpy is optional (pip install 'nexus-pool[test]' has it)")
    lease = pool.acquire()
    samples = numpy.frombuffer(lease.value.data, dtype=numpy.float64)  # a view: no copy
    assert samples.shape == (512,) and not samples.flags.owndata
    samples[:] = numpy.arange(512, dtype=numpy.float64)
    lease.value.length = samples.nbytes
    with shared.receive(lease.send()) as buffer:
        seen = numpy.frombuffer(buffer.filled, dtype=numpy.float64)
        assert seen.sum() == sum(range(512)), "the worker reads the producer's numbers in place"
        del seen
    # A view kept past its lease still points at the slot: the next lease's bytes.
    with pool.acquire() as buffer:
        buffer.data[:8] = bytes(8)
    assert samples[0] == 0.0, "a view kept past release aliases whoever holds the slot next"
