"""The typed facade: :class:`Pool` hands out :class:`Pooled` guards; guards give slots back.

Everything users see lives here and is the same for every backend; a backend (see
``_backends/_contract.py``) only keeps the free slots' leases, and ``_slots.py`` keeps
every slot owned, even when an exception lands between two bytecodes.
"""

from __future__ import annotations

import math
import operator
import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Generic, NoReturn, SupportsIndex, TypeVar, final

from ._backends import select
from ._errors import PoolExhausted, ReleasedError
from ._slots import STALE, Home, Lease, collecting

__all__ = ["Pool", "Pooled"]

T = TypeVar("T")


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


_value_repr: Final = _ValueRepr().repr

_COLLECTED: Final = (
    "this Pooled guard's slot was returned to its pool by garbage collection (the guard was "
    "unreachable, e.g. in a reference cycle, and a finalizer brought it back); acquire again"
)


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
    # GIL and under the object's lock on free-threaded builds. Slots are cleared in
    # name order when a guard dies, so _lease goes before _source, and the home is
    # still there when the dying lease brings its slot back.
    __slots__ = ("_lease", "_released_at", "_source")

    _lease: Lease[T]
    _source: Home[T]
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
        # Only while the cyclic GC runs can a live guard hold a lease the GC found dead.
        if collecting[0] and lease.record() is not lease:
            raise ReleasedError(_COLLECTED)
        try:
            value = lease.value
        except AttributeError:  # the GC finalized its lease: the slot was revived
            raise ReleasedError(_COLLECTED) from None
        home = self._source
        if home.watcher is not None:
            self._released_at = home.watcher.released(lease.slot)
        reset = home.reset
        if reset is not None:
            try:
                reset(value)
            except BaseException as reset_error:
                lease.record.fresh_value_needed = True  # first: if we are interrupted again
                home.recover(lease, reset_error)
                raise
        # Home.give_back, inlined: this is the hot path.
        status = home.give(lease)
        if status:
            home.freelist.settle(lease, status)
        if home.waiting:
            home.wake()
        if home.dead:
            home.revive_dead()

    __exit__ = release

    def _released_error(self) -> ReleasedError:
        if hasattr(self, "_lease"):
            return ReleasedError(_COLLECTED)
        message = "this Pooled guard was already released (or never acquired); acquire again to get a value"
        where = getattr(self, "_released_at", None)
        if where is not None:
            message += f" (it was first released at {where})"
        return ReleasedError(message)

    def __repr__(self) -> str:
        try:
            lease = self._lease
            value = lease.value
        except AttributeError:
            return "<Pooled (released)>"
        return f"<Pooled slot={lease.slot} value={_value_repr(value)}>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pooled guards cannot be copied or pickled: a copy would be a second lease on one slot")


def _check_capacity(capacity: object) -> int:
    """``capacity`` as an int >= 1; like ``range()``, any ``__index__`` integer but bool."""
    if isinstance(capacity, bool):
        raise TypeError("capacity must be an int, not bool")
    try:
        number = operator.index(capacity)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}") from None
    if number < 1:
        raise ValueError(f"capacity must be >= 1, got {number}")
    return number


def _check_timeout(timeout: object) -> float | None:
    """``timeout`` in seconds; ``None`` for no limit, which a huge or infinite timeout also means."""
    if timeout is None:
        return None
    if isinstance(timeout, bool):
        raise TypeError("timeout must be a number of seconds or None, not bool")
    if not isinstance(timeout, (int, float)):
        try:
            timeout = operator.index(timeout)  # type: ignore[arg-type]  # numpy and friends
        except TypeError:
            raise TypeError(
                f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
            ) from None
    try:
        seconds = float(timeout)
    except OverflowError:  # an int too large for a float: longer than any wait can be
        seconds = math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    return None if seconds > _LONGEST_WAIT else seconds


_LONGEST_WAIT: Final = 365 * 24 * 3600.0
"""Timeouts longer than a year are treated as no limit (``None``): the clock arithmetic
stays exact, and nobody can tell the difference."""


@final
class Pool(Generic[T]):
    """A fixed set of ``capacity`` values, made up front by ``factory()``.

    One thread acquires (``try_acquire``/``acquire``); any thread releases the guards it
    is given. ``reset(value)``, if given, runs on the releasing thread before the slot
    can be acquired again. ``backend`` names the free-list engine (see
    :func:`nexus_pool.available_backends`); by default the ``NEXUS_POOL_BACKEND``
    environment variable, else the fastest backend for this interpreter.
    """

    __slots__ = ("__weakref__", "_home", "_take")

    def __init__(
        self,
        capacity: SupportsIndex,
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
        self._home = Home(capacity, factory, reset, freelist_class)
        self._take = self._home.take

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` at once when every slot is out."""
        try:
            lease = self._take()
        except LookupError:
            revived = self._home.take_revived()
            if revived is None:
                return None
            lease = revived
        if lease.value is STALE:
            self._home.remake(lease)
        guard: Pooled[T] = Pooled()
        guard._lease = lease
        guard._source = self._home
        return guard

    def acquire(self, timeout: float | None = None) -> Pooled[T]:
        """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises :class:`PoolExhausted` when time runs out; ``timeout=0`` never waits.
        """
        if timeout is not None and (
            (timeout.__class__ is not float and timeout.__class__ is not int) or not 0 <= timeout <= _LONGEST_WAIT
        ):
            timeout = _check_timeout(timeout)  # raises, or settles an unusual number
        # try_acquire's body, repeated: `with pool.acquire(0)` is as hot as try_acquire.
        try:
            lease = self._take()
        except LookupError:
            lease = self._wait(timeout)
        if lease.value is STALE:
            self._home.remake(lease)
        guard: Pooled[T] = Pooled()
        guard._lease = lease
        guard._source = self._home
        return guard

    def _wait(self, timeout: float | None) -> Lease[T]:
        """The slow path of ``acquire``: every slot is out."""
        lease = self._home.take_revived() if timeout == 0 else self._home.wait_for_lease(timeout)
        if lease is None:
            raise PoolExhausted(
                f"all {self._home.capacity} slots are in use"
                + ("" if timeout == 0 else f" and none came back within {timeout} s")
            )
        return lease

    @property
    def capacity(self) -> int:
        """The number of slots (and of values), fixed at construction."""
        return self._home.capacity

    def available(self) -> int:
        """How many slots are free now (a snapshot while other threads release)."""
        home = self._home
        if home.dead:
            home.revive_dead()
        return home.freelist.available()

    @property
    def backend(self) -> str:
        """The name of the backend in use."""
        return self._home.freelist.name

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner.

        Checked by the ``debug`` backend (only the owner may hand off); a no-op elsewhere.
        """
        self._home.freelist.handoff()

    def __repr__(self) -> str:
        return (
            f"<nexus_pool.Pool capacity={self.capacity} available={self.available()} "
            f"backend={self.backend!r}>"
        )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pool objects cannot be copied or pickled: they own their values")
