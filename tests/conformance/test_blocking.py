"""Blocking ``acquire``: timeouts, and wake-ups that are never lost."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from nexus_pool import PoolError, PoolExhausted, Pooled

from .support import WAIT, Item, assert_all_free, drain, make_pool, running, spawn


def test_timeout_zero_fails_at_once(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    guards = drain(pool)
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match="all 2 slots are in use"):
        pool.acquire(0)
    assert time.monotonic() - started < 0.5
    assert isinstance(PoolExhausted("x"), PoolError)
    for guard in guards:
        guard.release()


def test_timeout_expires_after_roughly_the_timeout(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    guard = pool.acquire()
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match=r"none came back within 0\.2 s"):
        pool.acquire(timeout=0.2)
    waited = time.monotonic() - started
    assert 0.19 <= waited < 5, waited
    guard.release()
    assert_all_free(pool)


def test_blocked_acquire_wakes_when_another_thread_releases(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    guard = pool.acquire()
    released_at: list[float] = []

    def release_later() -> None:
        time.sleep(0.1)
        released_at.append(time.monotonic())
        guard.release()

    with running(spawn(release_later)):
        woken = pool.acquire()  # no timeout: waits as long as it takes
        woke_at = time.monotonic()
    assert woken.value.serial == 0
    assert woke_at >= released_at[0]
    assert woke_at - released_at[0] < 2, "the release did not wake the acquirer promptly"
    assert len(reset.calls) == 1
    woken.release()


def test_blocked_acquire_with_timeout_wakes_on_release(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    guard = pool.acquire()
    timer = threading.Timer(0.05, guard.release)
    timer.daemon = True
    with running(timer):
        started = time.monotonic()
        woken = pool.acquire(timeout=30)
        assert time.monotonic() - started < 5
    woken.release()


def test_wake_ups_are_not_lost_in_a_ping_pong(backend: str) -> None:
    """Each round the acquirer blocks on an empty pool while a returner races to release.

    A lost wake-up would hang a round until its timeout and fail the test.
    """
    pool, _, _ = make_pool(backend, capacity=1)
    handed: queue.SimpleQueue[Pooled[Item]] = queue.SimpleQueue()
    rounds = 2000

    def returner() -> None:
        for _ in range(rounds):
            handed.get(timeout=WAIT).release()

    with running(spawn(returner)):
        for _ in range(rounds):
            handed.put(pool.acquire(timeout=10))
    assert_all_free(pool)


def test_many_waits_with_short_timeouts_leave_the_pool_consistent(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    guards = drain(pool)
    for _ in range(20):
        with pytest.raises(PoolExhausted):
            pool.acquire(timeout=0.001)
    for guard in guards:
        guard.release()
    assert_all_free(pool)
