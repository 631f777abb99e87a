"""Each backend's free list, driven directly through the contract in ``_backends/_contract.py``.

The facade tests show that pools behave; these pin down what the facade relies on, so a
new backend learns early which promise it breaks.
"""

from __future__ import annotations

import gc
import queue
import sys
import weakref
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from nexus_pool._backends import backend_class
from nexus_pool._backends._contract import FreeList

from .support import WAIT, running, spawn, switching_often

if TYPE_CHECKING:
    from _typeshed import TraceFunction


@dataclass(eq=False)
class Token:
    """A stand-in lease: all a backend may know of one is its slot."""

    slot: int


def tokens(capacity: int) -> list[Token]:
    return [Token(slot) for slot in range(capacity)]


def take_or_none(freelist: FreeList[Token]) -> Token | None:
    try:
        return freelist.take()
    except LookupError:
        return None


@pytest.fixture
def freelist_class(backend: str) -> type[FreeList[Token]]:
    return backend_class(backend)


def test_class_is_registered_under_its_name(backend: str, freelist_class: type[FreeList[Token]]) -> None:
    assert issubclass(freelist_class, FreeList)
    assert freelist_class.name == backend
    assert freelist_class.max_capacity >= 1


def test_takes_in_slot_order_then_lifo(freelist_class: type[FreeList[Token]]) -> None:
    leases = tokens(4)
    freelist = freelist_class(leases)
    assert freelist.available() == 4
    taken = [freelist.take() for _ in range(4)]
    assert taken == leases  # the very objects, in slot order
    assert take_or_none(freelist) is None
    for slot in (1, 3, 0):
        assert not freelist.give(leases[slot])
    assert freelist.available() == 3
    assert [take_or_none(freelist) for _ in range(4)] == [leases[0], leases[3], leases[1], None]
    assert freelist.available() == 0


def test_take_moves_the_only_reference(freelist_class: type[FreeList[Token]]) -> None:
    """Once taken, a lease is held by the caller alone: dropping it must free it.

    The facade relies on that: a lease dropped by an interrupted acquisition dies, and
    its death brings the slot back.
    """
    leases = tokens(2)
    freelist = freelist_class(leases)
    first = weakref.ref(leases[0])
    del leases
    taken = freelist.take()
    assert first() is taken
    del taken
    gc.collect()
    assert first() is None, "the backend kept a reference to a taken lease"
    assert freelist.available() == 1


def test_give_keeps_the_lease_until_taken(freelist_class: type[FreeList[Token]]) -> None:
    freelist = freelist_class(tokens(1))
    lease = freelist.take()
    held = weakref.ref(lease)
    assert not freelist.give(lease)
    del lease
    gc.collect()
    assert held() is not None
    assert freelist.take() is held()


def test_take_runs_no_python_code_of_the_backend_between_taking_and_returning(
    backend: str, freelist_class: type[FreeList[Token]]
) -> None:
    """Ownership moves in one step: no line of the backend runs after the lease left it.

    Checked with a tracer: the last line event inside the backend's module before take
    returns must come before the removal (backends whose take is a C callable have none).
    """
    freelist = freelist_class(tokens(2))
    module_file = sys.modules[type(freelist).__module__].__file__
    events: list[str] = []

    def tracer(frame: FrameType, event: str, arg: object) -> TraceFunction:
        code = frame.f_code
        if code.co_filename == module_file:
            events.append(f"{event}:{code.co_name}")
        return tracer

    sys.settrace(tracer)
    try:
        freelist.take()
    finally:
        sys.settrace(None)
    if backend == "debug":  # a Python take: checks first, then the inner C pop, then returns
        assert events[-1] == "return:take"
    else:
        assert events == [], f"{backend}'s take runs Python code: {events}"


def test_leases_given_back_from_other_threads_are_all_kept(freelist_class: type[FreeList[Token]]) -> None:
    """One thread takes, two threads give back at once, every lease comes home."""
    capacity = 8
    leases = tokens(capacity)
    freelist = freelist_class(leases)
    handed: queue.SimpleQueue[Token | None] = queue.SimpleQueue()
    rounds = 20_000

    def giver() -> None:
        while (lease := handed.get(timeout=WAIT)) is not None:
            assert not freelist.give(lease)

    givers = [spawn(giver), spawn(giver)]
    with switching_often(), running(*givers):
        taken = 0
        while taken < rounds:
            lease = take_or_none(freelist)
            if lease is not None:
                handed.put(lease)
                taken += 1
        for _ in givers:
            handed.put(None)
    assert freelist.available() == capacity
    assert sorted(id(freelist.take()) for _ in range(capacity)) == sorted(id(lease) for lease in leases)


def test_handoff_is_accepted_by_the_owner(freelist_class: type[FreeList[Token]]) -> None:
    freelist = freelist_class(tokens(1))
    freelist.take()
    freelist.handoff()
    freelist.handoff()  # handing off a pool nobody owns is harmless
