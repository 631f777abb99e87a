"""The pools the benchmark compares, each written the way its users write it.

Every contender pools ``capacity`` values from ``factory()`` and runs ``reset`` on
release. They share one shape, so that a scenario drives them all with the same loop:

* ``try_acquire()`` returns a *handle* or ``None`` at once;
* ``acquire()`` blocks until a handle is free (a pool that cannot wait raises);
* ``release(handle)`` resets and returns it;
* ``value(handle)`` is the buffer behind a handle.

For nexus_pool the handle is the ``Pooled`` guard and ``release`` is
``Pooled.release``, so calling it costs what ``guard.release()`` costs. The other
pools hand out the value itself, like the code they stand for.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import Pool, Pooled, available_backends, local
from .._backends import backend_class
from .._facade import PURE_ENV_VAR, default_backend, native_unavailable
from .._shared import shared_unavailable
from ._processes import FUTEX, HANDROLLED, MP_QUEUE, futex_unavailable, iceoryx2_unavailable

__all__ = ["SHARED_BY_QUEUE", "Contender", "contenders", "skipped_contenders"]

SHARED_BY_QUEUE = "nexus_pool.shared + mp.Queue"
"""The shared pool with its handles sent through a multiprocessing.Queue."""

Factory = Callable[[], bytearray]
Reset = Callable[[bytearray], object]


@dataclass(frozen=True)
class Contender:
    """A named way to build a pool, plus what the report should say about it."""

    name: str
    make: Callable[[int, Factory, Reset], Any]
    blocks: bool = True  # has an acquire() that waits for a release
    guards: bool = False  # hands out context-manager guards (nexus_pool)
    threads: bool = True  # may be released from other threads (not the local pools)
    note: str = ""
    fresh: str = ""  # not a pool: a new bytes per chunk through a "bounded" or "unbounded" queue
    buffers: str = ""  # nexus_pool.BufferPool on this backend: the file scenarios only
    process: str = ""  # a process fan-out (_processes.KINDS): the process scenarios only
    track: str = ""  # nexus_pool with this track= (not the default): the same-thread cycles only


def _pool_on(facade: str, capacity: int, factory: Factory, reset: Reset, backend: str, track: Any) -> Pool[bytearray]:
    """A pool on the named facade, chosen as a user chooses it: with ``NEXUS_POOL_PURE``."""
    saved = os.environ.pop(PURE_ENV_VAR, None)
    try:
        if facade == "pure":
            os.environ[PURE_ENV_VAR] = "1"
        pool = Pool(capacity, factory, reset, backend=backend, track=track)
    finally:
        os.environ.pop(PURE_ENV_VAR, None)
        if saved is not None:
            os.environ[PURE_ENV_VAR] = saved
    if pool.facade != facade:
        raise ValueError(f"the {facade} facade does not serve backend {backend!r} here")
    return pool


def _the_handle(handle: bytearray) -> bytearray:
    """The pools that hand out the value itself."""
    return handle


class _NexusPool:
    """nexus_pool itself, on one facade: guards as handles."""

    def __init__(
        self, facade: str, backend: str, capacity: int, factory: Factory, reset: Reset, track: str | None = None
    ) -> None:
        self.pool = _pool_on(facade, capacity, factory, reset, backend, track)
        self.try_acquire = self.pool.try_acquire
        self.acquire = self.pool.acquire
        probe = self.pool.acquire()
        self.release = type(probe).release  # the facade's own, unbound
        probe.release()

    @staticmethod
    def value(guard: Pooled[bytearray]) -> bytearray:
        return guard.value


class _LocalNexusPool:
    """nexus_pool.local, for one thread only: guards as handles."""

    def __init__(self, kind: str, capacity: int, factory: Factory, reset: Reset) -> None:
        # backend="locked" keeps a NEXUS_POOL_BACKEND=debug environment from checking threads.
        if kind == "BoundedPool":
            self.pool: local.Pool[bytearray] | local.BoundedPool[bytearray] = local.BoundedPool(
                capacity, factory, reset, backend="locked"
            )
        else:
            self.pool = local.Pool(factory, reset, backend="locked")
            self.pool.put(factory())
        self.try_acquire = self.pool.try_acquire
        self.acquire = self.pool.acquire
        probe = self.pool.acquire()
        self.release = type(probe).release
        probe.release()

    @staticmethod
    def value(guard: Pooled[bytearray]) -> bytearray:
        return guard.value


class _LifoQueuePool:
    """``queue.LifoQueue`` as a pool: urllib3's connection-pool pattern."""

    def __init__(self, capacity: int, factory: Factory, reset: Reset) -> None:
        self._queue: queue.LifoQueue[bytearray] = queue.LifoQueue(capacity)
        for _ in range(capacity):
            self._queue.put(factory())
        self._reset = reset

    def try_acquire(self) -> bytearray | None:
        try:
            return self._queue.get(block=False)
        except queue.Empty:
            return None

    def acquire(self) -> bytearray:
        return self._queue.get()

    def release(self, value: bytearray) -> None:
        self._reset(value)
        self._queue.put(value, block=False)

    value = staticmethod(_the_handle)


class _SimpleQueuePool:
    """``queue.SimpleQueue`` (C, FIFO) as a pool."""

    def __init__(self, capacity: int, factory: Factory, reset: Reset) -> None:
        self._queue: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(capacity):
            self._queue.put(factory())
        self._reset = reset

    def try_acquire(self) -> bytearray | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def acquire(self) -> bytearray:
        return self._queue.get()

    def release(self, value: bytearray) -> None:
        self._reset(value)
        self._queue.put(value)

    value = staticmethod(_the_handle)


class _DequePool:
    """A ``collections.deque`` free list: fast, but it cannot wait for a release."""

    def __init__(self, capacity: int, factory: Factory, reset: Reset) -> None:
        self._free = deque(factory() for _ in range(capacity))
        self._reset = reset

    def try_acquire(self) -> bytearray | None:
        try:
            return self._free.pop()
        except IndexError:
            return None

    def acquire(self) -> bytearray:
        raise NotImplementedError("a bare deque cannot wait for a release")

    def release(self, value: bytearray) -> None:
        self._reset(value)
        self._free.append(value)

    value = staticmethod(_the_handle)


class _LockListPool:
    """A list guarded by a lock, with a condition variable to wait on."""

    def __init__(self, capacity: int, factory: Factory, reset: Reset) -> None:
        self._free = [factory() for _ in range(capacity)]
        self._changed = threading.Condition(threading.Lock())
        self._reset = reset

    def try_acquire(self) -> bytearray | None:
        with self._changed:
            return self._free.pop() if self._free else None

    def acquire(self) -> bytearray:
        with self._changed:
            while not self._free:
                self._changed.wait()
            return self._free.pop()

    def release(self, value: bytearray) -> None:
        self._reset(value)
        with self._changed:
            self._free.append(value)
            self._changed.notify()

    value = staticmethod(_the_handle)


class _PondPool:
    """pondpond (``pip install pondpond``), the most used object pool on PyPI.

    Its ``borrow`` never waits: when the pool is empty it makes a new object, and
    ``recycle`` drops objects beyond the pool's size. Eviction is turned off, its
    fastest configuration.
    """

    def __init__(self, capacity: int, factory: Factory, reset: Reset) -> None:
        from pond import Pond, PooledObject, PooledObjectFactory

        class BufferFactory(PooledObjectFactory):  # type: ignore[misc, unused-ignore]  # Any without pondpond
            def createInstance(self) -> PooledObject:  # pondpond's name
                return PooledObject(factory())

            def destroy(self, pooled_object: PooledObject) -> None:
                del pooled_object

            def reset(self, pooled_object: PooledObject, **kwargs: Any) -> PooledObject:
                reset(pooled_object.keeped_object)
                return pooled_object

            def validate(self, pooled_object: PooledObject) -> bool:
                return True

        self._pond = Pond(borrowed_timeout=3600, time_between_eviction_runs=-1)
        self._name = "buffers"
        self._pond.register(BufferFactory(pooled_maxsize=capacity), name=self._name)

    def try_acquire(self) -> Any:
        return self._pond.borrow(name=self._name)

    acquire = try_acquire

    def release(self, pooled_object: Any) -> None:
        self._pond.recycle(pooled_object, name=self._name)

    @staticmethod
    def value(pooled_object: Any) -> bytearray:
        return pooled_object.keeped_object  # type: ignore[no-any-return]


def _pondpond_installed() -> bool:
    try:
        import pond  # noqa: F401
    except ImportError:
        return False
    return True


def skipped_contenders() -> dict[str, str]:
    """The contenders this machine cannot run, and why (the report names them)."""
    reasons = {
        "nexus_pool.shared": shared_unavailable(),
        FUTEX: futex_unavailable(),
        "iceoryx2": iceoryx2_unavailable(),
    }
    return {name: why for name, why in reasons.items() if why}


def _not_a_pool(capacity: int, factory: Factory, reset: Reset) -> Any:
    raise AssertionError("fresh-bytes, BufferPool and process contenders only run their own scenarios")


def facade_backend_pairs() -> list[tuple[str, str]]:
    """Every facade x backend pair that works here, native first."""
    pairs = []
    for backend in available_backends():
        if not native_unavailable() and backend_class(backend).native:
            pairs.append(("native", backend))
    return pairs + [("pure", backend) for backend in available_backends()]


def contenders() -> list[Contender]:
    """Every contender available here: nexus_pool's backends first, then the others."""
    pairs = facade_backend_pairs()
    found = [
        Contender(f"nexus_pool {facade}[{backend}]", partial(_NexusPool, facade, backend), guards=True)
        for facade, backend in pairs
    ]
    # What recording acquire sites costs: the default (track="sampled") beside "off" and
    # "every", on the fastest pair, in the same-thread cycles.
    facade, backend = pairs[0]
    found += [
        Contender(
            f"nexus_pool track={track}",
            partial(_NexusPool, facade, backend, track=track),
            guards=True,
            track=track,
            note=f'{facade}[{backend}] with track="{track}" (the default samples)',
        )
        for track in ("off", "every")
    ]
    found += [
        Contender(
            f"nexus_pool local.{kind}",
            partial(_LocalNexusPool, kind),
            blocks=False,  # its acquire() never waits: only its own thread releases
            threads=False,
            note="one thread acquires and releases",
        )
        for kind in ("BoundedPool", "Pool")
    ]
    found += [
        Contender("queue.LifoQueue", _LifoQueuePool),
        Contender("queue.SimpleQueue", _SimpleQueuePool, note="FIFO"),
        Contender("collections.deque", _DequePool, blocks=False, note="cannot wait for a release"),
        Contender("lock + list", _LockListPool),
    ]
    found.append(
        Contender(
            "nexus_pool BufferPool",
            _not_a_pool,
            buffers=default_backend(),
            note="buffer.readinto(file), buffer.filled: no length carried",
        )
    )
    found += [
        Contender("fresh bytes, bounded queue", _not_a_pool, fresh="bounded", note="f.read() per chunk"),
        Contender("fresh bytes, unbounded queue", _not_a_pool, fresh="unbounded", note="f.read() per chunk"),
    ]
    if not shared_unavailable():
        found += [
            Contender(
                "nexus_pool.shared",
                _not_a_pool,
                process="shared",
                note="leases through the block's own work queue; released straight back",
            ),
            Contender(SHARED_BY_QUEUE, _not_a_pool, process="shared-handles", note="handles out, no return queue"),
        ]
    found += [
        Contender(MP_QUEUE, _not_a_pool, process="queue", note="each chunk pickled"),
        Contender("multiprocessing.Pool.imap", _not_a_pool, process="imap", note="chunksize=1"),
        Contender(HANDROLLED, _not_a_pool, process="handrolled", note="slot indices out, back by a queue"),
    ]
    if not futex_unavailable():
        found.append(Contender(FUTEX, _not_a_pool, process="futex", note="one shared word, FUTEX_WAIT/WAKE by ctypes"))
    if not iceoryx2_unavailable():
        found.append(
            Contender(
                "iceoryx2",
                _not_a_pool,
                process="iceoryx2",
                note="publish-subscribe, loaned slices, woken by its event service; broadcasts: 1 worker only",
            )
        )
    if _pondpond_installed():
        found.append(Contender("pondpond", _PondPool, note="never waits: borrow() makes a new object when empty"))
    return found
