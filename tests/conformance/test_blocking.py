"""Blocking ``acquire``: timeouts, and wake-ups that are never lost."""

from __future__ import annotations

import queue
import signal
import threading
import time

import pytest

from nexus_pool import Pool, Pooled, PoolError, PoolExhausted

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


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
@pytest.mark.thread_unsafe  # signal handlers run on the main thread only
def test_release_from_a_signal_handler_wakes_the_blocked_acquirer_itself(backend: str) -> None:
    """A release can run on the acquiring thread in the middle of its own wait.

    Finalizers of collected guards and signal handlers both run between bytecodes of
    whatever the thread was doing, here inside ``acquire``. The release must neither
    deadlock on the waiter's own lock nor leave the waiter asleep.
    """
    pool, _, reset = make_pool(backend, capacity=1)
    held = [pool.acquire()]
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: held.pop().release())
    try:
        interrupt = threading.Timer(0.1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1))
        interrupt.daemon = True
        with running(interrupt):
            started = time.monotonic()
            guard = pool.acquire(timeout=WAIT)
            assert time.monotonic() - started < WAIT / 2
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(reset.calls) == 1
    guard.release()


def test_reset_may_release_other_guards(backend: str) -> None:
    """A release nested inside another release (reset dropping a guard) is fine."""
    pool, factory, _ = make_pool(backend, capacity=2)
    inner = pool.acquire()
    outer = pool.acquire()
    nested: list[Pooled[Item]] = [inner]
    del inner

    def reset_releasing_another(item: Item) -> None:
        if nested:
            nested.pop().release()

    nesting_pool = Pool(1, factory, reset_releasing_another, backend=backend)
    with nesting_pool.acquire():
        pass
    outer.release()
    assert_all_free(pool)


class Interrupting:
    """A waiter's wake-up token (as an event loop's acquirer puts in the waiting set) that
    raises what it is given when a release calls it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        raise self.error


def test_a_wake_up_interrupted_by_a_base_exception_reaches_the_releaser(backend: str) -> None:
    """Both facades agree: a KeyboardInterrupt (any BaseException that is not an Exception)
    raised by a waiter's wake-up goes up from release(), with the slot back already; an
    ordinary error (the waiter's loop closed) is nobody's business but the waiter's."""
    pool, _, reset = make_pool(backend, capacity=2)
    waiting = pool._waiter().waiting
    guard = pool.acquire()
    quiet = Interrupting(RuntimeError("the loop is closed"))
    waiting.add(quiet)
    guard.release()
    assert quiet.calls == 1 and not waiting
    guard = pool.acquire()
    loud = Interrupting(KeyboardInterrupt())
    waiting.add(loud)
    with pytest.raises(KeyboardInterrupt):
        guard.release()
    assert loud.calls == 1 and not waiting
    assert pool.available() == 2, "the slot went back before the wake-up"
    assert_all_free(pool)
    assert len(reset.calls) >= 2


def test_a_wake_up_interrupted_during_a_failed_reset_chains_the_reset_error(backend: str) -> None:
    def failing_reset(item: Item) -> None:
        raise ValueError("reset failed")

    pool = Pool(1, lambda: Item(0), failing_reset, backend=backend)
    guard = pool.acquire()
    pool._waiter().waiting.add(Interrupting(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt) as raised:
        guard.release()
    assert isinstance(raised.value.__context__, ValueError)
    assert pool.available() == 1


def test_shutdown_interrupted_by_a_wake_up_raises_and_can_be_called_again(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    waiting = pool._waiter().waiting
    waiting.add(Interrupting(KeyboardInterrupt()))
    waiting.add(Interrupting(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        pool.shutdown()
    assert pool.is_shutdown
    with pytest.raises(KeyboardInterrupt):
        pool.shutdown()
    pool.shutdown()
    assert not waiting
