"""Many threads at once: races on release, and the fan-out pattern the pool is made for."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from nexus_pool import Pooled, ReleasedError

from .support import (
    WAIT,
    Item,
    Ledger,
    assert_all_free,
    barrier,
    collecting,
    drain,
    make_pool,
    running,
    spawn,
    switching_often,
)

RETURNERS = 4


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    with switching_often():
        yield


def test_concurrent_double_release_has_exactly_one_winner(backend: str) -> None:
    """Four threads release the same guard at a barrier: one succeeds, three get ReleasedError."""
    pool, _, reset = make_pool(backend, capacity=2)
    rounds = 2000
    start = barrier(RETURNERS)
    wins: list[int] = []
    losses: list[int] = []
    shared: list[Pooled[Item]] = []
    round_ready = barrier(RETURNERS + 1)

    def contender() -> None:
        for _ in range(rounds):
            round_ready.wait()
            guard = shared[0]
            start.wait()
            try:
                guard.release()
            except ReleasedError:
                losses.append(1)
            else:
                wins.append(1)
            round_ready.wait()

    threads = [spawn(contender) for _ in range(RETURNERS)]
    with running(*threads):
        try:
            for round_number in range(rounds):
                shared[:] = [pool.acquire(timeout=WAIT)]
                round_ready.wait()  # contenders take the guard and race
                round_ready.wait()  # all four have tried
                assert pool.available() == 2, f"round {round_number}: the slot was pushed twice"
        except BaseException:  # free the contenders at once instead of at their timeout
            round_ready.abort()
            start.abort()
            raise
    assert len(wins) == rounds
    assert len(losses) == rounds * (RETURNERS - 1)
    assert len(reset.calls) == rounds
    shared.clear()
    assert_all_free(pool)


def test_fan_out_stress_never_lends_a_value_twice(backend: str) -> None:
    """One acquirer fills values and hands guards to four returners through a queue."""
    items = 20_000
    capacity = 16
    pool, _, reset = make_pool(backend, capacity=capacity)
    ledger = Ledger()
    handed: queue.SimpleQueue[tuple[int, Pooled[Item]] | None] = queue.SimpleQueue()
    corrupted: list[str] = []

    def returner() -> None:
        while (message := handed.get(timeout=WAIT)) is not None:
            sequence, guard = message
            value = guard.value
            if value.payload != sequence:  # somebody else wrote into our value
                corrupted.append(f"{value!r} holds {value.payload!r}, expected {sequence}")
            ledger.give_back(value)
            guard.release()

    threads = [spawn(returner, name=f"returner-{i}") for i in range(RETURNERS)]
    with running(*threads):
        for sequence in range(items):
            guard = pool.acquire(timeout=30)
            value = guard.value
            ledger.lend(value)
            assert value.payload is None, "acquired a value that was not reset"
            value.payload = sequence
            handed.put((sequence, guard))
        del guard
        for _ in threads:
            handed.put(None)
    assert not ledger.violations
    assert not corrupted
    assert ledger.lends == items
    assert len(reset.calls) == items
    assert_all_free(pool)


def test_concurrent_release_of_every_slot_at_a_barrier(backend: str) -> None:
    """Threads release all slots at the same instant, many times over."""
    capacity = 64
    pool, _, reset = make_pool(backend, capacity=capacity)
    rounds = 50
    for _ in range(rounds):
        guards = drain(pool)
        assert len(guards) == capacity
        shares = [guards[i::RETURNERS] for i in range(RETURNERS)]
        start = barrier(RETURNERS)

        def release_share(share: list[Pooled[Item]]) -> None:
            start.wait()
            for guard in share:
                guard.release()

        del guards
        threads = [spawn(release_share, share) for share in shares]
        del shares
        with running(*threads):
            pass
        assert pool.available() == capacity
    assert len(reset.calls) == rounds * capacity
    assert_all_free(pool)


def test_guards_dropped_on_many_threads_all_come_back(backend: str) -> None:
    capacity = 32
    pool, _, reset = make_pool(backend, capacity=capacity)
    handed: queue.SimpleQueue[Pooled[Item] | None] = queue.SimpleQueue()

    def dropper() -> None:
        while (guard := handed.get(timeout=WAIT)) is not None:
            del guard  # returned by reference counting, on this thread

    threads = [spawn(dropper) for _ in range(RETURNERS)]
    with collecting(), running(*threads):
        for _ in range(2000):
            handed.put(pool.acquire(timeout=30))
        for _ in threads:
            handed.put(None)
    assert len(reset.calls) == 2000
    assert_all_free(pool)
