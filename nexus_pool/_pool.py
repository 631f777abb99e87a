"""The typed facade: :class:`Pool` hands out :class:`Pooled` guards; guards give slots back.

Everything users see lives here and is the same for every backend; a backend (see
``_backends/_contract.py``) only keeps track of which slot indices are free.
"""

from __future__ import annotations

import functools
import math
import reprlib
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, SupportsIndex, TypeVar, final

from ._backends import select
from ._backends._contract import FreeList, LeaseWatcher
from ._errors import PoolExhausted, ReleasedError

__all__ = ["Pool", "Pooled"]

T = TypeVar("T")

_STALE: Final[Any] = object()
"""The value of a slot whose ``reset`` and replacement ``factory()`` both failed; the
slot is free, and its next acquisition calls ``factory()`` again."""

@functools.cache
def _wait_slice() -> float | None:
    """How long a blocked acquirer sleeps at a time: ``None`` (until woken) or seconds.

    On free-threaded builds, a guard dropped by another thread without ``release()`` is
    often finalized by the thread that created it, the acquirer (biased reference
    counting hands the last decref to the object's owner), and only when that thread
    next runs bytecode. An acquirer asleep until a release would wait for ever for such
    a guard, so there it wakes every 5 ms to let them come home. GIL builds finalize on
    the dropping thread. (Looked up on first use: sysconfig is slow to import.)
    """
    import sysconfig

    return 0.005 if sysconfig.get_config_var("Py_GIL_DISABLED") else None


class _ValueRepr(reprlib.Repr):
    """Bounded reprs of pooled values: a guard over a 64 KiB buffer prints one short line."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        return self._bytes_like(value)

    def repr_bytes(self, value: bytes, level: int) -> str:
        return self._bytes_like(value)

    def repr_memoryview(self, value: memoryview, level: int) -> str:
        return f"<memoryview of {value.nbytes} bytes>"

    def _bytes_like(self, value: bytes | bytearray) -> str:
        size = len(value)
        if size <= self.maxstring:
            return repr(value)
        shown = repr(bytes(value[: self.maxstring // 2]))
        return f"{type(value).__name__}({shown}...) of {size} bytes"


_value_repr = _ValueRepr().repr


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
    """What leases need to give their slot back, even after the :class:`Pool` is gone."""

    __slots__ = ("factory", "freelist", "leases", "push", "reset", "watcher")

    def __init__(
        self,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None,
        freelist: FreeList,
    ) -> None:
        self.factory = factory
        self.reset = reset
        self.freelist = freelist
        self.push = freelist.push
        self.watcher: LeaseWatcher | None = freelist.watcher
        # leases[slot] is the slot's lease while the slot is free, None while a guard
        # holds it: then the guard is the lease's only owner.
        self.leases: list[_Lease[T] | None] = []

    def make_free(self, lease: _Lease[T]) -> None:
        """Put the lease back and push its slot (``Pooled.release`` inlines this)."""
        self.leases[lease.slot] = lease
        status = self.push(lease.ticket)
        if status:
            self.freelist.settle(lease.ticket, status)

    def recover(self, lease: _Lease[T], reset_error: BaseException) -> None:
        """``reset`` raised: free the slot with a fresh value, never the half-reset one."""
        try:
            lease.value = self.factory()
        except BaseException as factory_error:
            lease.value = _STALE
            _add_note(
                reset_error,
                f"factory() also raised {factory_error!r} while replacing the value; "
                "it will be called again when this slot is next acquired",
            )
        finally:
            self.make_free(lease)


@final
class _Lease(Generic[T]):
    """A slot's record: its value, and what giving it back needs.

    It has exactly one owner at a time: the home's ``leases`` list while the slot is
    free, one guard while it is leased, or the local variables of the code moving it
    between the two. So a lease is finalized only when it is dropped *instead of* being
    handed on: its guard was collected without ``release()``, or an exception (say a
    KeyboardInterrupt from a signal) cut an acquire or a release short. Then ``__del__``
    gives the slot back. Guards need no finalizer of their own, so dropping a released
    guard costs no Python call.
    """

    # free_leases, push, reset and watcher repeat the home's, so that a release
    # reads them in one step instead of two.
    __slots__ = ("free_leases", "home", "push", "reset", "slot", "ticket", "value", "watcher")

    def __init__(self, home: _Home[T], slot: int, ticket: int, value: T) -> None:
        self.home = home
        self.slot = slot
        self.ticket = ticket
        self.value = value
        self.free_leases = home.leases
        self.push = home.push
        self.reset = home.reset
        self.watcher = home.watcher

    def __del__(self) -> None:
        home = self.home
        if home.leases[self.slot] is self:
            return  # a free slot's lease, collected with its whole pool
        # A finalizer runs once per object, so the slot goes on with a new lease.
        orphan: Pooled[T] = Pooled()
        orphan._lease = _Lease(home, self.slot, self.ticket, self.value)
        if home.watcher is None:
            orphan.release()
            return
        try:
            home.watcher.collected(self.slot)
        finally:
            orphan.release()


@final
class Pooled(Generic[T]):
    """A lease on one pooled value; give it back with :meth:`release` or a ``with`` block.

    Each acquisition makes a new guard, so a guard that was released can never reach
    the value again, even after its slot has been leased to somebody else. A guard that
    is garbage collected while it still holds its value returns the slot itself.

    Guards come from :meth:`Pool.acquire` and :meth:`Pool.try_acquire`; one made by
    calling ``Pooled()`` directly holds nothing.
    """

    # _lease is present exactly while the lease is held. Deleting it is the release
    # claim, which one thread wins: a slot delete is a single atomic step, under the
    # GIL and under the object's lock on free-threaded builds.
    __slots__ = ("_lease", "_released_at")

    _lease: _Lease[T]
    _released_at: str

    def __enter__(self) -> T:
        """The pooled value; :class:`ReleasedError` once the guard has been released."""
        try:
            return self._lease.value
        except AttributeError:
            raise self._released_error() from None

    if TYPE_CHECKING:

        @property
        def value(self) -> T:
            """The pooled value; :class:`ReleasedError` once the guard has been released."""

    else:  # the same function as __enter__: a with-block then costs one call less
        value = property(__enter__)

    def release(self, _exc_type: object = None, _exc: object = None, _traceback: object = None) -> None:
        """Reset the value on this thread and return its slot to the pool.

        Raises :class:`ReleasedError` if the guard was already released. If ``reset``
        raises, the slot still goes back (with a fresh ``factory()`` value) and the
        exception propagates from here. This is also ``__exit__``, whose arguments it
        takes and ignores: a with-block then costs one Python call less.
        """
        try:
            lease = self._lease
            del self._lease
        except AttributeError:
            raise self._released_error() from None
        if lease.watcher is not None:
            self._released_at = lease.watcher.released(lease.slot)
        reset = lease.reset
        if reset is not None:
            try:
                reset(lease.value)
            except BaseException as reset_error:
                lease.home.recover(lease, reset_error)
                raise
        # _Home.make_free, inlined: this is the hot path.
        lease.free_leases[lease.slot] = lease  # before the push: once pushed, the slot may be taken
        push = lease.push  # called through a local: `lease.push()` would be a method lookup
        status = push(lease.ticket)
        if status:
            lease.home.freelist.settle(lease.ticket, status)

    __exit__ = release

    def _released_error(self) -> ReleasedError:
        message = "this Pooled guard was already released (or never acquired); acquire again to get a value"
        where = getattr(self, "_released_at", None)
        if where is not None:
            message += f" (it was first released at {where})"
        return ReleasedError(message)

    def __repr__(self) -> str:
        try:
            lease = self._lease
        except AttributeError:
            return "<Pooled (released)>"
        return f"<Pooled slot={lease.slot} value={_value_repr(lease.value)}>"

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

    __slots__ = ("__weakref__", "_freelist", "_home", "_leases", "_pop")

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
        home = _Home(factory, reset, freelist)
        home.leases.extend(_Lease(home, slot, freelist.tickets[slot], values[slot]) for slot in range(capacity))
        self._freelist = freelist
        self._pop = freelist.pop
        self._leases = home.leases
        self._home = home

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` at once when every slot is out."""
        pop = self._pop  # called through a local: `self._pop()` would be a method lookup
        slot = pop()
        if slot < 0:
            return None
        leases = self._leases
        lease: _Lease[T] = leases[slot]  # type: ignore[assignment]  # a free slot's lease is there
        leases[slot] = None  # from here the lease's only owner is this frame, then the guard
        if lease.value is _STALE:
            self._remake(lease)
        guard: Pooled[T] = Pooled()
        guard._lease = lease
        return guard

    def acquire(self, timeout: float | None = None) -> Pooled[T]:
        """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises :class:`PoolExhausted` when time runs out; ``timeout=0`` never waits.
        """
        if timeout is not None and (
            (timeout.__class__ is not float and timeout.__class__ is not int) or not timeout >= 0
        ):
            _check_timeout(timeout)  # raises, unless an unusual type of number is fine
        # try_acquire's body, repeated: `with pool.acquire(0)` is as hot as try_acquire.
        pop = self._pop  # called through a local: `self._pop()` would be a method lookup
        slot = pop()
        if slot < 0:
            return self._wait(timeout)
        leases = self._leases
        lease: _Lease[T] = leases[slot]  # type: ignore[assignment]  # a free slot's lease is there
        leases[slot] = None
        if lease.value is _STALE:
            self._remake(lease)
        guard: Pooled[T] = Pooled()
        guard._lease = lease
        return guard

    def _wait(self, timeout: float | None) -> Pooled[T]:
        """The slow path of ``acquire``: every slot is out."""
        seconds = _check_timeout(timeout)
        if seconds != 0:
            deadline = None if seconds is None else monotonic() + seconds
            while True:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    break
                wait_slice = _wait_slice()
                if wait_slice is not None:
                    remaining = wait_slice if remaining is None else min(remaining, wait_slice)
                slot = self._freelist.pop_wait(remaining)
                if slot >= 0:
                    # Hand the slot straight back and take it the usual way: it is on
                    # top of the stack, so try_acquire gets it (unless a second,
                    # misbehaving acquirer got there first; then wait again).
                    self._home.make_free(self._leases[slot])  # type: ignore[arg-type]
                    guard = self.try_acquire()
                    if guard is not None:
                        return guard
        raise PoolExhausted(
            f"all {len(self._leases)} slots are in use"
            + ("" if seconds == 0 else f" and none came back within {timeout} s")
        )

    def _remake(self, lease: _Lease[T]) -> None:
        """The slot's value was lost to a failed reset; make a new one on this thread."""
        try:
            lease.value = self._home.factory()
        except BaseException:
            self._home.make_free(lease)  # still stale: the next acquisition tries again
            raise

    @property
    def capacity(self) -> int:
        """The number of slots (and of values), fixed at construction."""
        return len(self._leases)

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
