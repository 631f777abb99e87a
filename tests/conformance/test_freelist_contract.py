"""Each backend's free list, driven directly through the contract in ``_backends/_contract.py``.

The facade tests above show that pools behave; these pin down what the facade relies on,
so a new backend learns early which promise it breaks.
"""

from __future__ import annotations

import time

import pytest

from nexus_pool._backends import backend_class
from nexus_pool._backends._contract import EMPTY, FreeList

from .support import running, spawn


@pytest.fixture
def freelist_class(backend: str) -> type[FreeList]:
    return backend_class(backend)


def test_class_is_registered_under_its_name(backend: str, freelist_class: type[FreeList]) -> None:
    assert issubclass(freelist_class, FreeList)
    assert freelist_class.name == backend
    assert freelist_class.max_capacity >= 1


def test_hot_path_members_are_callables_and_tickets_cover_every_slot(freelist_class: type[FreeList]) -> None:
    freelist = freelist_class(5)
    assert callable(freelist.pop)
    assert callable(freelist.push)
    assert len(freelist.tickets) == 5
    assert len(set(freelist.tickets)) == 5


def test_pops_in_slot_order_then_lifo(freelist_class: type[FreeList]) -> None:
    freelist = freelist_class(4)
    assert [freelist.pop() for _ in range(5)] == [0, 1, 2, 3, EMPTY]
    for slot in (1, 3, 0):
        assert freelist.push(freelist.tickets[slot]) == 0
    assert freelist.available() == 3
    assert [freelist.pop() for _ in range(4)] == [0, 3, 1, EMPTY]
    assert freelist.available() == 0


def test_pop_wait_times_out_with_empty(freelist_class: type[FreeList]) -> None:
    freelist = freelist_class(1)
    assert freelist.pop() == 0
    started = time.monotonic()
    assert freelist.pop_wait(0.05) == EMPTY
    assert time.monotonic() - started >= 0.045


def test_pop_wait_returns_a_slot_pushed_from_another_thread(freelist_class: type[FreeList]) -> None:
    freelist = freelist_class(2)
    assert (freelist.pop(), freelist.pop()) == (0, 1)

    def push_later() -> None:
        time.sleep(0.05)
        status = freelist.push(freelist.tickets[1])
        if status:
            freelist.settle(freelist.tickets[1], status)

    with running(spawn(push_later)):
        assert freelist.pop_wait(None) == 1


def test_handoff_is_accepted_by_the_owner(freelist_class: type[FreeList]) -> None:
    freelist = freelist_class(1)
    assert freelist.pop() == 0
    freelist.handoff()
    freelist.handoff()  # handing off a pool nobody owns is harmless
