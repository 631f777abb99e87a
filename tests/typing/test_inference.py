"""What mypy infers for users' code; checked by the project's mypy run (``assert_type``).

The same functions also run under pytest, so every line here is real, working code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from typing_extensions import assert_type

import nexus_pool.sync
from nexus_pool import AsyncAcquisition, Buffer, BufferPool, Pool, Pooled, PoolStats, local, shared


def clear(buffer: bytearray) -> None:
    buffer.clear()


def test_pool_type_comes_from_the_factory() -> None:
    assert_type(Pool(4, bytearray), Pool[bytearray])
    assert_type(Pool(4, bytearray, bytearray.clear), Pool[bytearray])
    assert_type(Pool(4, bytearray, clear, backend="locked"), Pool[bytearray])
    assert_type(Pool(2, lambda: [1, 2]), Pool[list[int]])
    assert_type(nexus_pool.sync.Pool(4, bytearray), nexus_pool.sync.Pool[bytearray])


def test_acquisitions_and_guards() -> None:
    pool = Pool(4, bytearray, clear)
    maybe = pool.try_acquire()
    assert_type(maybe, Pooled[bytearray] | None)
    if maybe is not None:  # mypy makes the user check
        assert_type(maybe.value, bytearray)
        maybe.release()
    guard = pool.acquire()
    assert_type(guard, Pooled[bytearray])
    assert_type(pool.acquire(timeout=0.5), Pooled[bytearray])
    with guard as buffer:
        assert_type(buffer, bytearray)


def test_pool_properties() -> None:
    pool = Pool(3, list[str])
    assert_type(pool, Pool[list[str]])
    assert_type(pool.capacity, int)
    assert_type(pool.available(), int)
    assert_type(pool.backend, str)
    assert_type(pool.handoff(), None)


def test_statistics() -> None:
    stats = Pool(2, bytearray).stats()
    assert_type(stats, PoolStats)
    assert_type(stats.in_use, int)
    assert_type(stats.high_water, int)
    assert_type(stats.exhaustions, int)
    assert_type(stats.wait_seconds, float)


def test_async_acquisition() -> None:
    pool = Pool(2, bytearray, clear)
    assert_type(pool.acquire_async(), AsyncAcquisition[bytearray])

    async def main() -> None:
        guard = await pool.acquire_async(timeout=1)
        assert_type(guard, Pooled[bytearray])
        guard.release()
        async with pool.acquire_async() as buffer:
            assert_type(buffer, bytearray)

    asyncio.run(main())


def test_local_pools() -> None:
    growable = local.Pool(bytearray, clear)
    assert_type(growable, local.Pool[bytearray])
    assert_type(growable.acquire(), Pooled[bytearray])
    assert_type(growable.try_acquire(), Pooled[bytearray] | None)
    assert_type(growable.take(), bytearray)
    bounded = local.BoundedPool(2, lambda: [0.5])
    assert_type(bounded, local.BoundedPool[list[float]])
    with bounded.acquire() as numbers:
        assert_type(numbers, list[float])
    assert_type(bounded.capacity, int)
    assert_type(bounded.available(), int)


def test_buffer_pools_and_shutdown() -> None:
    with BufferPool(2, 64, zero=True) as pool:
        assert_type(pool, BufferPool)
        assert_type(pool.size, int)
        assert_type(pool.zero, bool)
        as_a_pool: Pool[Buffer] = pool  # a BufferPool is a Pool of Buffers
        assert_type(as_a_pool.acquire(), Pooled[Buffer])
        with pool.acquire() as buffer:
            assert_type(buffer, Buffer)
            assert_type(buffer.write(b"abc"), int)
            assert_type(buffer.filled, memoryview)
            assert_type(buffer.length, int)
            assert_type(buffer.data, bytearray)
    assert_type(pool.is_shutdown, bool)
    assert_type(pool.shutdown(), None)


def test_shared_buffer_pools() -> None:
    if shared.shared_unavailable():
        return
    with shared.SharedBufferPool(2, 64) as pool:
        assert_type(pool, shared.SharedBufferPool)
        assert_type(pool.size, int)
        assert_type(pool.try_acquire(), shared.SharedLease | None)
        lease = pool.acquire(timeout=1)
        assert_type(lease.value, shared.SharedBuffer)
        assert_type(lease.value.data, memoryview)
        assert_type(lease.value.write(b"abc"), int)
        assert_type(lease.value.filled, memoryview)
        handle = lease.send()
        assert_type(handle, shared.Handle)
        assert_type(handle.slot, int)
        with shared.receive(handle) as buffer:
            assert_type(buffer, shared.SharedBuffer)
            assert_type(buffer.length, int)
        work = pool.queue
        assert_type(work, shared.WorkQueue)
        assert_type(work.put(pool.acquire()), None)
        assert_type(work.get(timeout=1), shared.SharedLease | None)
        assert_type(shared.receiver(pool.name), shared.WorkQueue)
        assert_type(pool.stats(), PoolStats)
        assert_type(pool.is_shutdown, bool)
        assert_type(pool.reclaim(transit_max_age=1.0), int)
        assert_type(shared.producer_alive(pool.name), bool)


def test_holders_and_leak_tracking() -> None:
    from nexus_pool import AcquireSite, Holder, PoolExhausted, PoolLeakWarning

    pool = Pool(2, bytearray, track="every", warn_after=60.0)
    guard = pool.acquire()
    holders = pool.holders()
    assert_type(holders, list[Holder])
    holder = holders[0]
    assert_type(holder.slot, int | None)
    assert_type(holder.seconds, float)
    assert_type(holder.thread_id, int)
    assert_type(holder.thread_name, str)
    assert_type(holder.site, AcquireSite | None)
    if holder.site is not None:
        assert_type(holder.site.lineno, int)
    assert_type(holder.how, Literal["sync", "async", "local"])
    assert_type(pool.stats().oldest_held, float | None)
    assert issubclass(PoolLeakWarning, ResourceWarning)
    try:
        pool.acquire(0)
        pool.acquire(0)
    except PoolExhausted as error:
        assert_type(error.holders, Sequence[Holder | shared.SharedHolder])
    guard.release()
    assert_type(local.Pool(bytearray, track="off").holders(), list[Holder])
    assert_type(local.BoundedPool(1, bytearray, track="sampled").holders(), list[Holder])
    assert_type(BufferPool(2, 64, track="every", warn_after=5).holders(), list[Holder])
    if not shared.shared_unavailable():
        with shared.SharedBufferPool(1, 64) as buffers:
            assert_type(buffers.holders(), list[shared.SharedHolder])
            assert_type(buffers.closed, bool)
