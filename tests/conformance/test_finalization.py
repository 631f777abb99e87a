"""Guards that are collected instead of released: each slot returns exactly once.

Garbage collection alone, with no misuse of the API, used to lend one slot twice: a value
that refers to its own guard, and an object in a cycle whose finaliser releases a guard.
These tests build each case on every backend, and check that a dropped pool frees its
values by reference counting alone.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nexus_pool import Pool, Pooled, ReleasedError

from .support import Item, Reset, assert_all_free, barrier, collecting, make_pool, running, spawn


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_a_value_that_refers_to_its_guard_returns_its_slot_once(backend: str) -> None:
    reset = Reset()
    pool = Pool(1, lambda: Item(0), reset, backend=backend)  # nothing else keeps the value
    guard = pool.acquire()
    value = guard.value
    value.payload = guard  # value -> guard -> lease -> value: a cycle only the GC can free
    del guard, value
    with collecting():
        gc.collect()
    assert pool.available() == 1
    assert len(reset.calls) == 1, "the value was not reset exactly once"
    again = pool.acquire(0)
    assert again.value.payload is None  # reset cleared the reference to the old guard
    assert pool.try_acquire() is None, "one slot, lent twice"
    again.release()
    assert_all_free(pool)


def test_a_guard_brought_back_by_its_value_cannot_touch_the_slot(backend: str) -> None:
    """The value refers to its guard and the reset keeps that reference: the guard lives on."""
    pool = Pool(1, lambda: Item(0), lambda item: None, backend=backend)
    guard = pool.acquire()
    guard.value.payload = guard
    del guard
    with collecting():
        gc.collect()
    assert pool.available() == 1
    current = pool.acquire(0)
    zombie = current.value.payload
    assert isinstance(zombie, Pooled)
    with pytest.raises(ReleasedError, match="garbage collection"):
        zombie.value  # noqa: B018
    zombie.release()  # the collector returned its slot: a quiet no-op, the slot untouched
    assert pool.try_acquire() is None
    assert current.value.payload is zombie, "the current lease's value was not touched"
    with pytest.raises(ReleasedError, match="garbage collection"):
        zombie.value  # noqa: B018
    with pytest.raises(ReleasedError, match="already released"):
        zombie.release()  # a second explicit release is an error again
    with pytest.raises(ReleasedError, match="garbage collection"), zombie:  # entering reads the value
        pass
    current.release()
    assert pool.available() == 1


class ReleasesInFinalizer:
    """An object in a reference cycle whose finaliser releases the guard it holds."""

    def __init__(self, guard: Pooled[Item]) -> None:
        self.guard = guard
        self.itself = self
        self.outcome = ""

    def __del__(self) -> None:
        try:
            self.guard.release()
        except ReleasedError:
            self.outcome = "refused"
        else:
            self.outcome = "released"
        outcomes.append(self.outcome)


outcomes: list[str] = []


def test_a_finalizer_releasing_a_collected_guard_returns_the_slot_once(backend: str) -> None:
    """Whichever the collector finalises first, the holder's release() succeeds: when the
    guard's own finalizer returned the slot first, the release is a quiet no-op (nothing
    reaches sys.unraisablehook; the suite turns unraisable exceptions into failures)."""
    pool, _, reset = make_pool(backend, capacity=2)
    for _ in range(20):  # the collector finalises in no fixed order: try it many times
        outcomes.clear()
        holders = [ReleasesInFinalizer(pool.acquire()), ReleasesInFinalizer(pool.acquire())]
        del holders
        with collecting():
            gc.collect()
        assert outcomes == ["released", "released"]
        assert pool.available() == 2
        assert_all_free(pool)
    assert len(reset.calls) == 40 + 2 * 20, "each lease's value reset exactly once (plus assert_all_free's)"


def test_a_dropped_pool_frees_its_values_without_the_cyclic_gc(backend: str) -> None:
    with no_cyclic_gc():
        pool, factory, _ = make_pool(backend, capacity=4)
        values = [weakref.ref(item) for item in factory.made]
        held = pool.acquire()
        dropped = pool.acquire()
        with collecting():
            del dropped  # returned by its lease's death
        held.release()
        del pool, factory, held
        assert [ref() for ref in values] == [None] * 4, "values wait for the cyclic GC"


def test_a_guard_outliving_its_pool_frees_everything_when_dropped(backend: str) -> None:
    with no_cyclic_gc():
        pool, factory, reset = make_pool(backend, capacity=2)
        values = [weakref.ref(item) for item in factory.made]
        guard = pool.acquire()
        del pool, factory
        assert all(ref() is not None for ref in values)
        with collecting():
            del guard
        assert len(reset.calls) == 1, "the last guard's reset did not run"
        assert [ref() for ref in values] == [None, None]


def test_every_reset_runs_while_the_pool_is_dropped(backend: str) -> None:
    """Four threads release or drop guards while the pool itself goes away."""
    for trial in range(50):
        pool, _, reset = make_pool(backend, capacity=8)
        guards = [pool.acquire() for _ in range(8)]
        start = barrier(5)

        def give_back(mine: list[Pooled[Item]], drop: bool) -> None:
            start.wait()
            while mine:
                guard = mine.pop()
                if not drop:
                    guard.release()
                del guard

        threads = [spawn(give_back, guards[i::4], i % 2 == 0) for i in range(4)]
        del guards
        with collecting(), running(*threads):
            start.wait()
            del pool
        assert len(reset.calls) == 8, f"trial {trial}: {8 - len(reset.calls)} reset(s) skipped"


def test_guards_alive_at_interpreter_exit_are_harmless(backend: str) -> None:
    """Module globals holding a pool and guards, released or not, when Python exits."""
    code = textwrap.dedent(
        f"""
        from nexus_pool import Pool
        values = [lambda: bytearray(64), lambda: bytearray(b"abc"), lambda: "x" * 100,
                  lambda: memoryview(bytearray(100)), lambda: {{1: 2}}, list]
        for factory in values:
            pool = Pool(2, factory, backend={backend!r})
            guard = pool.acquire()
            other = pool.acquire()
            other.value  # both held while the loop moves on
        cycle = [Pool(1, list, backend={backend!r}).acquire()]
        cycle.append(cycle)
        print("done")
        """
    )
    result = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Exception ignored" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_reset_that_drops_another_guard_of_the_same_pool(backend: str) -> None:
    """Reviving one slot can kill another lease on the same thread: both come back."""
    held: list[Pooled[Item]] = []

    def reset(item: Item) -> None:
        item.payload = None
        if held:
            held.pop()  # drops a guard of this very pool, inside a reset

    pool: Pool[Item] = Pool(3, lambda: Item(0), reset, backend=backend)
    first = pool.acquire()
    held.append(pool.acquire())
    with collecting():
        del first  # its revival resets, which drops the second guard
    assert pool.available() == 3
    assert_all_free(pool)


@pytest.mark.slow
def test_a_lease_collected_while_a_thread_releases_it_concurrently(backend: str) -> None:
    """A dropped guard on one thread, a release of another on a second, a collection on a third."""
    pool, factory, reset = make_pool(backend, capacity=16)
    for _ in range(100):
        guards = [pool.acquire() for _ in range(16)]
        start = barrier(3)

        def releaser(mine: list[Pooled[Item]]) -> None:
            start.wait()
            for guard in mine:
                guard.release()

        def dropper(mine: list[Pooled[Item]]) -> None:
            start.wait()
            mine.clear()

        def collector() -> None:
            start.wait()
            gc.collect()

        threads = [spawn(releaser, guards[:8]), spawn(dropper, guards[8:]), spawn(collector)]
        del guards
        with collecting(), running(*threads):
            pass
        assert pool.available() == 16
    # A value whose reset was skipped would have been replaced by factory(): say so.
    assert (len(reset.calls), factory.calls) == (1600, 16)
    assert_all_free(pool)


def test_a_collected_guard_returns_its_own_value_reset(backend: str) -> None:
    """Revival waits for the end of the collection, when the lease has handed its value over."""
    pool, factory, reset = make_pool(backend, capacity=1)
    held = pool.acquire(0)
    value = held.value
    cycle: list[object] = [held]
    cycle.append(cycle)
    with collecting():
        del held, cycle
        gc.collect()
    assert pool.available() == 1
    assert len(factory.made) == 1, "the value was replaced instead of reset"
    assert reset.count(0) == 1
    with pool.acquire(0) as again:
        assert again is value


@pytest.mark.parametrize("held", [True, False], ids=["lent", "free"])
def test_a_value_that_refers_to_its_pool_is_collected(backend: str, held: bool) -> None:
    """pool -> value -> pool (free), or guard -> value -> pool -> ... (lent): a cycle the GC frees."""
    pool = Pool(1, lambda: Item(0), backend=backend)
    guard = pool.acquire()
    guard.value.payload = pool
    value_ref = weakref.ref(guard.value)
    pool_ref = weakref.ref(pool)
    if not held:
        guard.release()
    with collecting():
        del pool, guard
        gc.collect()
        # On the pure facade a lent slot is revived once the first collection ends, with
        # the value: the cycle it then forms (pool, value) goes in the next one.
        gc.collect()
    assert pool_ref() is None, "the pool was not collected"
    assert value_ref() is None, "the value was not collected"
