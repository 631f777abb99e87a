"""``pool.acquire_async()``: an event loop as the acquirer, woken by releases from anywhere.

Each test runs its own loop with ``asyncio.run`` (no plugin needed). Cancellation is
tested where it can land: before the waiting task first runs, while it waits, after a
release woke it but before it resumed, and inside an ``async with`` body.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from nexus_pool import Pool, Pooled, PoolExhausted

from .support import WAIT, Item, assert_all_free, drain, make_pool

R = TypeVar("R")


def run(coroutine: Coroutine[Any, Any, R]) -> R:
    """Run on a new loop; a hang fails after WAIT seconds instead of blocking the suite."""

    async def bounded() -> R:
        return await asyncio.wait_for(coroutine, WAIT)

    return asyncio.run(bounded())


def test_await_gives_a_guard(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)

    async def main() -> Pooled[Item]:
        return await pool.acquire_async()

    guard = run(main())
    assert isinstance(guard, Pooled)
    assert guard.value.serial == 0
    guard.release()
    assert_all_free(pool)


def test_async_with_gives_the_value_and_releases_it_even_on_error(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)

    async def main() -> None:
        async with pool.acquire_async() as item:
            assert isinstance(item, Item)
            assert pool.available() == 0
        assert pool.available() == 1
        with pytest.raises(KeyError):
            async with pool.acquire_async(timeout=1) as item:
                raise KeyError(item)
        assert pool.available() == 1

    run(main())
    assert len(reset.calls) == 2


def test_an_acquisition_object_serves_one_async_with_at_a_time(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)

    async def main() -> None:
        acquisition = pool.acquire_async()
        async with acquisition:
            with pytest.raises(RuntimeError, match="already in use"):
                async with acquisition:
                    pass
        async with acquisition:  # reusable once released
            pass

    run(main())
    assert_all_free(pool)


def test_waiting_does_not_block_the_loop_and_a_task_release_wakes_it(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def main() -> None:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        held = await pool.acquire_async()

        async def release_later() -> None:
            await asyncio.sleep(0.1)
            held.release()

        releasing = asyncio.create_task(release_later())
        started = time.monotonic()
        again = await pool.acquire_async()
        assert time.monotonic() - started < 5
        assert ticks >= 5, "the loop was blocked while acquire_async waited"
        again.release()
        stop.set()
        await asyncio.gather(ticking, releasing)

    run(main())
    assert_all_free(pool)


@pytest.mark.parametrize("returner", ["run_in_executor", "to_thread", "plain thread"])
def test_releases_from_worker_threads_wake_the_loop(backend: str, returner: str) -> None:
    pool, _, reset = make_pool(backend, capacity=2)
    handled: list[int] = []

    def work(guard: Pooled[Item]) -> None:
        time.sleep(random.random() * 0.002)
        handled.append(guard.value.serial)
        guard.release()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pending: list[Any] = []
        for _ in range(200):
            guard = await pool.acquire_async(timeout=WAIT)
            if returner == "run_in_executor":
                pending.append(loop.run_in_executor(None, work, guard))
            elif returner == "to_thread":
                pending.append(asyncio.create_task(asyncio.to_thread(work, guard)))
            else:
                thread = threading.Thread(target=work, args=(guard,))
                thread.start()
                pending.append(asyncio.create_task(asyncio.to_thread(thread.join)))
            del guard
        await asyncio.gather(*pending)

    run(main())
    assert len(handled) == 200
    assert len(reset.calls) == 200
    assert_all_free(pool)


def test_timeouts(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)

    async def main() -> None:
        guards = drain(pool)
        started = time.monotonic()
        with pytest.raises(PoolExhausted, match=r"^all 2 slots are in use; oldest held "):
            await pool.acquire_async(0)
        with pytest.raises(PoolExhausted, match=r"none came back within 0\.1 s"):
            await pool.acquire_async(timeout=0.1)
        with pytest.raises(PoolExhausted):
            async with pool.acquire_async(timeout=0.01):
                pytest.fail("entered without a slot")
        assert 0.1 <= time.monotonic() - started < 5
        for guard in guards:
            guard.release()

    run(main())
    assert_all_free(pool)


def test_bad_timeouts_are_refused_at_the_call(backend: str) -> None:
    pool, _, _ = make_pool(backend)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.acquire_async(-1)
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None, not str"):
        pool.acquire_async("1")  # type: ignore[arg-type]
    assert_all_free(pool)


def test_a_cancelled_wait_loses_no_slot(backend: str) -> None:
    """Cancel before the task first runs, while it waits, and after a release woke it."""
    pool, _, _ = make_pool(backend, capacity=1)

    async def main() -> None:
        held = await pool.acquire_async()

        never_ran = asyncio.create_task(_acquire(pool))
        never_ran.cancel()
        with pytest.raises(asyncio.CancelledError):
            await never_ran

        waiting = asyncio.create_task(_acquire(pool))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool.available() == 0

        woken = asyncio.create_task(_acquire(pool))
        await asyncio.sleep(0.02)
        held.release()  # wakes it (call_soon_threadsafe); it has not resumed yet
        woken.cancel()
        with pytest.raises(asyncio.CancelledError):
            await woken
        assert pool.available() == 1, "the woken-then-cancelled task kept a slot"

        async with pool.acquire_async() as _:
            body = asyncio.current_task()
            assert body is not None
            asyncio.get_running_loop().call_soon(body.cancel)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.sleep(1)
        assert pool.available() == 1

    run(main())
    assert pool.stats().in_use == 0
    assert_all_free(pool)


def test_cancellations_racing_releases_from_threads(backend: str) -> None:
    """Waiting tasks cancelled at random moments while workers release: nothing lost, nothing lent twice."""
    pool, _, _ = make_pool(backend, capacity=3)
    out: set[int] = set()
    lent_twice: list[int] = []
    rng = random.Random(7)

    def work(guard: Pooled[Item], delay: float) -> None:
        time.sleep(delay)
        out.discard(guard.value.serial)
        guard.release()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pending = []
        cancelled = 0
        for _ in range(300):
            task = asyncio.create_task(_acquire(pool))
            loop.call_later(rng.random() * 0.002, task.cancel)
            try:
                guard = await task
            except asyncio.CancelledError:
                cancelled += 1
                continue
            if guard.value.serial in out:
                lent_twice.append(guard.value.serial)
            out.add(guard.value.serial)
            pending.append(loop.run_in_executor(None, work, guard, rng.random() * 0.003))
            del guard
        await asyncio.gather(*pending)
        assert 0 < cancelled < 300

    run(main())
    assert lent_twice == []
    assert_all_free(pool)


def test_async_waits_are_counted(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)

    async def main() -> None:
        held = await pool.acquire_async()
        asyncio.get_running_loop().call_later(0.1, held.release)
        (await pool.acquire_async()).release()

    run(main())
    stats = pool.stats()
    assert (stats.acquisitions, stats.exhaustions, stats.high_water) == (2, 1, 1)
    assert 0.05 <= stats.wait_seconds < 10


def test_the_acquisition_object_is_typed_and_reprs(backend: str) -> None:
    pool: Pool[bytearray] = Pool(1, bytearray, backend=backend)
    acquisition = pool.acquire_async()
    assert "not acquired" in repr(acquisition)

    async def main() -> None:
        async with acquisition:
            assert "holding <Pooled" in repr(acquisition)

    run(main())
    assert pool.available() == 1


async def _acquire(pool: Pool[Item]) -> Pooled[Item]:
    return await pool.acquire_async()
