"""The native facade's own promises: which pools it serves, and no leaks in C.

The conformance suite already runs on it (the ``native-atomic`` pair); these check what
only C code can get wrong: reference counts, memory over millions of cycles, and that
it is the one in use where it should be.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import sysconfig
import textwrap
import tracemalloc
import weakref
from collections.abc import Callable

import pytest

import nexus_pool
from nexus_pool import Pool, Pooled, ReleasedError, local

from ..conformance.support import IN_CI
from ..implementations import IMPLEMENTATIONS

CYCLES = int(os.environ.get("NEXUS_POOL_LEAK_CYCLES", "10000000"))
SANITIZED = "libasan" in os.environ.get("LD_PRELOAD", "")
FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


pytestmark = pytest.mark.native_only


class Value:
    """A pooled value whose life can be watched (bytearray takes no weak references)."""

    __slots__ = ("__weakref__", "data", "owner")

    def __init__(self) -> None:
        self.data = bytearray(8)
        self.owner: object = None


def test_atomic_pools_are_native_and_the_others_pure() -> None:
    native = Pool(2, Value, backend="atomic")
    assert native.facade == "native"
    assert type(native).__module__ == "nexus_pool._native"
    assert isinstance(native, Pool)
    guard = native.acquire()
    assert isinstance(guard, Pooled)
    assert type(guard).__module__ == "nexus_pool._native"
    guard.release()
    for backend in ("locked", "debug"):
        pure = Pool(2, Value, backend=backend)
        assert pure.facade == "pure"
        assert isinstance(pure, Pool)
    assert Pool(2, Value).facade == "native", "the default is the native facade where it loads"


def test_the_environment_switch_makes_pools_pure() -> None:
    with IMPLEMENTATIONS["pure"].selected():
        pool = Pool(2, Value, backend="atomic")
    assert pool.facade == "pure"
    assert pool.backend == "atomic"


def test_the_report_names_the_facade() -> None:
    result = subprocess.run([sys.executable, "-m", "nexus_pool"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "nexus_pool._native:" in result.stdout
    assert "MISSING" not in result.stdout or not IN_CI


def test_references_come_back_to_where_they_were() -> None:
    """No reference to a value, a pool or the guard type is leaked by any path in C."""
    values = [Value() for _ in range(3)]
    handed = iter(values)
    pool = Pool(3, lambda: next(handed), lambda value: None, backend="atomic")
    guard_type = type(pool.acquire(0))  # that guard is dropped at once

    def counts() -> list[int]:
        gc.collect()
        return [*(sys.getrefcount(value) for value in values), sys.getrefcount(pool), sys.getrefcount(guard_type)]

    before = counts()
    for _ in range(1000):
        guard = pool.acquire()
        guard.value.data[0] = 1
        guard.release()
        with pool.acquire(0):
            pass
        pool.try_acquire()  # dropped at once
        guards = [pool.acquire(0) for _ in range(3)]
        assert pool.try_acquire() is None
        try:
            pool.acquire(0)
        except nexus_pool.PoolExhausted:
            pass
        for guard in guards:
            guard.release()
        try:
            guards[0].release()
        except ReleasedError:
            pass
        del guards, guard
    assert counts() == before


def test_local_pools_bring_references_back_to_where_they_were() -> None:
    """The native local pools: every C path, references counted before and after."""
    values = [Value() for _ in range(3)]
    handed = iter(values)
    bounded = local.BoundedPool(3, lambda: next(handed), lambda value: None)
    growable = local.Pool(Value, lambda value: None)
    assert type(bounded).__module__ == type(growable).__module__ == "nexus_pool._native"
    for value in values:
        growable.put(value)

    def counts() -> list[int]:
        gc.collect()
        return [*(sys.getrefcount(value) for value in values), sys.getrefcount(bounded), sys.getrefcount(growable)]

    before = counts()
    for _ in range(1000):
        for pool in (bounded, growable):
            guard = pool.acquire()
            guard.release()
            with pool.acquire():
                pass
            pool.try_acquire()  # dropped at once
            guards = [pool.acquire() for _ in range(3)]
            try:
                guards[0].release()
                guards[0].release()
            except ReleasedError:
                pass
            del guards, guard, pool
        assert bounded.try_acquire() is not None
        extra = growable.take()
        growable.put(extra)
        del extra
    assert counts() == before
    assert growable.available() == 3, "three were enough: the pool never grew"


@pytest.mark.slow
def test_local_pools_stay_flat_over_a_million_cycles() -> None:
    pool: local.BoundedPool[bytearray] = local.BoundedPool(4, lambda: bytearray(64), bytearray.clear)
    growable: local.Pool[bytearray] = local.Pool(bytearray)
    gc.collect()
    objects_before = len(gc.get_objects())
    tracemalloc.start()
    try:
        snapshot_before = tracemalloc.take_snapshot()
        for _ in range(1_000_000 // 4):
            pool.acquire().release()
            with growable.acquire():
                pass
            pool.try_acquire()
            growable.try_acquire()
        gc.collect()
        snapshot_after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in snapshot_after.compare_to(snapshot_before, "filename"))
    assert grown < 64 * 1024
    assert len(gc.get_objects()) - objects_before < 100
    assert (pool.available(), growable.available()) == (4, 1)


def test_a_failing_reset_and_factory_leak_nothing() -> None:
    made: list[weakref.ref[Value]] = []
    failures = {"reset": 0, "factory": 0}

    def factory() -> Value:
        if failures["factory"]:
            failures["factory"] -= 1
            raise RuntimeError("factory failed on purpose")
        value = Value()
        made.append(weakref.ref(value))
        return value

    def reset(value: Value) -> None:
        if failures["reset"]:
            failures["reset"] -= 1
            raise ValueError("reset failed on purpose")

    pool = Pool(2, factory, reset, backend="atomic")
    for _ in range(200):
        failures.update(reset=1, factory=1)
        with pytest.raises(ValueError, match="failed on purpose"):
            pool.acquire().release()
        pool.acquire(0).release()  # the slot without value: its factory() runs now
    gc.collect()
    alive = [ref for ref in made if ref() is not None]
    assert len(alive) == 2, f"{len(alive) - 2} replaced value(s) still alive"


def test_a_dropped_pool_and_its_values_are_freed_at_once() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        pool = Pool(4, Value, backend="atomic")
        guard = pool.acquire()
        pool_ref = weakref.ref(pool)
        value_ref = weakref.ref(guard.value)
        del pool  # the guard keeps it
        assert pool_ref() is not None
        del guard
        assert pool_ref() is None
        assert value_ref() is None
    finally:
        if enabled:
            gc.enable()


def cycle_loop(pool: Pool[bytearray], cycles: int) -> None:
    acquire = pool.acquire
    try_acquire = pool.try_acquire
    for _ in range(cycles // 3):
        guard = try_acquire()
        assert guard is not None
        guard.release()
        with acquire(0):
            pass
        del guard
        try_acquire()  # dropped at once: the finalizer returns it


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_memory_stays_flat_over_millions_of_cycles(record_property: Callable[[str, object], None]) -> None:
    """tracemalloc, the GC's object count and RSS, before and after CYCLES acquisitions."""
    pool: Pool[bytearray] = Pool(8, lambda: bytearray(64), bytearray.clear, backend="atomic")
    cycle_loop(pool, 30_000)  # warm up: caches, freelists
    gc.collect()
    objects_before = len(gc.get_objects())
    rss_before = _rss_kib()
    tracemalloc.start()
    try:
        snapshot_before = tracemalloc.take_snapshot()
        cycle_loop(pool, CYCLES)
        gc.collect()
        snapshot_after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in snapshot_after.compare_to(snapshot_before, "filename"))
    objects_after = len(gc.get_objects())
    rss_after = _rss_kib()
    record_property(
        "stress",
        f"native leak check: {CYCLES:,} cycles, traced memory {grown:+,} B, "
        f"GC objects {objects_after - objects_before:+,}, RSS {rss_after - rss_before:+,} KiB",
    )
    assert grown < 64 * 1024
    assert objects_after - objects_before < 100
    if not SANITIZED:  # AddressSanitizer keeps freed memory in quarantine: RSS grows
        assert rss_after - rss_before < 16 * 1024
    assert pool.available() == 8


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="only free-threaded builds can run without the GIL")
def test_the_gil_stays_disabled_with_the_native_facade() -> None:
    code = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("error")  # a module that re-enables the GIL warns
        import nexus_pool
        pool = nexus_pool.Pool(4, bytearray, bytearray.clear)
        assert pool.facade == "native", pool.facade
        pool.acquire().release()
        assert not sys._is_gil_enabled(), "the GIL was re-enabled"
        print("gil disabled")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gil disabled"


def test_acquire_takes_its_timeout_by_position_or_keyword() -> None:
    pool = Pool(1, Value, backend="atomic")
    pool.acquire(timeout=0).release()
    pool.acquire(0.0).release()
    pool.acquire(None).release()
    with pytest.raises(TypeError, match="unexpected keyword argument 'deadline'"):
        pool.acquire(deadline=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="at most 1 argument"):
        pool.acquire(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="at most 3 arguments"):
        pool.acquire().release(1, 2, 3, 4)  # type: ignore[call-arg]
