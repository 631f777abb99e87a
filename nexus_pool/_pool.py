"""The typed facade: :class:`Pool` hands out :class:`Pooled` guards; guards give slots back.

Everything users see lives here and is the same for every backend; a backend (see
``_backends/_contract.py``) only keeps track of which slot indices are free.
"""

from __future__ import annotations

import math
import sysconfig
from collections.abc import Callable
from time import monotonic
from types import TracebackType
from typing import Any, Final, Generic, NoReturn, SupportsIndex, TypeVar, final

from ._backends import select
from ._backends._contract import EMPTY, FreeList, LeaseWatcher
from ._errors import PoolExhausted, ReleasedError

__all__ = ["Pool", "Pooled"]

T = TypeVar("T")

_STALE: Final[Any] = object()
"""Stands in for the value of a slot whose ``reset`` and replacement ``factory()`` both
failed; the slot is free, and its next acquisition calls ``factory()`` again."""

_FAST_TIMEOUT_TYPES: Final = (int, float)

_WAIT_SLICE: Final = 0.005 if sysconfig.get_config_var("Py_GIL_DISABLED") else None
"""How long a blocked acquirer sleeps at a time on free-threaded builds (seconds).

There, a guard dropped by another thread without ``release()`` is often finalized by the
thread that created it, the acquirer (biased reference counting hands the last decref to
the object's owner), and only when that thread next runs bytecode. An acquirer that slept
until a release would wait for ever for such a guard, so it wakes up this often to let
them come home. GIL builds finalize on the dropping thread and sleep until woken.
"""


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(note)


def _check_timeout(timeout: object) -> float | None:
    """``timeout`` as seconds (``None``: no limit), or a TypeError/ValueError naming it."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)


@final
class _Home(Generic[T]):
    """What a guard needs to give its slot back, even after the :class:`Pool` is gone."""

    __slots__ = ("factory", "freelist", "push", "reset", "tickets", "values", "watcher")

    def __init__(
        self,
        values: list[T],
        factory: Callable[[], T],
        reset: Callable[[T], object] | None,
        freelist: FreeList,
    ) -> None:
        self.values = values
        self.factory = factory
        self.reset = reset
        self.freelist = freelist
        self.push = freelist.push
        self.tickets = freelist.tickets
        self.watcher: LeaseWatcher | None = freelist.watcher

    def give_back(self, slot: int) -> None:
        ticket = self.tickets[slot]
        status = self.push(ticket)
        if status:
            self.freelist.settle(ticket, status)

    def replace_after_failed_reset(self, slot: int, reset_error: BaseException) -> None:
        """``reset`` raised: give the slot back with a fresh value, never the half-reset one."""
        try:
            self.values[slot] = self.factory()
        except BaseException as factory_error:
            self.values[slot] = _STALE
            _add_note(
                reset_error,
                f"factory() also raised {factory_error!r} while replacing the value; "
                "it will be called again when this slot is next acquired",
            )
        finally:
            self.give_back(slot)


@final
class Pooled(Generic[T]):
    """A lease on one pooled value; give it back with :meth:`release` or a ``with`` block.

    Each acquisition makes a new guard, so a guard that was released can never reach
    the value again, even after its slot has been leased to somebody else. A guard that
    is garbage collected while it still holds its value returns the slot itself.

    Guards come from :meth:`Pool.acquire` and :meth:`Pool.try_acquire`; one made by
    calling ``Pooled()`` directly holds nothing.
    """

    # _value is present exactly while the lease is held: deleting it is the release
    # claim, which one thread wins (a slot delete is a single atomic step, under the
    # GIL and under the object's lock on free-threaded builds).
    # _slot is the slot index while leased and -1 once released.
    __slots__ = ("_home", "_released_at", "_slot", "_value")

    _value: T
    _slot: int
    _home: _Home[T]
    _released_at: str

    @property
    def value(self) -> T:
        """The pooled value; :class:`ReleasedError` once the guard has been released."""
        try:
            return self._value
        except AttributeError:
            raise self._released_error() from None

    def release(self) -> None:
        """Reset the value on this thread and return its slot to the pool.

        Raises :class:`ReleasedError` if the guard was already released. If ``reset``
        raises, the slot still goes back (with a fresh ``factory()`` value) and the
        exception propagates from here.
        """
        try:
            value = self._value
            del self._value
        except AttributeError:
            raise self._released_error() from None
        slot = self._slot
        self._slot = -1
        home = self._home
        if home.watcher is not None:
            self._released_at = home.watcher.released(slot)
        reset = home.reset
        if reset is not None:
            try:
                reset(value)
            except BaseException as reset_error:
                home.replace_after_failed_reset(slot, reset_error)
                raise
        home.give_back(slot)

    def __enter__(self) -> T:
        return self.value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            slot = self._slot
        except AttributeError:
            return  # made by hand, never leased
        if slot < 0:
            return
        watcher = self._home.watcher
        if watcher is None:
            self.release()
            return
        try:
            watcher.collected(slot, self)
        finally:
            self.release()

    def _released_error(self) -> ReleasedError:
        try:
            self._home  # noqa: B018 - only leased guards have a home
        except AttributeError:
            return ReleasedError("this Pooled guard was not acquired from a pool; it holds no value")
        message = "this Pooled guard was already released; acquire again to get a value"
        where = getattr(self, "_released_at", None)
        if where is not None:
            message += f" (it was first released at {where})"
        return ReleasedError(message)

    def __repr__(self) -> str:
        try:
            return f"<Pooled slot={self._slot} value={self._value!r}>"
        except AttributeError:
            return "<Pooled (released)>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pooled guards cannot be copied or pickled: a copy would be a second lease on one slot")


def _check_capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    return capacity


@final
class Pool(Generic[T]):
    """A fixed set of ``capacity`` values, made up front by ``factory()``.

    One thread acquires (``try_acquire``/``acquire``); any thread releases the guards it
    is given. ``reset(value)``, if given, runs on the releasing thread before the slot
    can be acquired again. ``backend`` names the free-list engine (see
    :func:`nexus_pool.available_backends`); by default the ``NEXUS_POOL_BACKEND``
    environment variable, else the fastest backend for this interpreter.
    """

    __slots__ = ("__weakref__", "_freelist", "_home", "_pop", "_values")

    def __init__(
        self,
        capacity: int,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
    ) -> None:
        capacity = _check_capacity(capacity)
        if not callable(factory):
            raise TypeError(f"factory must be callable, not {type(factory).__name__}")
        if reset is not None and not callable(reset):
            raise TypeError(f"reset must be callable or None, not {type(reset).__name__}")
        freelist_class = select(backend)
        if capacity > freelist_class.max_capacity:
            raise ValueError(
                f"capacity must be <= {freelist_class.max_capacity} for backend "
                f"{freelist_class.name!r}, got {capacity}"
            )
        values = [factory() for _ in range(capacity)]
        freelist = freelist_class(capacity)
        self._freelist = freelist
        self._pop = freelist.pop
        self._values = values
        self._home = _Home(values, factory, reset, freelist)

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` at once when every slot is out."""
        slot = self._pop()
        if slot < 0:
            return None
        return self._lease(slot)

    def acquire(self, timeout: float | None = None) -> Pooled[T]:
        """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises :class:`PoolExhausted` when time runs out; ``timeout=0`` never waits.
        """
        if timeout is not None and not (timeout.__class__ in _FAST_TIMEOUT_TYPES and timeout >= 0):
            _check_timeout(timeout)
        slot = self._pop()
        if slot < 0:
            slot = self._wait_for_slot(timeout)
        return self._lease(slot)

    def _lease(self, slot: int) -> Pooled[T]:
        value = self._values[slot]
        if value is _STALE:
            value = self._remake(slot)
        guard: Pooled[T] = Pooled()
        guard._value = value
        guard._slot = slot
        guard._home = self._home
        return guard

    def _wait_for_slot(self, timeout: float | None) -> int:
        seconds = _check_timeout(timeout)
        if seconds != 0:
            deadline = None if seconds is None else monotonic() + seconds
            while True:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    break
                if _WAIT_SLICE is not None:
                    remaining = _WAIT_SLICE if remaining is None else min(remaining, _WAIT_SLICE)
                slot = self._freelist.pop_wait(remaining)
                if slot >= 0:
                    return slot
        raise PoolExhausted(
            f"all {len(self._values)} slots are in use"
            + ("" if seconds == 0 else f" and none came back within {timeout} s")
        )

    def _remake(self, slot: int) -> T:
        """The slot's value was lost to a failed reset; make a new one on this thread."""
        try:
            value = self._home.factory()
        except BaseException:
            self._home.give_back(slot)
            raise
        self._values[slot] = value
        return value

    @property
    def capacity(self) -> int:
        """The number of slots (and of values), fixed at construction."""
        return len(self._values)

    def available(self) -> int:
        """How many slots are free now (a snapshot while other threads release)."""
        return self._freelist.available()

    @property
    def backend(self) -> str:
        """The name of the backend in use."""
        return self._freelist.name

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner.

        Checked by the ``debug`` backend (only the owner may hand off); a no-op elsewhere.
        """
        self._freelist.handoff()

    def __repr__(self) -> str:
        return (
            f"<nexus_pool.Pool capacity={self.capacity} available={self.available()} "
            f"backend={self.backend!r}>"
        )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pool objects cannot be copied or pickled: they own their values")
