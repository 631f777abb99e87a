"""The ``locked`` backend's own promise: misuse by two acquiring threads corrupts nothing."""

from __future__ import annotations

import queue

from nexus_pool import Pooled

from ..conformance.support import WAIT, Item, Ledger, assert_all_free, make_pool, running, spawn, switching_often


def test_two_acquiring_threads_never_share_a_slot() -> None:
    """Against the design (one acquirer), but it must stay safe: no value lent twice."""
    pool, _, reset = make_pool("locked", capacity=8)
    ledger = Ledger()
    handed: queue.SimpleQueue[Pooled[Item] | None] = queue.SimpleQueue()
    per_acquirer = 10_000

    def acquirer() -> None:
        for _ in range(per_acquirer):
            guard = pool.acquire(timeout=WAIT)
            ledger.lend(guard.value)
            handed.put(guard)

    def returner() -> None:
        while (guard := handed.get(timeout=WAIT)) is not None:
            ledger.give_back(guard.value)
            guard.release()

    returners = [spawn(returner) for _ in range(2)]
    with switching_often(), running(*returners):
        with running(spawn(acquirer), spawn(acquirer)):
            pass
        for _ in returners:
            handed.put(None)
    assert not ledger.violations
    assert ledger.lends == 2 * per_acquirer
    assert len(reset.calls) == 2 * per_acquirer
    assert_all_free(pool)
