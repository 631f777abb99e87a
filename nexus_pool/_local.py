"""The single-thread pools (``nexus_pool.local``): the Rust crate's ``local::Pool`` and
``local::BoundedPool``.

For a producer whose values never leave its thread, or whose consumers forward them
instead of releasing them: one thread acquires *and* releases, so the free list is a
plain list and nothing on the hot path locks. Guards are :class:`nexus_pool.Pooled`
guards with the same protocol (``value``, ``release()``, ``with``, ``ReleasedError``).

Every value is owned by one :class:`_Slot` that is always held, by the free list or by
one guard (the pure facade's rule, see ``_slots.py``): releasing moves the slot back
into the list, so released guards die without running Python code; a slot that dies
while lent (its guard was dropped, or an exception cut an acquisition short) gives its
value back from ``_Slot.__del__``. A slot refers to its pool weakly and a free slot's
pool keeps it, so a dropped pool frees its values by reference counting.

Under the ``debug`` backend (``backend="debug"`` or ``NEXUS_POOL_BACKEND=debug``) the
pools check that acquisitions and releases happen on the owning thread.

Two implementations, as for the thread-safe pool: the native one (C types in
``backends/nexus_pool_native.c``, the native facade's guards) serves unchecked pools
wherever the native facade loads and ``NEXUS_POOL_PURE`` is not set; this module's
classes are the readable reference and serve ``debug``. The public classes
(``_local_base.py``) call :func:`_make`, installed here, which picks one.
"""

from __future__ import annotations

import atexit
import sys
import warnings
import weakref
from collections.abc import Callable
from random import Random
from threading import get_ident
from time import monotonic
from typing import Any, Final, Generic, SupportsIndex, TypeVar, final

from ._backends.debug import DebugFreeList, _claim, _current_token
from ._errors import OwnershipError, PoolLeakWarning, ReleasedError
from ._facade import native_enabled, native_unavailable, select
from ._guard import COLLECTED_MESSAGE, RELEASED_MESSAGE, Pooled, value_repr
from ._holders import caller_site, exhausted
from ._local_base import EXHAUSTED_REASON, LOCAL_WHAT, BoundedPool, Pool, install_maker
from ._records import HowAcquired
from ._slots import add_note

__all__ = ["BoundedPool", "LocalPooled", "Pool"]

T = TypeVar("T")

_STALE: Final[Any] = object()
"""The value of a slot whose ``factory()`` failed: made again when next acquired."""


@final
class _Slot(Generic[T]):
    __slots__ = ("pool", "value")

    pool: weakref.ref[_LocalPool[T]]
    value: T

    def __del__(self) -> None:
        # Reached only for a slot dropped while lent: free slots die with their pool,
        # whose weak reference is dead by then. In a collected cycle the guard may live
        # on (its value refers to it, and the value is back in the pool): without its
        # value, this slot object can never be given back, or lent, again.
        pool = self.pool()
        if pool is not None:
            pool._lent.pop(id(self), None)
            pool._recycle(self.value)
            del self.value


@final
class _Ownership:
    """The ``debug`` check of a local pool: one owning thread acquires and releases."""

    __slots__ = ("_tracker",)

    def __init__(self) -> None:
        # The debug backend's ownership record, without its free list's slots.
        self._tracker: DebugFreeList[Any] = DebugFreeList([])

    def acquiring(self) -> None:
        self._tracker._take_ownership()

    def releasing(self) -> None:
        _epoch, owner = self._tracker._current_owner()
        if owner is not None and owner() is not _current_token():
            raise OwnershipError(
                f"thread {_claim()} tried to release a guard of a local pool owned by thread "
                f"{owner}. A local pool's guards are released on its own thread; to release "
                "from other threads, use nexus_pool.Pool."
            )

    def handoff(self) -> None:
        self._tracker.handoff()


@final
class LocalPooled(Pooled[T]):  # type: ignore[misc]  # the public class is final for users, not for its implementations
    """A local pool's guard (see :class:`nexus_pool.Pooled`)."""

    # _slot is present exactly while the guard holds its value; deleting it is the claim.
    __slots__ = ("_pool", "_slot")

    _pool: _LocalPool[T]
    _slot: _Slot[T]

    @property
    def value(self) -> T:
        try:
            slot = self._slot
        except AttributeError:
            raise ReleasedError(RELEASED_MESSAGE) from None
        try:
            return slot.value
        except AttributeError:  # the slot died and gave its value back (see _Slot.__del__)
            raise ReleasedError(COLLECTED_MESSAGE) from None

    def __enter__(self) -> T:
        return self.value

    def release(self, _exc_type: object = None, _exc: object = None, _traceback: object = None) -> None:
        pool = self._pool
        if pool._ownership is not None:
            pool._ownership.releasing()
        try:
            slot = self._slot
            del self._slot
        except AttributeError:
            raise ReleasedError(RELEASED_MESSAGE) from None
        if not hasattr(slot, "value"):
            return  # garbage collection gave the value back already: nothing left to do
        pool._lent.pop(id(slot), None)
        if pool._reset is not None:
            try:
                pool._reset(slot.value)
            except BaseException as reset_error:
                slot.value = _STALE  # first: never lend the half-reset value
                pool._replace(slot, reset_error)
                raise
        pool._free.append(slot)

    def __exit__(self, _exc_type: object, _exc: object, _traceback: object) -> None:
        self.release()

    def __repr__(self) -> str:
        try:
            value = self._slot.value
        except AttributeError:
            return "<Pooled (released)>"
        return f"<Pooled local value={value_repr(value)}>"


class _LocalPool(Generic[T]):
    """What both local pools share."""

    __slots__ = (
        "__weakref__",
        "_backend",
        "_countdown",
        "_factory",
        "_free",
        "_lent",
        "_ownership",
        "_random",
        "_ref",
        "_reset",
        "_sample_period",
    )

    _free: list[_Slot[T]]
    _lent: dict[int, tuple[float, int, tuple[str, int, str] | None]]
    """Who holds the lent values, by ``id()`` of their slot: when, which thread, where."""

    def _setup(
        self, factory: Callable[[], T], reset: Callable[[T], object] | None, backend: str | None, sample_period: int
    ) -> None:
        checked = select(backend).name == "debug"
        self._backend = "debug" if checked else "local"
        self._ownership = _Ownership() if checked else None
        self._factory = factory
        self._reset = reset
        self._free = []
        self._lent = {}
        self._ref = weakref.ref(self)
        self._sample_period = 1 if checked else sample_period
        self._random = Random(id(self))
        self._countdown = self._next_interval()
        if checked:
            _checked_pools.add(self)

    def _next_interval(self) -> int:
        period = self._sample_period
        return 1 if period <= 1 else self._random.randint(1, 2 * period - 1)

    def _holding(self) -> list[tuple[int | None, float, int, tuple[str, int, str] | None, HowAcquired]]:
        now = monotonic()
        return [(None, now - acquired, thread, site, "local") for acquired, thread, site in list(self._lent.values())]

    def _new_slot(self, value: T) -> _Slot[T]:
        slot: _Slot[T] = _Slot()
        slot.pool = self._ref
        slot.value = value
        return slot

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` when none is free (never calls ``factory``)."""
        if self._ownership is not None:
            self._ownership.acquiring()
        try:
            slot = self._free.pop()
        except IndexError:
            return None
        return self._lend(slot)

    def _lend(self, slot: _Slot[T]) -> LocalPooled[T]:
        if slot.value is _STALE:
            try:
                slot.value = self._factory()
            except BaseException:
                self._free.append(slot)
                raise
        guard: LocalPooled[T] = LocalPooled()
        guard._slot = slot
        guard._pool = self
        site = None
        if self._sample_period:
            self._countdown -= 1
            if self._countdown <= 0:
                self._countdown = self._next_interval()
                site = caller_site()
        self._lent[id(slot)] = (monotonic(), get_ident(), site)
        return guard

    def _replace(self, slot: _Slot[T], reset_error: BaseException) -> None:
        """``reset`` raised at a release: keep the slot with a fresh value (or none yet)."""
        try:
            slot.value = self._factory()
        except BaseException as factory_error:
            add_note(
                reset_error,
                f"factory() also raised {factory_error!r} while replacing the value; "
                "it will be called again when this value is next acquired",
            )
        self._free.append(slot)

    def _recycle(self, value: T) -> None:
        """A slot died while lent (its guard was dropped): reset its value and keep it."""
        if self._reset is not None and value is not _STALE:
            try:
                self._reset(value)
            except Exception as error:
                sys.unraisablehook(_unraisable(error, self))
                value = _STALE
        self._free.append(self._new_slot(value))

    def available(self) -> int:
        """How many values are free now."""
        return len(self._free)

    @property
    def backend(self) -> str:
        """``"debug"`` when threads are checked, else ``"local"`` (a plain list, no locks)."""
        return self._backend

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner (``debug`` only)."""
        if self._ownership is not None:
            self._ownership.handoff()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        kind = "BoundedPool" if hasattr(self, "_capacity") else "Pool"
        raise TypeError(f"{kind} objects cannot be copied or pickled: they own their values")


_checked_pools: weakref.WeakSet[_LocalPool[Any]] = weakref.WeakSet()
"""The local pools under ``debug``: at interpreter exit, their guards still out are reported."""


@atexit.register
def _warn_about_unreleased_guards() -> None:
    """A PoolLeakWarning for each guard of a ``debug`` local pool still out at exit,
    located at the line that acquired it (``debug`` records every site)."""
    now = monotonic()
    for pool in list(_checked_pools):
        for acquired, _thread, site in list(pool._lent.values()):
            filename, lineno, function = site or ("<unknown>", 0, "<unknown>")
            warnings.warn_explicit(
                f"a local pool's guard was never released: it has been held for {now - acquired:.1f} s "
                f"since it was acquired at {filename}:{lineno} in {function}",
                PoolLeakWarning,
                filename=filename,
                lineno=lineno,
            )


def _unraisable(error: BaseException, pool: object) -> Any:
    class Unraisable:
        exc_type = type(error)
        exc_value = error
        exc_traceback = error.__traceback__
        err_msg = "Exception ignored in reset() of a value returned by garbage collection"
        object = pool

    return Unraisable()


def _native_serves(backend: str | None) -> bool:
    """Whether a new local pool is native: unchecked (not debug), and the native facade is on."""
    # The sync pools' names and rules (argument, environment, default); a local pool
    # needs no free-list engine, so only "debug", which checks threads, changes it.
    return select(backend).name != "debug" and _native_types is not None and native_enabled()


@final
class _PurePool(_LocalPool[T], Pool[T]):  # type: ignore[misc]  # final for users, not for its implementations
    """The pure implementation of :class:`Pool`."""

    __slots__ = ()

    @classmethod
    def _create(
        cls, factory: Callable[[], T], reset: Callable[[T], object] | None, backend: str | None, sample_period: int
    ) -> _PurePool[T]:
        pool: _PurePool[T] = object.__new__(cls)
        pool._setup(factory, reset, backend, sample_period)
        return pool

    def acquire(self) -> Pooled[T]:
        if self._ownership is not None:
            self._ownership.acquiring()
        try:
            slot = self._free.pop()
        except IndexError:
            slot = self._new_slot(self._factory())
        return self._lend(slot)

    def take(self) -> T:
        if self._ownership is not None:
            self._ownership.acquiring()
        try:
            slot = self._free.pop()
        except IndexError:
            return self._factory()
        slot.pool = _dead_ref  # it leaves: its death returns nothing
        value = slot.value
        if value is _STALE:
            value = self._factory()
        return value

    def put(self, value: T) -> None:
        if self._ownership is not None:
            self._ownership.releasing()
        self._free.append(self._new_slot(value))

    def __repr__(self) -> str:
        return f"<nexus_pool.local.Pool available={len(self._free)} backend={self._backend!r}>"


@final
class _PureBoundedPool(_LocalPool[T], BoundedPool[T]):  # type: ignore[misc]  # final for users, not for its implementations
    """The pure implementation of :class:`BoundedPool`."""

    __slots__ = ("_capacity",)

    _capacity: int

    @classmethod
    def _create(
        cls,
        capacity: int,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None,
        backend: str | None,
        sample_period: int,
    ) -> _PureBoundedPool[T]:
        pool: _PureBoundedPool[T] = object.__new__(cls)
        pool._capacity = capacity
        pool._setup(factory, reset, backend, sample_period)
        values = [factory() for _ in range(capacity)]
        pool._free = [pool._new_slot(value) for value in reversed(values)]  # pops 0, 1, 2, ... first
        return pool

    @property
    def capacity(self) -> int:
        return self._capacity

    def acquire(self) -> Pooled[T]:
        guard = self.try_acquire()
        if guard is None:
            raise exhausted(self._capacity, self.holders(), what=LOCAL_WHAT, note=EXHAUSTED_REASON)
        return guard

    def __repr__(self) -> str:
        return (
            f"<nexus_pool.local.BoundedPool capacity={self._capacity} available={len(self._free)} "
            f"backend={self._backend!r}>"
        )


def _dead_reference() -> weakref.ref[Any]:
    target = _LocalPool[Any]()
    reference = weakref.ref(target)
    del target
    return reference


_dead_ref: Final = _dead_reference()
"""What a slot that leaves its pool (``take()``) points to: its death returns nothing."""


def _load_native() -> tuple[Any, Any] | None:
    """The native local pool types; None where the native facade cannot load (it then
    serves no pool either)."""
    if native_unavailable():
        return None
    from ._native import LocalBoundedPool, LocalPool  # the compiled module: known to load by now

    return LocalPool, LocalBoundedPool


_native_types: Final = _load_native()


def _make(
    capacity: int | None,
    factory: Callable[[], T],
    reset: Callable[[T], object] | None,
    backend: str | None,
    sample_period: int,
) -> _LocalPool[T] | Pool[T] | BoundedPool[T]:
    """A new local pool on the implementation that serves it (see ``_local_base.py``)."""
    if _native_serves(backend):
        assert _native_types is not None
        made: Pool[T] | BoundedPool[T] = _native_types[capacity is not None]._create(
            -1 if capacity is None else capacity, factory, reset, sample_period
        )
        return made
    if capacity is None:
        return _PurePool._create(factory, reset, backend, sample_period)
    return _PureBoundedPool._create(capacity, factory, reset, backend, sample_period)


install_maker(_make)
