"""The pure facade brings back the slot of every lease that dies unreleased, even when
what normally tells it (the lease's finalizer and weak reference callbacks) fails."""

from __future__ import annotations

import gc
import weakref
from collections import deque
from contextlib import nullcontext

import pytest

from nexus_pool import Pool
from nexus_pool._pool import SLOTS_CLEARED_IN_ORDER, PurePool
from nexus_pool._slots import Lease

from ..conformance.support import Item, assert_all_free

pytestmark = pytest.mark.pure_only


@pytest.mark.parametrize("backend", ["locked", "atomic", "debug"])
def test_a_slot_whose_death_was_never_queued_comes_back(backend: str) -> None:
    """CPython skips a dying object's weak reference callbacks when it cannot allocate
    their arguments, and ``deque.append`` can fail the same way: the record of a dead
    lease then never reaches the queue. Here the queue the records append to is swapped
    for an orphan, so no death reaches the pool: only the dead records tell."""
    pool = Pool(3, lambda: Item(0), lambda item: setattr(item, "payload", None), backend=backend)
    assert isinstance(pool, PurePool)
    home = pool._home
    home.dead = deque()  # the leases made so far append their records to the old one
    guard = pool.acquire()
    guard.value.payload = "dropped"
    with pytest.warns(ResourceWarning) if backend == "debug" else nullcontext():
        del guard
        gc.collect()
        assert pool.available() == 3
    assert_all_free(pool)


def test_a_lease_has_no_python_finalizer() -> None:
    """A signal handler can raise at the entry of a Python function; a __del__ that is one
    would leave its frame, and with it the dying lease, to an unraisable hook that keeps it."""
    finalizer = Lease.__dict__["__del__"]
    assert isinstance(finalizer, property)
    assert not hasattr(finalizer.fget, "__code__")


def test_a_dying_object_drops_its_slots_in_sorted_name_order() -> None:
    """What PurePooled relies on (``_lease`` dropped before ``_source``), checked on this
    interpreter: the slots are declared out of order, and the deaths come sorted."""
    died: list[str] = []

    class Marker:
        def __init__(self, name: str) -> None:
            self.name = name

    class Holder:
        __slots__ = ("_collected", "_lease", "_source")

    holder = Holder()
    refs = []
    for name in ("_source", "_lease", "_collected"):
        marker = Marker(name)
        refs.append(weakref.ref(marker, lambda _, name=name: died.append(name)))  # type: ignore[misc]
        setattr(holder, name, marker)
        del marker
    del holder
    assert died == sorted(["_source", "_lease", "_collected"])
    assert [name for name in died if name in SLOTS_CLEARED_IN_ORDER] == list(SLOTS_CLEARED_IN_ORDER)
