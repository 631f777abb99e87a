"""The guard lifecycle every backend must provide: acquire, use, reset, return."""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref
from collections.abc import Callable

import pytest

from nexus_pool import Pool, Pooled, ReleasedError
from nexus_pool import sync as nexus_sync

from .support import Item, assert_all_free, collecting, drain, make_pool, running, spawn


def test_full_cycle(backend: str) -> None:
    pool, factory, reset = make_pool(backend, capacity=2)
    assert pool.backend == backend
    assert pool.capacity == 2
    assert pool.available() == 2

    guard = pool.try_acquire()
    assert guard is not None
    assert pool.available() == 1
    guard.value.payload = "filled"
    guard.release()

    assert pool.available() == 2
    assert reset.calls == [(guard_serial := factory.made[0].serial, threading.get_ident())]
    assert factory.made[guard_serial].payload is None
    assert_all_free(pool)


def test_sync_module_exports_the_same_classes() -> None:
    assert nexus_sync.Pool is Pool
    assert nexus_sync.Pooled is Pooled


def test_factory_runs_capacity_times_up_front_and_never_again(backend: str) -> None:
    pool, factory, _ = make_pool(backend, capacity=5)
    assert factory.calls == 5
    for _ in range(3):
        guards = drain(pool)
        for guard in guards:
            guard.release()
    assert factory.calls == 5


def test_each_acquisition_is_a_new_guard(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    first = pool.acquire()
    first.release()
    second = pool.acquire()
    assert second is not first
    with pytest.raises(ReleasedError):
        first.value  # noqa: B018
    assert second.value.serial == 0
    second.release()


def test_first_acquisitions_in_slot_order_then_lifo(backend: str) -> None:
    pool, factory, _ = make_pool(backend, capacity=4)
    guards = drain(pool)
    assert [g.value.serial for g in guards] == [0, 1, 2, 3]

    for index in (2, 0, 3, 1):
        guards[index].release()
    again = drain(pool)
    # the most recently returned slot comes out first
    assert [g.value.serial for g in again] == [1, 3, 0, 2]
    assert [g.value for g in again] == [factory.made[i] for i in (1, 3, 0, 2)]
    for guard in again:
        guard.release()


def test_try_acquire_returns_none_when_exhausted(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    guards = drain(pool)
    assert len(guards) == 2
    assert pool.try_acquire() is None
    assert pool.available() == 0
    guards[0].release()
    assert pool.available() == 1
    guards[0] = pool.try_acquire()  # type: ignore[assignment]
    assert guards[0] is not None
    for guard in guards:
        guard.release()


def test_reset_runs_once_on_the_releasing_thread(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=3)
    guards = drain(pool)
    idents = {}

    def release(guard: Pooled[Item]) -> None:
        idents[guard.value.serial] = threading.get_ident()
        guard.release()

    with running(*(spawn(release, g) for g in guards)):
        pass
    assert sorted(reset.calls) == sorted(idents.items())
    assert all(reset.count(serial) == 1 for serial in idents)
    assert threading.get_ident() not in {ident for _, ident in reset.calls}


def test_value_acquired_after_release_has_been_reset(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    with pool.acquire() as item:
        item.payload = "dirty"
    with pool.acquire() as item:
        assert item.payload is None
        assert item.resets == 1


def test_pool_without_reset_returns_values_as_they_are(backend: str) -> None:
    pool: Pool[list[int]] = Pool(1, list, backend=backend)
    with pool.acquire() as items:
        items.append(1)
    with pool.acquire() as items:
        assert items == [1]


def test_with_block_yields_the_value_and_releases(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    guard = pool.acquire()
    with guard as item:
        assert isinstance(item, Item)
        assert item is guard.value
        assert pool.available() == 0
    assert pool.available() == 1
    assert len(reset.calls) == 1
    with pytest.raises(ReleasedError):
        guard.value  # noqa: B018


def test_with_block_releases_when_the_body_raises(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    with pytest.raises(KeyError), pool.acquire() as item:
        item.payload = "dirty"
        raise KeyError("body failed")
    assert pool.available() == 1
    assert len(reset.calls) == 1
    assert_all_free(pool)


def test_entering_a_released_guard_raises(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    guard = pool.acquire()
    guard.release()
    with pytest.raises(ReleasedError), guard:
        pass


def test_dropped_guard_returns_its_slot(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=2)
    guard = pool.acquire()
    guard.value.payload = "dirty"
    assert pool.available() == 1
    with collecting():
        del guard
    assert pool.available() == 2
    assert len(reset.calls) == 1
    assert_all_free(pool)


def test_guard_in_a_reference_cycle_returns_its_slot_when_collected(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    cycle: list[object] = [pool.acquire()]
    cycle.append(cycle)  # the guard is only reachable from a garbage cycle
    del cycle
    with collecting():
        gc.collect()
    assert pool.available() == 1
    assert len(reset.calls) == 1


def test_guard_outlives_its_pool_and_keeps_the_values_alive(backend: str) -> None:
    pool, factory, reset = make_pool(backend, capacity=3)
    guard = pool.acquire()
    values = [weakref.ref(item) for item in factory.made]
    del pool, factory
    gc.collect()
    assert all(ref() is not None for ref in values), "values died with the pool"
    guard.value.payload = "still usable"
    guard.release()
    assert reset.calls[-1][0] == 0
    del guard
    gc.collect()
    assert all(ref() is None for ref in values), "values outlived the last guard"


def test_dropped_guard_outliving_its_pool_still_returns(backend: str) -> None:
    pool, _, reset = make_pool(backend, capacity=1)
    guard = pool.acquire()
    del pool
    with collecting():
        del guard
    assert len(reset.calls) == 1


def test_guards_cannot_be_copied_or_pickled(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    guard = pool.acquire()
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="second lease"):
            duplicate(guard)
    guard.release()
    assert_all_free(pool)


def test_pools_cannot_be_copied_or_pickled(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=1)
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be copied"):
            duplicate(pool)


def test_a_hand_made_guard_holds_nothing() -> None:
    guard: Pooled[int] = Pooled()
    with pytest.raises(ReleasedError, match="never acquired"):
        guard.value  # noqa: B018
    with pytest.raises(ReleasedError, match="never acquired"):
        guard.release()
    del guard  # and collecting it is silent


def test_reprs_describe_state(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    assert repr(pool) == f"<nexus_pool.Pool capacity=2 available=2 backend={backend!r}>"
    guard = pool.acquire()
    assert repr(guard) == "<Pooled slot=0 value=Item(0)>"
    guard.release()
    assert repr(guard) == "<Pooled (released)>"


@pytest.mark.parametrize(
    ("factory", "shown"),
    [
        (lambda: bytearray(64 << 10), "of 65536 bytes"),
        (lambda: bytes(1 << 20), "of 1048576 bytes"),
        (lambda: memoryview(bytearray(4096)), "memoryview of 4096 bytes"),
        (lambda: list(range(100_000)), "..."),
        (lambda: "x" * 100_000, "..."),
    ],
    ids=["bytearray", "bytes", "memoryview", "list", "str"],
)
def test_reprs_stay_short_for_large_values(backend: str, factory: Callable[[], object], shown: str) -> None:
    pool = Pool(1, factory, backend=backend)
    guard = pool.acquire(0)
    text = repr(guard)
    assert len(text) <= 200, text
    assert shown in text
    guard.release()
