"""Long concurrent runs, sized by NEXUS_POOL_STRESS_ROUND_TRIPS (CI: 1,000,000 per backend).

They check with plain per-value bookkeeping, no locks of their own, so that the pool is
the only thing synchronising the threads: an acquired value must come back reset and
unused, a returner must find in its value exactly what the acquirer wrote, and the
reset counts kept on the values must add up.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator

import pytest

from nexus_pool import Pool, Pooled

from ..conformance.support import WAIT, assert_all_free, barrier, drain, running, spawn, switching_often

pytestmark = pytest.mark.slow

ROUND_TRIPS = int(os.environ.get("NEXUS_POOL_STRESS_ROUND_TRIPS", "200000"))
RETURNERS = 4


class Buffer:
    __slots__ = ("payload", "resets")

    def __init__(self) -> None:
        self.payload: int | None = None
        self.resets = 0


def reset(buffer: Buffer) -> None:
    buffer.payload = None
    buffer.resets += 1  # only the releasing thread of the one live lease touches this


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    with switching_often():
        yield


@pytest.mark.timeout(900)
def test_fan_out_round_trips(backend: str, record_property: Callable[[str, object], None]) -> None:
    """1 acquirer + 4 returners; the acquirer blocks in acquire() when all slots are out."""
    capacity = 64
    made: list[Buffer] = []

    def factory() -> Buffer:
        made.append(Buffer())
        return made[-1]

    pool = Pool(capacity, factory, reset, backend=backend)
    inboxes: list[queue.SimpleQueue[Pooled[Buffer] | None]] = [queue.SimpleQueue() for _ in range(RETURNERS)]
    errors: list[str] = []

    def returner(inbox: queue.SimpleQueue[Pooled[Buffer] | None]) -> None:
        expected = None
        while (guard := inbox.get(timeout=WAIT)) is not None:
            buffer = guard.value
            if buffer.payload is None or (expected is not None and buffer.payload <= expected):
                errors.append(f"returner found {buffer.payload!r} after {expected!r}")
            expected = buffer.payload
            guard.release()

    started = time.perf_counter()
    with running(*(spawn(returner, inbox) for inbox in inboxes)):
        for sequence in range(ROUND_TRIPS):
            guard = pool.acquire(timeout=WAIT)
            buffer = guard.value
            if buffer.payload is not None:
                errors.append(f"acquired a buffer still holding {buffer.payload}")
            buffer.payload = sequence
            inboxes[sequence % RETURNERS].put(guard)
        del guard
        for inbox in inboxes:
            inbox.put(None)
    elapsed = time.perf_counter() - started
    record_property(
        "stress", f"{backend}: {ROUND_TRIPS:,} round trips, 1+{RETURNERS} threads, {ROUND_TRIPS / elapsed:,.0f}/s"
    )

    assert not errors, errors[:5]
    assert len(made) == capacity
    assert sum(buffer.resets for buffer in made) == ROUND_TRIPS
    assert pool.available() == capacity
    assert_nothing_drifted(pool)


def assert_nothing_drifted(pool: Pool[Buffer]) -> None:
    """The waiting room is empty again: no announced sleeper, no slot waiting for revival.

    (A pending wake-up is one released lock at most, so it cannot accumulate.)
    """
    home = getattr(pool, "_home", None)  # the pure facade's
    waiting = home.waiting if home is not None else getattr(pool, "_waiting")  # noqa: B009
    assert not waiting, f"{len(waiting)} waiter(s) still announced"
    if home is not None:
        assert not home.dead, f"{len(home.dead)} dead lease(s) still queued"


@pytest.mark.timeout(900)
def test_all_slots_released_at_a_barrier_repeatedly(
    backend: str, record_property: Callable[[str, object], None]
) -> None:
    capacity = 256
    rounds = max(ROUND_TRIPS // capacity, 1)
    made: list[Buffer] = []

    def factory() -> Buffer:
        made.append(Buffer())
        return made[-1]

    pool = Pool(capacity, factory, reset, backend=backend)
    start = barrier(RETURNERS + 1)
    shares: list[list[Pooled[Buffer]]] = [[] for _ in range(RETURNERS)]
    finished = barrier(RETURNERS + 1)

    def releaser(index: int) -> None:
        for _ in range(rounds):
            start.wait()
            share = shares[index]
            while share:
                share.pop().release()
            finished.wait()

    started = time.perf_counter()
    with running(*(spawn(releaser, index) for index in range(RETURNERS))):
        for _ in range(rounds):
            guards = drain(pool)
            assert len(guards) == capacity
            for index in range(RETURNERS):
                shares[index][:] = guards[index::RETURNERS]
            del guards
            start.wait()
            finished.wait()
            assert pool.available() == capacity
    elapsed = time.perf_counter() - started
    record_property(
        "stress",
        f"{backend}: {rounds:,} rounds of {capacity} slots released by {RETURNERS} threads at a barrier, "
        f"{rounds * capacity / elapsed:,.0f} releases/s",
    )
    assert sum(buffer.resets for buffer in made) == rounds * capacity
    assert_all_free(pool)
    assert_nothing_drifted(pool)
