"""Raise a ``KeyboardInterrupt`` at one chosen point inside nexus_pool's code, then audit.

A tracer (``sys.settrace``, with ``f_trace_opcodes`` for opcode level) counts the line or
opcode events of nexus_pool's own frames on this thread (finalizers and weak reference
callbacks that run here included) and raises at the k-th one. Each run gets a fresh
pool; the scenario's leftovers are then released or dropped, the garbage collected, and
the pool audited from outside: every slot acquirable, each value once, each value reset
(or fresh) before it is lent again.

Each injection point is also classified: could a real signal land there? CPython runs
signal handlers only at function entry, at backward jumps and right after calls, so an
exception can only appear *before* an instruction that follows one of those (or before
a frame's first instruction). Points elsewhere can only be hit by a tracer.
"""

from __future__ import annotations

import dis
import gc
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Literal

import nexus_pool
from nexus_pool import Pool, Pooled, ReleasedError

from ..conformance.support import Item

if TYPE_CHECKING:
    from _typeshed import TraceFunction

PACKAGE_DIR = os.path.dirname(os.path.abspath(nexus_pool.__file__)) + os.sep

Level = Literal["line", "opcode"]

_SIGNAL_POINTS_AFTER = ("CALL", "SEND", "YIELD_VALUE")
"""Instructions after which, when they complete, CPython checks for pending signals
(``CALL_*`` variants included), besides backward jumps."""


@dataclass(frozen=True)
class _Code:
    """A code object's instructions: name by offset, and the offset that follows each."""

    names: dict[int, str]
    following: dict[int, int]

    @classmethod
    def of(cls, code: CodeType, cache: dict[CodeType, _Code]) -> _Code:
        known = cache.get(code)
        if known is None:
            instructions = list(dis.get_instructions(code))
            known = cache[code] = cls(
                {ins.offset: ins.opname for ins in instructions},
                {ins.offset: after.offset for ins, after in pairwise(instructions)},
            )
        return known


@dataclass(frozen=True)
class Point:
    """Where an exception was injected: before ``opname`` at ``offset`` of ``function``."""

    function: str
    line: int
    offset: int
    opname: str
    signal_reachable: bool

    def __str__(self) -> str:
        where = "a signal can land here" if self.signal_reachable else "only a tracer can land here"
        return f"{self.function}:{self.line} before {self.opname}@{self.offset} ({where})"


class Injector:
    """Counts nexus_pool's trace events on this thread; raises at event number ``target``."""

    def __init__(self, level: Level, target: int) -> None:
        self.level = level
        self.target = target
        self.count = 0
        self.fired: Point | None = None
        self._previous: dict[int, int] = {}  # id(frame) -> offset of its last traced instruction
        self._codes: dict[CodeType, _Code] = {}

    def _global(self, frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        if not frame.f_code.co_filename.startswith(PACKAGE_DIR):
            return None
        frame.f_trace_opcodes = self.level == "opcode"
        return self._local

    def _local(self, frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        if event == self.level and self.fired is None:
            self.count += 1
            if self.count == self.target:
                self.fired = self._point(frame)
                raise KeyboardInterrupt(f"injected at {self.fired}")
        if event == "opcode":
            self._previous[id(frame)] = frame.f_lasti
        elif event == "return":
            self._previous.pop(id(frame), None)
        return self._local

    def _point(self, frame: FrameType) -> Point:
        code = _Code.of(frame.f_code, self._codes)
        here = frame.f_lasti
        previous = self._previous.get(id(frame))
        if self.level == "line":
            reachable = True  # every statement boundary is a place a signal can reach in some program
        elif previous is None:
            reachable = True  # the frame's first instruction: the check on entry
        else:
            name = code.names.get(previous, "")
            # After a call only if it returned (a call that raised jumps to a handler,
            # without the check); after a backward jump always.
            reachable = name.startswith("JUMP_BACKWARD") or (
                name.startswith(_SIGNAL_POINTS_AFTER) and code.following.get(previous) == here
            )
        function = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
        return Point(function, frame.f_lineno or 0, here, code.names.get(here, "?"), reachable)

    @contextmanager
    def active(self) -> Iterator[None]:
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(None)


@contextmanager
def quiet_finalizers() -> Iterator[list[str]]:
    """Collect what finalizers and callbacks could not raise (injected exceptions included)."""
    reported: list[str] = []
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        reported.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value}")

    sys.unraisablehook = hook
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # debug reports collected guards
            yield reported
    finally:
        sys.unraisablehook = previous


class Reset:
    """Clears ``Item.payload``; raises for the serials in ``failing``."""

    def __init__(self) -> None:
        self.failing: set[int] = set()
        self.calls = 0

    def __call__(self, item: Item) -> None:
        self.calls += 1
        if item.serial in self.failing:
            item.payload = "half reset"
            raise ValueError(f"reset of {item!r} failed on purpose")
        item.payload = None


class Factory:
    def __init__(self) -> None:
        self.serials = 0
        self.failing = False

    def __call__(self) -> Item:
        if self.failing:
            raise ValueError("factory failed on purpose")
        self.serials += 1
        return Item(self.serials - 1)


@dataclass
class Stage:
    """One scenario's pool, and what its operation leaves behind."""

    pool: Pool[Item]
    reset: Reset
    factory: Factory
    guards: list[Pooled[Item]] = field(default_factory=list)
    keep: list[object] = field(default_factory=list)


@dataclass
class Outcome:
    level: Level
    points: int = 0
    dry_run_points: int = 0  # events of an uninterrupted run (timing-dependent operations vary)
    lossy: list[str] = field(default_factory=list)

    def lossy_reachable(self) -> list[str]:
        return [point for point in self.lossy if "a signal can land here" in point]


Scenario = tuple[Callable[[Stage], None], Callable[[Stage], None]]
"""(prepare, operation): prepare runs untraced; the operation is where exceptions land."""


def audit(stage: Stage) -> str | None:
    """Release or drop everything the run left, collect, and check the pool from outside."""
    for kept in stage.keep:
        if isinstance(kept, threading.Thread):
            kept.join(timeout=30)  # a helper that releases a guard must be done first
    for guard in stage.guards:
        try:
            guard.release()
        except (ReleasedError, ValueError):
            pass  # released already, or a reset failing on purpose (the slot goes back anyway)
    stage.guards.clear()
    stage.keep.clear()
    stage.reset.failing.clear()
    stage.factory.failing = False
    gc.collect()
    pool = stage.pool
    if pool.available() != pool.capacity:
        return f"available() is {pool.available()} of {pool.capacity}"
    taken: list[Pooled[Item]] = []
    while (next_guard := pool.try_acquire()) is not None:
        taken.append(next_guard)
        if len(taken) > pool.capacity:
            return "more guards than slots"
    values = [taken_guard.value for taken_guard in taken]
    problem = None
    if len(taken) != pool.capacity:
        problem = f"{pool.capacity - len(taken)} slot(s) lost"
    elif len({id(value) for value in values}) != len(values):
        problem = "a value is in two slots"
    elif any(value.payload is not None for value in values):
        problem = f"a value was lent again without its reset: {[value.payload for value in values]}"
    for taken_guard in taken:
        taken_guard.release()
    return problem


def sweep(backend: str, level: Level, scenario: Scenario, capacity: int = 3, limit: int = 5000) -> Outcome:
    """Inject at every point of the operation, one run each; the points that lost or doubled."""
    prepare, operation = scenario
    outcome = Outcome(level)
    # Each run ends with a full collection; frozen, the objects made before the sweep
    # (the test session's) are not scanned again every time.
    gc.collect()
    gc.freeze()
    try:
        with quiet_finalizers():
            return _sweep(backend, level, prepare, operation, outcome, capacity, limit)
    finally:
        gc.unfreeze()


EXACT_OPCODE_EVENTS = sys.version_info < (3, 12)
"""Whether settrace's opcode events can be trusted here. On 3.12+ settrace is built on
sys.monitoring: a code object reports opcode events only from its second traced call,
and a trace function that raises turns tracing off, so after every injected run the next
one misses events. The opcode-level sweep runs on 3.10 and 3.11 (CI: 3.11)."""


def _dry_run(
    backend: str, level: Level, prepare: Callable[[Stage], None], operation: Callable[[Stage], None], capacity: int
) -> int:
    """Run the operation (and its audit) traced but uninterrupted; the number of events.

    On 3.12+ tracing is built on sys.monitoring, which instruments a code object for
    opcode events only from its next call on: the first traced run of each function
    reports none. Dry runs instrument every function the operation and the audit use.
    """
    reset, factory = Reset(), Factory()
    stage = Stage(Pool(capacity, factory, reset, backend=backend), reset, factory)
    prepare(stage)
    counter = Injector(level, target=0)  # never fires
    with counter.active():
        try:
            operation(stage)
        except (ReleasedError, ValueError):
            pass
        counted = counter.count
        audit(stage)
    return counted


def _sweep(
    backend: str,
    level: Level,
    prepare: Callable[[Stage], None],
    operation: Callable[[Stage], None],
    outcome: Outcome,
    capacity: int,
    limit: int,
) -> Outcome:
    _dry_run(backend, level, prepare, operation, capacity)  # see EXACT_OPCODE_EVENTS
    outcome.dry_run_points = _dry_run(backend, level, prepare, operation, capacity)
    for target in range(1, limit + 1):
        reset, factory = Reset(), Factory()
        stage = Stage(Pool(capacity, factory, reset, backend=backend), reset, factory)
        prepare(stage)
        injector = Injector(level, target)
        try:
            with injector.active():
                operation(stage)
        except KeyboardInterrupt:
            pass
        except (ReleasedError, ValueError):
            pass  # a failing reset or factory reaching its caller, as it should
        problem = audit(stage)
        if injector.fired is None:  # the operation ran to its end: every point was tried
            if problem is not None:
                outcome.lossy.append(f"without injection: {problem}")
            return outcome
        outcome.points += 1
        if problem is not None:
            outcome.lossy.append(f"{injector.fired}: {problem}")
    raise AssertionError(f"the operation still had trace events after {limit} runs")
