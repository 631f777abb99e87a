"""Instruments for the conformance suite: they observe a pool from outside.

Nothing here trusts the code under test. ``Factory`` and ``Reset`` record what the pool
did to values; ``drain`` counts free slots by acquiring them rather than asking
``available()``; ``Ledger`` tracks which values are lent out under a lock of its own.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from nexus_pool import BackendUnavailable, Pool, Pooled
from nexus_pool._backends import BACKENDS, backend_class
from nexus_pool._facade import native_unavailable

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _native_serves(name: str) -> bool:
    """Whether the native facade serves backend ``name`` (its class says so when it loads)."""
    try:
        return backend_class(name).native
    except BackendUnavailable:
        return name == "atomic"  # cannot ask: listed anyway, so CI fails on it


def require_backend(name: str) -> str:
    """``name`` if that backend loads here; otherwise fail (in CI) or skip the test."""
    try:
        backend_class(name)
    except BackendUnavailable as exc:
        if IN_CI:
            pytest.fail(f"backend {name!r} is registered but unavailable in CI: {exc}")
        pytest.skip(f"backend {name!r} unavailable here: {exc}")
    return name


def require_native_facade() -> None:
    """Fail (in CI) or skip unless the native facade loads here."""
    why = native_unavailable()
    if why:
        if IN_CI:
            pytest.fail(f"the native facade is unavailable in CI: {why}")
        pytest.skip(f"the native facade is unavailable here: {why}")


FACADE_BACKEND_PAIRS: list[tuple[str, str]] = [
    *(("native", name) for name in BACKENDS if _native_serves(name)),
    *(("pure", name) for name in BACKENDS),
]
"""Every facade x backend pair that exists: the conformance suite runs on each."""


class Item:
    """A pooled value with an identity (``serial``), a payload and a reset count."""

    __slots__ = ("__weakref__", "payload", "resets", "serial")

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.payload: object = None
        self.resets = 0

    def __repr__(self) -> str:
        return f"Item({self.serial})"


class Factory:
    """Makes ``Item``s with serials 0, 1, 2, ...; can be told to raise on some calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.made: list[Item] = []
        self.failures_left = 0
        self._lock = threading.RLock()  # reentrant: reset may run inside a finalizer

    def __call__(self) -> Item:
        with self._lock:
            if self.failures_left:
                self.failures_left -= 1
                raise FactoryFailed("factory failed on purpose")
            item = Item(self.calls)
            self.calls += 1
            self.made.append(item)
            return item


class FactoryFailed(Exception):
    pass


class ResetFailed(Exception):
    pass


class Reset:
    """Clears ``Item.payload``; records every call as (serial, thread ident)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.fail_serials: set[int] = set()
        self._lock = threading.RLock()  # reentrant: reset may run inside a finalizer

    def __call__(self, item: Item) -> None:
        with self._lock:
            self.calls.append((item.serial, threading.get_ident()))
        item.resets += 1
        if item.serial in self.fail_serials:
            item.payload = "half reset"
            raise ResetFailed(f"reset of {item!r} failed on purpose")
        item.payload = None

    def count(self, serial: int) -> int:
        with self._lock:
            return sum(1 for s, _ in self.calls if s == serial)


def make_pool(backend: str, capacity: int = 4) -> tuple[Pool[Item], Factory, Reset]:
    factory = Factory()
    reset = Reset()
    return Pool(capacity, factory, reset, backend=backend), factory, reset


def drain(pool: Pool[T]) -> list[Pooled[T]]:
    """Acquire every free slot (``try_acquire`` until ``None``); return the guards."""
    guards = []
    while (guard := pool.try_acquire()) is not None:
        guards.append(guard)
        if len(guards) > pool.capacity:
            raise AssertionError(f"try_acquire gave more than capacity={pool.capacity} guards")
    return guards


def assert_all_free(pool: Pool[T]) -> None:
    """Every slot is free, each holding a distinct value: checked by taking them all."""
    assert pool.available() == pool.capacity
    guards = drain(pool)
    values = [g.value for g in guards]
    assert len(guards) == pool.capacity, f"{pool.capacity - len(guards)} slot(s) lost"
    assert len({id(v) for v in values}) == pool.capacity, "a value sits in two slots"
    for guard in guards:
        guard.release()
    assert pool.available() == pool.capacity


class Ledger:
    """Which values are lent out; fails loudly if one is lent twice at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: set[int] = set()
        self.violations: list[str] = []
        self.lends = 0

    def lend(self, value: object) -> None:
        with self._lock:
            self.lends += 1
            if id(value) in self._out:
                self.violations.append(f"{value!r} handed out while still lent")
            self._out.add(id(value))

    def give_back(self, value: object) -> None:
        with self._lock:
            self._out.discard(id(value))


WAIT = 30.0
"""Seconds any single wait in a test may take before it counts as a hang."""


def barrier(parties: int) -> threading.Barrier:
    """A barrier that breaks (BrokenBarrierError) instead of hanging when a party is lost."""
    return threading.Barrier(parties, timeout=WAIT)


def spawn(target: Callable[..., object], *args: object, name: str | None = None) -> threading.Thread:
    """A daemon thread: one stuck by a bug can fail its test but never hang the run."""
    return threading.Thread(target=target, args=args, name=name, daemon=True)


@contextmanager
def running(*threads: threading.Thread) -> Iterator[None]:
    """Start the threads; join them on exit; fail if one hangs or dies of an exception."""
    errors: list[BaseException] = []
    for thread in threads:
        thread.run = _recording(thread.run, errors)  # type: ignore[method-assign]
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.join(timeout=WAIT)
            assert not thread.is_alive(), f"{thread.name} did not finish within {WAIT} s"
    if errors:
        raise AssertionError(f"{len(errors)} thread(s) failed, first: {errors[0]!r}") from errors[0]


def on_thread(action: Callable[[], object], name: str) -> BaseException | None:
    """Run ``action`` on a new thread named ``name``; return what it raised, if anything."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            raised.append(exc)

    with running(spawn(run, name=name)):
        pass
    return raised[0] if raised else None


def _recording(run: Callable[[], None], errors: list[BaseException]) -> Callable[[], None]:
    def recorded() -> None:
        try:
            run()
        except BaseException as exc:
            errors.append(exc)

    return recorded


@contextmanager
def collecting() -> Iterator[None]:
    """Around code that drops or collects unreleased guards.

    Returning a slot by garbage collection is allowed; a checking backend may also warn
    about it (its own tests check that), so ResourceWarnings are tolerated here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


@contextmanager
def switching_often() -> Iterator[None]:
    """Make a GIL build switch threads every microsecond, so races show up.

    With the default 5 ms interval a thread almost never loses the GIL inside a short
    check-then-act sequence; the free-threaded build needs no help.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
