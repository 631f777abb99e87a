"""An exception injected at every line and every opcode of nexus_pool's code loses nothing.

For each operation and backend, one run per point (see ``injection.py``): a
``KeyboardInterrupt`` raised there, then an audit of the pool. The terminal summary lists
the points tried and lost per operation ("interrupt figures"). Line level must lose
nothing anywhere; opcode level must lose nothing where a signal can land, and the few
points only a tracer can reach are listed by name.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator

import pytest

from nexus_pool import _slots
from nexus_pool._backends import BACKENDS

from ..conformance.support import Item, require_backend
from ..implementations import IMPLEMENTATIONS
from .injection import EXACT_OPCODE_EVENTS, Level, Scenario, Stage, sweep

pytestmark = pytest.mark.slow


def nothing(stage: Stage) -> None:
    pass


def hold_one_used(stage: Stage) -> None:
    guard = stage.pool.acquire(0)
    guard.value.payload = "used"
    stage.guards.append(guard)


def hold_all_used(stage: Stage) -> None:
    for _ in range(stage.pool.capacity):
        hold_one_used(stage)


def release_one_soon(stage: Stage) -> None:
    """Every slot out; another thread releases one a moment after the operation starts."""
    hold_all_used(stage)
    guard = stage.guards.pop()
    timer = threading.Timer(0.005, guard.release)
    timer.daemon = True
    stage.keep.append(timer)
    timer.start()


def with_reset_failing(prepare: Callable[[Stage], None]) -> Callable[[Stage], None]:
    def failing(stage: Stage) -> None:
        prepare(stage)
        stage.reset.failing.add(stage.guards[0].value.serial)

    return failing


def with_factory_failing(prepare: Callable[[Stage], None]) -> Callable[[Stage], None]:
    def failing(stage: Stage) -> None:
        prepare(stage)
        stage.factory.failing = True

    return failing


def one_stale_slot(stage: Stage) -> None:
    """Slot 0 lost its value: its reset and the replacement factory() both failed."""
    hold_one_used(stage)
    stage.reset.failing.add(stage.guards[0].value.serial)
    stage.factory.failing = True
    with pytest.raises(ValueError, match="failed on purpose"):
        stage.guards.pop().release()
    stage.reset.failing.clear()
    stage.factory.failing = False


def dead_but_not_revived(hold: Callable[[Stage], None]) -> Callable[[Stage], None]:
    """A guard dropped, its slot queued for revival, and the revival lost.

    As if the revival on the dropping thread had been interrupted: the slot waits in
    ``Home.dead`` for the next release, empty acquisition, wait or ``available()``.
    """

    def prepare(stage: Stage) -> None:
        hold(stage)
        # As if a collection were running: the trigger then only notes the home for later
        _slots._stop_before_start[0] = _slots._phase_info.get("stop")
        _slots.collecting[0] = True
        try:
            stage.guards.pop()
        finally:
            _slots.collecting[0] = False
        _slots._revive_after_collection.clear()  # ... and the later never comes

    return prepare


def keep_result(acquire: Callable[[Stage], object]) -> Callable[[Stage], None]:
    def operation(stage: Stage) -> None:
        guard = acquire(stage)
        assert guard is not None
        stage.guards.append(guard)  # type: ignore[arg-type]

    return operation


def release_first(stage: Stage) -> None:
    stage.guards[0].release()


def use_in_with_block(stage: Stage) -> None:
    with stage.pool.acquire(0) as value:
        value.payload = "used"


def drop_all(stage: Stage) -> None:
    stage.guards.clear()


def drop_in_cycle_with_value(stage: Stage) -> None:
    guard = stage.guards.pop()
    value: Item = guard.value
    value.payload = guard  # the value refers to its own guard
    del guard, value
    gc.collect()


SCENARIOS: dict[str, Scenario] = {
    "try_acquire": (nothing, keep_result(lambda stage: stage.pool.try_acquire())),
    "acquire, fast path": (nothing, keep_result(lambda stage: stage.pool.acquire(0))),
    "acquire, blocking": (release_one_soon, keep_result(lambda stage: stage.pool.acquire(timeout=10))),
    "release": (hold_one_used, release_first),
    "with block": (nothing, use_in_with_block),
    "drop": (hold_one_used, drop_all),
    "drop in a cycle": (hold_one_used, drop_in_cycle_with_value),
    "release, reset raising": (with_reset_failing(hold_one_used), release_first),
    "release, reset and factory raising": (with_factory_failing(with_reset_failing(hold_one_used)), release_first),
    "drop, reset raising": (with_reset_failing(hold_one_used), drop_all),
    "acquire a slot without value": (one_stale_slot, keep_result(lambda stage: stage.pool.acquire(0))),
    "available(), reviving": (
        dead_but_not_revived(hold_one_used),
        lambda stage: stage.keep.append(stage.pool.available()),
    ),
    "acquire, reviving": (
        dead_but_not_revived(hold_all_used),
        keep_result(lambda stage: stage.pool.acquire(0)),
    ),
    "release, reviving": (dead_but_not_revived(hold_all_used), release_first),
}


@pytest.fixture(params=BACKENDS)
def pure_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each backend on the pure facade: the only one with bytecode of its own to interrupt.

    The native facade takes a slot and hands it to its guard in C; what it runs in
    Python (factory, reset, the blocking wait) is covered by the signal storms.
    """
    name: str = request.param
    with IMPLEMENTATIONS["pure"].selected():
        yield require_backend(name)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("level", ["line", "opcode"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_an_exception_anywhere_loses_nothing(
    pure_backend: str, name: str, level: Level, record_property: Callable[[str, object], None]
) -> None:
    backend = pure_backend
    if level == "opcode" and not EXACT_OPCODE_EVENTS:
        pytest.skip("settrace misses opcode events on 3.12+ (see injection.EXACT_OPCODE_EVENTS)")
    outcome = sweep(backend, level, SCENARIOS[name])
    reachable = outcome.lossy_reachable()
    record_property(
        "interrupts",
        f"{backend:6} {level:6} {name}: {outcome.points} points ({outcome.dry_run_points} in an uninterrupted run), "
        f"{len(outcome.lossy)} lossy" + (f" ({len(reachable)} where a signal can land)" if outcome.lossy else ""),
    )
    for point in outcome.lossy:
        if point not in reachable:
            record_property("interrupts", f"    tracer-only: {point}")
    assert outcome.points > 0
    assert not reachable, "\n".join(reachable)
    if level == "line":
        assert not outcome.lossy, "\n".join(outcome.lossy)
