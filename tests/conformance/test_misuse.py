"""Bad arguments and misuse: clear errors, and never a corrupted or lost slot."""

from __future__ import annotations

import gc
import math
import pickle
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from nexus_pool import BackendUnavailable, OwnershipError, Pool, PoolError, PoolExhausted, ReleasedError

from .support import FactoryFailed, Item, ResetFailed, assert_all_free, collecting, drain, make_pool, running, spawn


@pytest.mark.parametrize(
    ("capacity", "error", "match"),
    [
        (0, ValueError, "capacity must be >= 1, got 0"),
        (-3, ValueError, "capacity must be >= 1, got -3"),
        (2.0, TypeError, "capacity must be an int, not float"),
        ("4", TypeError, "capacity must be an int, not str"),
        (None, TypeError, "capacity must be an int, not NoneType"),
        (True, TypeError, "capacity must be an int, not bool"),
    ],
)
def test_bad_capacity_is_rejected_by_name(backend: str, capacity: Any, error: type[Exception], match: str) -> None:
    calls = []
    with pytest.raises(error, match=match):
        Pool(capacity, lambda: calls.append(1), backend=backend)
    assert calls == [], "factory ran although the arguments were bad"


class Index:
    """An integer that is not an int, as numpy's are: it has ``__index__``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_capacity_takes_any_index_integer_as_range_does(backend: str) -> None:
    pool: Pool[list[int]] = Pool(Index(3), list, backend=backend)
    assert pool.capacity == 3
    assert type(pool.capacity) is int
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        Pool(Index(0), list, backend=backend)


def test_uncallable_factory_and_reset_are_rejected_by_name(backend: str) -> None:
    bad: Any = 42
    with pytest.raises(TypeError, match="factory must be callable, not int"):
        Pool(2, bad, backend=backend)
    with pytest.raises(TypeError, match="reset must be callable or None, not str"):
        Pool(2, list, "clear", backend=backend)  # type: ignore[arg-type]


def test_factory_error_in_constructor_propagates(backend: str) -> None:
    def factory() -> Item:
        raise FactoryFailed("no values today")

    with pytest.raises(FactoryFailed):
        Pool(3, factory, backend=backend)


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [
        (-1, ValueError, "timeout must be >= 0 seconds or None, got -1"),
        (-0.5, ValueError, "timeout must be >= 0 seconds or None, got -0.5"),
        (math.nan, ValueError, "timeout must be >= 0 seconds or None, got nan"),
        ("1", TypeError, "timeout must be a number of seconds or None, not str"),
        (True, TypeError, "timeout must be a number of seconds or None, not bool"),
    ],
)
def test_bad_timeout_is_rejected_even_when_a_slot_is_free(
    backend: str, timeout: Any, error: type[Exception], match: str
) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    with pytest.raises(error, match=match):
        pool.acquire(timeout)
    assert_all_free(pool)


def test_unusual_but_valid_timeouts_are_accepted(backend: str) -> None:
    class Seconds(float):
        pass

    pool, _, _ = make_pool(backend, capacity=1)
    for timeout in (Seconds(0.5), math.inf, 10**30, 10**400, 1e300, Index(2), 0.0):
        pool.acquire(timeout).release()  # type: ignore[arg-type]
    assert_all_free(pool)


@pytest.mark.parametrize("timeout", [10**400, 1e300, math.inf, 366 * 24 * 3600])
def test_a_huge_timeout_means_no_limit(backend: str, timeout: Any) -> None:
    """Longer than a year (or than a float can hold) waits like None, without overflowing."""
    pool, _, _ = make_pool(backend, capacity=1)
    held = pool.acquire()
    timer = threading.Timer(0.05, held.release)
    timer.daemon = True
    with running(timer):
        guard = pool.acquire(timeout=timeout)
    guard.release()
    assert_all_free(pool)


def test_double_release_raises_and_returns_the_slot_once(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=2)
    guard = pool.acquire()
    guard.release()
    with pytest.raises(ReleasedError, match="already released"):
        guard.release()
    assert len(reset.calls) == 1
    assert pool.available() == 2
    assert_all_free(pool)


def test_use_after_release_raises(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    guard = pool.acquire()
    guard.release()
    with pytest.raises(ReleasedError, match="already released"):
        guard.value  # noqa: B018
    assert isinstance(ReleasedError("x"), PoolError)


def test_errors_fit_the_standard_library_habits() -> None:
    """Code that knows nothing of nexus_pool catches them as what they are."""
    assert issubclass(PoolExhausted, TimeoutError)
    assert issubclass(ReleasedError, RuntimeError)
    assert issubclass(OwnershipError, RuntimeError)
    for error in (PoolExhausted, ReleasedError, OwnershipError, BackendUnavailable):
        assert issubclass(error, PoolError)
    exhausted = PoolExhausted("all 4 slots are in use")
    assert str(exhausted) == "all 4 slots are in use"
    assert pickle.loads(pickle.dumps(exhausted)).args == exhausted.args


def test_a_timeout_is_caught_as_timeout_error(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    held = pool.acquire()
    with pytest.raises(TimeoutError, match="all 1 slots are in use"):
        pool.acquire(timeout=0.01)
    held.release()


def test_stale_guard_cannot_touch_the_next_lease_of_its_slot(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    stale = pool.acquire()
    stale.release()
    current = pool.acquire()
    current.value.payload = "mine"
    for _ in range(3):
        with pytest.raises(ReleasedError):
            stale.release()
        with pytest.raises(ReleasedError):
            stale.value  # noqa: B018
    assert pool.available() == 0
    assert current.value.payload == "mine"
    assert len(reset.calls) == 1
    current.release()
    assert_all_free(pool)


def test_failing_reset_returns_the_slot_with_a_fresh_value(backend: str) -> None:
    pool, factory, reset = make_pool(backend, capacity=2)
    guard = pool.acquire()
    broken = guard.value
    reset.fail_serials.add(broken.serial)
    with pytest.raises(ResetFailed):
        guard.release()
    assert pool.available() == 2
    assert factory.calls == 3
    guards = drain(pool)
    values = {g.value.serial for g in guards}
    assert broken.serial not in values, "the half-reset value came back"
    assert values == {1, 2}
    with pytest.raises(ReleasedError):
        guard.release()
    for g in guards:
        g.release()
    assert_all_free(pool)


def test_failing_reset_in_a_with_block_reaches_the_caller(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    reset.fail_serials.add(0)
    with pytest.raises(ResetFailed), pool.acquire():
        pass
    assert_all_free(pool)


def test_failing_reset_of_a_collected_guard_reaches_unraisablehook(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, factory, reset = make_pool(backend, capacity=1)
    reset.fail_serials.add(0)
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info.exc_value))
    guard = pool.acquire()
    with collecting():
        del guard
        gc.collect()
    assert len(seen) == 1
    assert isinstance(seen[0], ResetFailed)
    assert factory.calls == 2
    assert_all_free(pool)


def test_failing_reset_and_failing_factory_do_not_lose_the_slot(backend: str) -> None:
    pool, factory, reset = make_pool(backend, capacity=1)
    reset.fail_serials.add(0)
    factory.failures_left = 2  # the replacement, then the first retry at acquisition
    with pytest.raises(ResetFailed) as caught:
        pool.acquire().release()
    if sys.version_info >= (3, 11):
        assert "factory() also raised" in "".join(caught.value.__notes__)
    assert pool.available() == 1
    with pytest.raises(FactoryFailed):
        pool.try_acquire()
    assert pool.available() == 1, "a failed remake lost the slot"
    guard = pool.acquire()
    assert guard.value.serial == 1
    assert guard.value.payload is None
    guard.release()
    assert_all_free(pool)


def test_base_exceptions_from_reset_still_return_the_slot(backend: str) -> None:
    def reset(item: Item) -> None:
        raise KeyboardInterrupt

    pool = Pool(1, lambda: Item(0), reset, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        pool.acquire().release()
    assert pool.available() == 1


def test_backend_must_be_a_string() -> None:
    bad: Any = 3
    with pytest.raises(TypeError, match="backend must be a str or None, not int"):
        Pool(1, list, backend=bad)


@pytest.mark.parametrize("release_with", ["release", "exit"])
def test_releasing_from_another_thread_after_the_pool_is_gone(backend: str, release_with: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    guard = pool.acquire()
    del pool
    gc.collect()
    actions: dict[str, Callable[[], object]] = {
        "release": guard.release,
        "exit": lambda: guard.__exit__(None, None, None),
    }
    with running(spawn(actions[release_with])):
        pass
    assert len(reset.calls) == 1
    with pytest.raises(ReleasedError):
        guard.release()
