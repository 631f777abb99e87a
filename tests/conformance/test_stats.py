"""``pool.stats()``: a frozen snapshot whose counters follow what the pool did."""

from __future__ import annotations

import dataclasses
import gc
import threading
import time

import pytest

from nexus_pool import Pool, PoolExhausted, PoolStats

from .support import collecting, drain, make_pool, running, spawn


def test_a_new_pool_has_counted_nothing(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=3)
    assert pool.stats() == PoolStats(
        capacity=3, in_use=0, high_water=0, acquisitions=0, exhaustions=0, wait_seconds=0.0
    )


def test_the_snapshot_is_frozen_and_typed(backend: str) -> None:
    stats = make_pool(backend)[0].stats()
    assert type(stats) is PoolStats
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.in_use = 1  # type: ignore[misc]
    assert [type(getattr(stats, field.name)) for field in dataclasses.fields(stats)] == [int] * 5 + [float, type(None)]


def test_the_oldest_holders_age(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=3)
    assert pool.stats().oldest_held is None, "nothing lent: no age"
    first = pool.acquire()
    time.sleep(0.06)
    second = pool.acquire()
    oldest = pool.stats().oldest_held
    assert oldest is not None and 0.05 <= oldest < 5
    first.release()
    younger = pool.stats().oldest_held
    assert younger is not None and younger < oldest, "released slots leave the figure"
    second.release()
    assert pool.stats().oldest_held is None


def test_acquisitions_in_use_and_high_water(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=4)
    first, second, third = pool.acquire(), pool.try_acquire(), pool.acquire(0)
    assert second is not None
    stats = pool.stats()
    assert (stats.in_use, stats.high_water, stats.acquisitions, stats.exhaustions) == (3, 3, 3, 0)
    first.release()
    second.release()
    with pool.acquire() as _:
        stats = pool.stats()
        assert (stats.in_use, stats.high_water, stats.acquisitions) == (2, 3, 4)
    third.release()
    stats = pool.stats()
    assert (stats.in_use, stats.high_water, stats.acquisitions) == (0, 3, 4), "the high-water mark never falls"


def test_exhaustions_count_every_way_of_finding_no_slot(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    held = pool.acquire()
    assert pool.try_acquire() is None
    assert pool.try_acquire() is None
    with pytest.raises(PoolExhausted):
        pool.acquire(0)
    with pytest.raises(PoolExhausted):
        pool.acquire(timeout=0.05)
    stats = pool.stats()
    assert stats.exhaustions == 4
    assert stats.acquisitions == 1, "failed acquisitions are not acquisitions"
    assert 0.04 <= stats.wait_seconds < 5, "only the timed acquire waited"
    held.release()


def test_a_blocked_acquire_counts_one_exhaustion_and_its_wait(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    held = pool.acquire()

    def release_later() -> None:
        time.sleep(0.15)
        held.release()

    with running(spawn(release_later)):
        woken = pool.acquire()
    stats = pool.stats()
    assert (stats.exhaustions, stats.acquisitions, stats.in_use, stats.high_water) == (1, 2, 1, 1)
    assert 0.1 <= stats.wait_seconds < 10
    woken.release()


def test_in_use_follows_releases_from_other_threads_and_collected_guards(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=4)
    guards = drain(pool)
    assert pool.stats().in_use == 4
    with running(*(spawn(guard.release) for guard in guards[:2])):
        pass
    assert pool.stats().in_use == 2
    with collecting():
        del guards
        gc.collect()
    stats = pool.stats()
    assert (stats.in_use, stats.high_water, stats.acquisitions) == (0, 4, 4)


def test_stats_read_from_another_thread_while_the_acquirer_works(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    stop = threading.Event()
    seen: list[PoolStats] = []

    def watch() -> None:
        while not stop.is_set():
            seen.append(pool.stats())

    with running(spawn(watch)):
        try:
            for _ in range(2000):
                pool.acquire().release()
        finally:
            stop.set()
    assert all(0 <= stats.in_use <= 2 and stats.high_water <= 2 for stats in seen)
    assert [stats.acquisitions for stats in seen] == sorted(stats.acquisitions for stats in seen)
    assert pool.stats().acquisitions == 2000


def test_a_guard_outliving_its_pool_is_not_an_acquisition_of_another(backend: str) -> None:
    first: Pool[bytearray] = Pool(1, bytearray, backend=backend)
    second: Pool[bytearray] = Pool(1, bytearray, backend=backend)
    first.acquire().release()
    assert (first.stats().acquisitions, second.stats().acquisitions) == (1, 0)
