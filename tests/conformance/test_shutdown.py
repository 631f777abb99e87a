"""``pool.shutdown()``: acquisitions stop, waiters wake, releases still count."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nexus_pool import Pool, Pooled, PoolError, PoolShutDown

from .support import WAIT, Item, collecting, drain, make_pool, running, spawn


def test_after_shutdown_every_acquisition_raises(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    before = pool.is_shutdown
    pool.shutdown()
    assert (before, pool.is_shutdown) == (False, True)
    for acquire in (pool.try_acquire, pool.acquire, lambda: pool.acquire(0), lambda: pool.acquire(timeout=1)):
        with pytest.raises(PoolShutDown, match="shut down: it lends nothing more"):
            acquire()

    async def main() -> None:
        with pytest.raises(PoolShutDown):
            await pool.acquire_async()
        with pytest.raises(PoolShutDown):
            async with pool.acquire_async():
                pytest.fail("entered a shut-down pool")

    asyncio.run(main())
    assert isinstance(PoolShutDown("x"), PoolError)
    pool.shutdown()  # again: nothing happens
    assert pool.available() == 2 and pool.stats().in_use == 0


def test_releases_after_shutdown_lose_nothing(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=3)
    guards = drain(pool)
    pool.shutdown()
    with running(spawn(guards[0].release)):
        pass
    with guards[1]:
        pass
    with collecting():
        del guards[2]
    guards.clear()
    assert pool.available() == 3
    assert len(reset.calls) == 3, "every release still resets"
    stats = pool.stats()
    assert (stats.in_use, stats.acquisitions, stats.high_water) == (0, 3, 3)


def test_a_blocked_acquire_wakes_with_the_error(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    held = pool.acquire()

    def shut_later() -> None:
        time.sleep(0.1)
        pool.shutdown()

    started = time.monotonic()
    with running(spawn(shut_later)), pytest.raises(PoolShutDown):
        pool.acquire()  # no timeout: only the shutdown ends it
    assert time.monotonic() - started < 5, "the shutdown did not wake the waiter promptly"
    held.release()
    assert pool.available() == 1


def test_a_waiting_task_wakes_with_the_error(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)

    async def main() -> None:
        held = await pool.acquire_async()
        threading.Timer(0.1, pool.shutdown).start()
        started = time.monotonic()
        with pytest.raises(PoolShutDown):
            await asyncio.wait_for(pool.acquire_async(), WAIT)
        assert time.monotonic() - started < 5
        held.release()

    asyncio.run(main())
    assert pool.available() == 1


def test_a_with_block_shuts_the_pool_down(backend: str) -> None:
    with Pool(2, bytearray, backend=backend) as pool:
        guard = pool.acquire()
    assert pool.is_shutdown
    with pytest.raises(PoolShutDown):
        pool.acquire()
    guard.release()
    assert pool.available() == 2


def test_workers_that_die_shut_the_pool_and_free_the_producer(backend: str) -> None:
    """Every worker dies; the last one shuts the pool; the producer, blocked, gets out."""
    pool, _, _ = make_pool(backend, capacity=4)
    inbox: list[Pooled[Item]] = []
    lock = threading.Lock()
    alive = [3]

    def worker() -> None:
        try:
            time.sleep(0.05)
            raise ValueError("worker crashed")
        finally:
            with lock:
                alive[0] -= 1
                if alive[0] == 0:
                    pool.shutdown()

    produced = 0
    with ThreadPoolExecutor(3) as executor:
        futures = [executor.submit(worker) for _ in range(3)]
        with pytest.raises(PoolShutDown):
            while True:
                guard = pool.acquire(timeout=WAIT)  # blocks once all 4 are out: nobody releases
                inbox.append(guard)
                produced += 1
        assert all(isinstance(future.exception(), ValueError) for future in futures)
    assert produced == 4
    for guard in inbox:  # what the dead workers never took is given back by the producer
        guard.release()
    assert pool.available() == 4 and pool.is_shutdown
