"""``nexus_pool.local``: the single-thread pools, plain and under the ``debug`` backend.

Instruments from the conformance suite observe them from outside: ``Factory`` and
``Reset`` record what the pool did to values.
"""

from __future__ import annotations

import gc
import pickle
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nexus_pool import OwnershipError, Pooled, PoolExhausted, ReleasedError, local

from ..conformance.support import (
    Factory,
    FactoryFailed,
    Item,
    Reset,
    ResetFailed,
    collecting,
    on_thread,
)
from ..implementations import IMPLEMENTATIONS, Implementation

LOCAL_PAIRS = [("native", "local"), ("pure", "local"), ("pure", "debug")]
"""(implementation, backend): ``local`` is plain (given as ``backend=None``), ``debug``
checks threads and is always pure, as the thread-safe pool's debug backend."""


@pytest.fixture(params=LOCAL_PAIRS, ids=[f"{facade}-{name}" for facade, name in LOCAL_PAIRS])
def local_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Implementation, str]]:
    facade, name = request.param
    implementation = IMPLEMENTATIONS[facade]
    implementation.require()
    with implementation.selected():
        yield implementation, name


@pytest.fixture
def backend(local_pair: tuple[Implementation, str]) -> str:
    return local_pair[1]


def test_the_implementation_is_the_one_asked_for(local_pair: tuple[Implementation, str], backend: str) -> None:
    pure = local_pair[0].facade == "pure"
    for pool in (growable(backend)[0], bounded(backend)[0]):
        assert type(pool).__module__ == ("nexus_pool._local" if pure else "nexus_pool._native")
        assert isinstance(pool, (local.Pool, local.BoundedPool))


def _backend_arg(backend: str) -> str | None:
    return None if backend == "local" else backend


def growable(backend: str) -> tuple[local.Pool[Item], Factory, Reset]:
    factory, reset = Factory(), Reset()
    return local.Pool(factory, reset, backend=_backend_arg(backend)), factory, reset


def bounded(backend: str, capacity: int = 3) -> tuple[local.BoundedPool[Item], Factory, Reset]:
    factory, reset = Factory(), Reset()
    return local.BoundedPool(capacity, factory, reset, backend=_backend_arg(backend)), factory, reset


def test_the_backend_says_whether_threads_are_checked(backend: str) -> None:
    assert growable(backend)[0].backend == backend
    assert bounded(backend)[0].backend == backend


def test_growable_pool_makes_values_on_demand_and_keeps_them(backend: str) -> None:
    pool, factory, reset = growable(backend)
    assert pool.available() == 0 and factory.calls == 0
    assert pool.try_acquire() is None, "try_acquire never calls the factory"
    assert factory.calls == 0
    first, second = pool.acquire(), pool.acquire()
    assert isinstance(first, Pooled)
    assert (first.value.serial, second.value.serial, factory.calls) == (0, 1, 2)
    first.value.payload = "used"
    first.release()
    second.release()
    assert pool.available() == 2
    assert reset.calls == [(0, threading.get_ident()), (1, threading.get_ident())]
    again = pool.try_acquire()
    assert again is not None and again.value.serial == 1, "the most recently released comes out first"
    again.release()
    assert factory.calls == 2 and pool.available() == 2


def test_bounded_pool_makes_its_values_up_front_and_never_more(backend: str) -> None:
    pool, factory, _ = bounded(backend, capacity=3)
    assert (factory.calls, pool.capacity, pool.available()) == (3, 3, 3)
    guards = [pool.acquire(), pool.try_acquire(), pool.acquire()]
    assert [g.value.serial for g in guards if g is not None] == [0, 1, 2]
    assert pool.try_acquire() is None
    with pytest.raises(PoolExhausted, match=r"all 3 values of this local\.BoundedPool are in use"):
        pool.acquire()
    for guard in guards:
        assert guard is not None
        guard.release()
    assert pool.available() == 3 and factory.calls == 3


@pytest.mark.parametrize("make", [growable, bounded])
def test_the_guard_protocol(backend: str, make: Callable[[str], tuple[Any, Factory, Reset]]) -> None:
    pool, _, reset = make(backend)
    guard = pool.acquire()
    with guard as item:
        assert item is guard.value
    assert len(reset.calls) == 1
    with pytest.raises(ReleasedError, match="already released"):
        _ = guard.value
    with pytest.raises(ReleasedError):
        guard.release()
    with pytest.raises(ReleasedError), guard:
        pass
    assert len(reset.calls) == 1, "a double release does not reset again"
    assert repr(guard) == "<Pooled (released)>"
    assert "value=Item(" in repr(pool.acquire())
    with pytest.raises(TypeError, match="cannot be copied or pickled"):
        pickle.dumps(pool.acquire())
    with pytest.raises(TypeError, match="cannot be copied or pickled"):
        pickle.dumps(pool)


@pytest.mark.parametrize("make", [growable, bounded])
def test_a_dropped_guard_gives_its_value_back_reset(
    backend: str, make: Callable[[str], tuple[Any, Factory, Reset]]
) -> None:
    pool, _, reset = make(backend)
    guard = pool.acquire()
    before = pool.available() + 1
    guard.value.payload = "dirty"
    item = guard.value
    with collecting():
        del guard
    assert pool.available() == before
    assert item.payload is None and len(reset.calls) == 1


@pytest.mark.parametrize("make", [growable, bounded])
def test_a_guard_in_a_cycle_with_its_value_is_collected_and_returned(
    backend: str, make: Callable[[str], tuple[Any, Factory, Reset]]
) -> None:
    pool, factory, reset = make(backend)
    guard = pool.acquire()
    before = pool.available() + 1
    guard.value.payload = guard  # value -> guard -> slot -> value
    factory.made.clear()  # the factory's record must not keep the cycle alive
    with collecting():
        del guard
        gc.collect()
    assert pool.available() == before
    assert len(reset.calls) == 1
    again = pool.acquire()
    assert again.value.payload is None
    again.release()


def test_a_failing_reset_never_lends_the_half_reset_value(backend: str) -> None:
    pool, factory, reset = bounded(backend, capacity=1)
    guard = pool.acquire()
    reset.fail_serials.add(0)
    with pytest.raises(ResetFailed):
        guard.release()
    assert pool.available() == 1
    fresh = pool.acquire()
    assert fresh.value.serial == 1 and factory.calls == 2
    factory.failures_left = 1
    reset.fail_serials.add(1)
    with pytest.raises(ResetFailed) as failed:
        fresh.release()
    assert "factory() also raised" in "".join(getattr(failed.value, "__notes__", [])) or not hasattr(
        failed.value, "add_note"
    )
    assert pool.available() == 1, "the slot is free, its value still to be made"
    factory.failures_left = 1
    with pytest.raises(FactoryFailed):
        pool.acquire()
    assert pool.available() == 1, "a failed factory leaves the slot free"
    last = pool.acquire()
    assert last.value.serial == 2
    last.release()


def test_a_failing_factory_in_a_growable_pool_changes_nothing(backend: str) -> None:
    pool, factory, _ = growable(backend)
    factory.failures_left = 1
    with pytest.raises(FactoryFailed):
        pool.acquire()
    assert pool.available() == 0
    pool.acquire().release()
    assert pool.available() == 1


@pytest.mark.parametrize("make", [growable, bounded])
def test_guards_outlive_their_pool_and_a_dropped_pool_frees_its_values(
    backend: str, make: Callable[[str], tuple[Any, Factory, Reset]]
) -> None:
    pool, factory, _ = make(backend)
    guard = pool.acquire()
    pool_ref = weakref.ref(pool)
    values = [weakref.ref(item) for item in factory.made]
    del pool
    assert pool_ref() is not None, "a guard keeps its pool"
    guard.release()
    del guard
    factory.made.clear()
    assert pool_ref() is None, "freed by reference counting"
    assert all(value() is None for value in values)


def test_take_and_put_move_values_out_of_and_into_a_growable_pool(backend: str) -> None:
    pool, _, reset = growable(backend)
    made = pool.take()
    assert made.serial == 0 and pool.available() == 0
    pool.put(made)
    assert pool.available() == 1 and reset.calls == []
    taken = pool.take()
    assert taken is made and pool.available() == 0
    del taken, made
    gc.collect()
    assert pool.available() == 0, "a taken value never comes back by itself"


def test_bad_arguments(backend: str) -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        local.BoundedPool(0, object)
    with pytest.raises(TypeError, match="capacity must be an int"):
        local.BoundedPool("3", object)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="factory must be callable"):
        local.Pool(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reset must be callable or None"):
        local.BoundedPool(2, object, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        local.Pool(object, backend="fast")


@pytest.mark.parametrize("make", [growable, bounded])
def test_debug_checks_the_thread_of_every_acquisition_and_release(
    make: Callable[[str], tuple[Any, Factory, Reset]],
) -> None:
    pool, _, reset = make("debug")
    guard = pool.acquire()
    me = threading.current_thread()
    error = on_thread(pool.try_acquire, name="intruder")
    assert isinstance(error, OwnershipError)
    assert "'intruder' (ident " in str(error) and f"{me.name!r} (ident {me.ident})" in str(error)
    error = on_thread(guard.release, name="returner")
    assert isinstance(error, OwnershipError)
    assert "'returner' (ident " in str(error) and "release a guard of a local pool" in str(error)
    assert reset.calls == [], "the refused release did nothing"
    guard.release()
    pool.handoff()
    assert on_thread(lambda: pool.acquire().release(), name="next owner") is None


def test_without_debug_nothing_is_checked() -> None:
    pool, _, _ = growable("local")
    guard = pool.acquire()
    assert on_thread(guard.release, name="returner") is None
    assert on_thread(lambda: pool.acquire().release(), name="other") is None


def test_debug_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_POOL_BACKEND", "debug")
    assert local.Pool(object).backend == "debug"
    assert local.BoundedPool(1, object).backend == "debug"
    assert local.Pool(object, backend="locked").backend == "local"


def test_holders_of_local_pools(backend: str) -> None:
    """Local pools have no slots: one Holder per lent value, slot None, how "local"."""
    for pool in (local.Pool(Factory(), backend=_backend_arg(backend), track="every"),
                 local.BoundedPool(3, Factory(), backend=_backend_arg(backend), track="every")):  # fmt: skip
        assert pool.holders() == []
        first = pool.acquire()
        second = pool.acquire()
        holders = pool.holders()
        assert len(holders) == 2
        for holder in holders:
            assert (holder.slot, holder.how, holder.thread_id) == (None, "local", threading.get_ident())
            assert holder.site is not None and holder.site.filename == __file__
            assert holder.site.function == "test_holders_of_local_pools"
        first.release()
        assert len(pool.holders()) == 1
        del second  # a dropped guard leaves the list too
        gc.collect()
        assert pool.holders() == []


def test_a_bounded_local_pool_names_its_holders_when_dry(backend: str) -> None:
    pool = local.BoundedPool(2, Factory(), backend=_backend_arg(backend), track="every")
    held = [pool.acquire(), pool.acquire()]
    with pytest.raises(PoolExhausted) as raised:
        pool.acquire()
    message = str(raised.value)
    assert message.startswith("all 2 values of this local.BoundedPool are in use; oldest held ")
    assert "acquired at test_local.py:" in message and message.endswith("so acquire() does not wait")
    assert len(raised.value.holders) == 2
    for guard in held:
        guard.release()


def test_debug_warns_at_exit_about_local_guards_never_released() -> None:
    import subprocess
    import sys

    code = "from nexus_pool import local\npool = local.BoundedPool(2, list, backend='debug')\nkept = pool.acquire()\n"
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "PoolLeakWarning: a local pool's guard was never released" in done.stderr
    assert "acquired at <string>:3 in <module>" in done.stderr
