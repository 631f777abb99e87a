"""Random sequences of operations checked against a model of the pool (hypothesis).

The model is a plain list used as the free stack plus the value serial in each slot;
it shares nothing with the code under test. Guards are kept in the machine's own lists
(not hypothesis bundles) so that dropping one really drops the last reference.
"""

from __future__ import annotations

import gc

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from nexus_pool import Pool, Pooled, PoolExhausted, ReleasedError

from .support import Factory, Item, Reset, ResetFailed, collecting

pytestmark = pytest.mark.slow


class PoolModel(RuleBasedStateMachine):
    backend = "locked"

    @initialize(capacity=st.integers(min_value=1, max_value=6))
    def make(self, capacity: int) -> None:
        self.factory = Factory()
        self.reset = Reset()
        self.pool = Pool(capacity, self.factory, self.reset, backend=self.backend)
        self.free = list(range(capacity - 1, -1, -1))  # the end of the list is the top
        self.serial_in_slot = list(range(capacity))
        self.live: list[tuple[Pooled[Item], int]] = []  # (guard, slot)
        self.released: list[Pooled[Item]] = []
        self.resets = 0

    def _expect_acquired(self, guard: Pooled[Item] | None) -> None:
        assert guard is not None
        slot = self.free.pop()
        assert guard.value.serial == self.serial_in_slot[slot], "not the most recently freed slot"
        assert guard.value.payload is None, "acquired a value that was not reset"
        guard.value.payload = "in use"
        self.live.append((guard, slot))

    def _take_live(self, index: int) -> tuple[Pooled[Item], int]:
        return self.live.pop(index % len(self.live))

    def _returned(self, slot: int) -> None:
        self.free.append(slot)
        self.resets += 1

    @rule()
    def try_acquire(self) -> None:
        guard = self.pool.try_acquire()
        if self.free:
            self._expect_acquired(guard)
        else:
            assert guard is None

    @rule()
    def acquire_without_waiting(self) -> None:
        if self.free:
            self._expect_acquired(self.pool.acquire(0))
        else:
            with pytest.raises(PoolExhausted):
                self.pool.acquire(0)

    @precondition(lambda self: self.live)
    @rule(index=st.integers(min_value=0))
    def release(self, index: int) -> None:
        guard, slot = self._take_live(index)
        guard.release()
        self._returned(slot)
        self.released.append(guard)

    @precondition(lambda self: self.live)
    @rule(index=st.integers(min_value=0))
    def release_with_failing_reset(self, index: int) -> None:
        guard, slot = self._take_live(index)
        self.reset.fail_serials.add(guard.value.serial)
        with pytest.raises(ResetFailed):
            guard.release()
        self.serial_in_slot[slot] = self.factory.calls - 1  # replaced by a fresh value
        self._returned(slot)
        self.released.append(guard)

    @precondition(lambda self: self.live)
    @rule(index=st.integers(min_value=0))
    def drop(self, index: int) -> None:
        guard, slot = self._take_live(index)
        with collecting():
            del guard
            gc.collect()
        self._returned(slot)

    @precondition(lambda self: self.released)
    @rule(index=st.integers(min_value=0))
    def misuse_a_released_guard(self, index: int) -> None:
        guard = self.released[index % len(self.released)]
        with pytest.raises(ReleasedError):
            guard.release()
        with pytest.raises(ReleasedError):
            guard.value  # noqa: B018

    @invariant()
    def counts_match(self) -> None:
        assert self.pool.available() == len(self.free)
        assert len(self.reset.calls) == self.resets

    def teardown(self) -> None:
        for guard, _ in self.live:
            guard.release()


@pytest.mark.thread_unsafe  # hypothesis draws from one shared state per test
def test_pool_matches_model(backend: str) -> None:
    machine = type(f"PoolModel_{backend}", (PoolModel,), {"backend": backend})
    checks = settings(max_examples=60, stateful_step_count=40, deadline=None)
    # hypothesis releases that still support Python 3.10 leave this function unannotated
    run_state_machine_as_test(machine, settings=checks)  # type: ignore[no-untyped-call, unused-ignore]
