"""Shared leases handed between threads of one process, as the thread pools' guards are:
the producer acquires on one thread, others release (and receive) at the same time.
Run also under ThreadSanitizer on free-threaded CPython (.ci/tsan)."""

from __future__ import annotations

import queue
import threading

import pytest

from nexus_pool import ReleasedError, shared
from nexus_pool._shared import shared_unavailable

from ..conformance.support import IN_CI

pytestmark = pytest.mark.skipif(
    bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
)

ROUNDS = 3000


@pytest.mark.parametrize("returners", [1, 3])
def test_one_acquirer_and_returner_threads(returners: int) -> None:
    with shared.SharedBufferPool(4, 4096) as pool:
        inbox: queue.SimpleQueue[shared.SharedLease | shared.Handle | None] = queue.SimpleQueue()
        seen: list[int] = []

        def returner() -> None:
            while (item := inbox.get()) is not None:
                if isinstance(item, shared.Handle):
                    with shared.receive(item) as buffer:
                        seen.append(buffer.data[0])
                else:
                    seen.append(item.value.data[0])
                    item.release()

        threads = [threading.Thread(target=returner) for _ in range(returners)]
        for thread in threads:
            thread.start()
        for round_number in range(ROUNDS):
            lease = pool.acquire(timeout=30)
            lease.value.data[0] = round_number % 251
            inbox.put(lease.send() if round_number % 2 else lease)
        for _ in threads:
            inbox.put(None)
        for thread in threads:
            thread.join(60)
        assert sorted(seen) == sorted(number % 251 for number in range(ROUNDS))
        assert pool.available() == 4


def test_a_lease_released_by_two_threads_at_once_goes_back_once() -> None:
    with shared.SharedBufferPool(2, 4096) as pool:
        for _ in range(300):
            lease = pool.acquire(timeout=10)
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def release() -> None:
                barrier.wait()
                try:
                    lease.release()
                except ReleasedError:
                    outcomes.append("refused")
                else:
                    outcomes.append("released")

            racers = [threading.Thread(target=release) for _ in range(2)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(10)
            assert sorted(outcomes) == ["refused", "released"]
            assert pool.available() == 2
