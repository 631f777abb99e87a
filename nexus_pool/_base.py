"""The public classes :class:`Pool` and :class:`Pooled`, and the checks of their arguments.

These are what users import, annotate with and test with ``isinstance``. Two
implementations subclass them, with identical behaviour: the native facade (C types,
``backends/nexus_pool_native.c``) and the pure-Python facade (``_pool.py``). This module
imports neither: the native module imports it to subclass its classes, and
``_facade.py``, which imports both implementations, installs the function that
``Pool(...)`` calls to make a pool on the chosen one (:func:`install_maker`).
"""

from __future__ import annotations

import math
import operator
import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, NoReturn, Protocol, SupportsIndex, TypeVar, final

from ._async import AsyncAcquisition
from ._backends import select
from ._backends._contract import FreeList
from ._errors import ReleasedError
from ._holders import HowAcquired, Holder, check_track, check_warn_after, make_holder, thread_names
from ._stats import PoolStats

if TYPE_CHECKING:
    from ._slots import Waiter

__all__ = [
    "COLLECTED_MESSAGE",
    "LONGEST_WAIT",
    "RELEASED_MESSAGE",
    "Pool",
    "PoolKind",
    "PoolMaker",
    "Pooled",
    "check_callables",
    "check_capacity",
    "check_timeout",
    "install_maker",
    "make_pool",
    "value_repr",
]

T = TypeVar("T")

LONGEST_WAIT: Final = 365 * 24 * 3600.0
"""Timeouts longer than a year are treated as no limit (``None``): the clock arithmetic
stays exact, and nobody can tell the difference."""

RELEASED_MESSAGE: Final = "this Pooled guard was already released (or never acquired); acquire again to get a value"

COLLECTED_MESSAGE: Final = (
    "this Pooled guard's slot was returned to its pool by garbage collection (the guard was "
    "unreachable, e.g. in a reference cycle, and a finalizer brought it back); acquire again"
)


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


value_repr: Final = _ValueRepr().repr


def check_capacity(capacity: object) -> int:
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


def check_callables(factory: object, reset: object) -> None:
    """``factory`` callable and ``reset`` callable or None, else a TypeError naming it."""
    if not callable(factory):
        raise TypeError(f"factory must be callable, not {type(factory).__name__}")
    if reset is not None and not callable(reset):
        raise TypeError(f"reset must be callable or None, not {type(reset).__name__}")


def check_timeout(timeout: object) -> float | None:
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
    return None if seconds > LONGEST_WAIT else seconds


@final
class Pooled(Generic[T]):
    """A lease on one pooled value; give it back with :meth:`release` or a ``with`` block.

    Each acquisition makes a new guard, so a guard that was released can never reach the
    value again, even after its slot has been lent to somebody else. A guard that is
    garbage collected while it still holds its value returns the slot itself.

    Guards come from :meth:`Pool.acquire` and :meth:`Pool.try_acquire` (instances of a
    facade's subclass); one made by calling ``Pooled()`` directly holds nothing.
    """

    __slots__ = ()

    @property
    def value(self) -> T:
        """The pooled value; :class:`ReleasedError` once the guard has been released."""
        raise ReleasedError(RELEASED_MESSAGE)

    def release(self, _exc_type: object = None, _exc: object = None, _traceback: object = None) -> None:
        """Reset the value on this thread and return its slot to the pool.

        Raises :class:`ReleasedError` if the guard was already released. If ``reset``
        raises, the slot still goes back (with a fresh ``factory()`` value) and the
        exception propagates from here. ``__exit__`` does the same.
        """
        raise ReleasedError(RELEASED_MESSAGE)

    def __enter__(self) -> T:
        """The pooled value; :class:`ReleasedError` once the guard has been released."""
        raise ReleasedError(RELEASED_MESSAGE)

    def __exit__(self, _exc_type: object, _exc: object, _traceback: object) -> None:
        """Release the guard (also when the ``with`` body raised)."""
        raise ReleasedError(RELEASED_MESSAGE)

    def __repr__(self) -> str:
        return "<Pooled (released)>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pooled guards cannot be copied or pickled: a copy would be a second lease on one slot")


@final
class Pool(Generic[T]):
    """A fixed set of ``capacity`` values, made up front by ``factory()``.

    One thread acquires (``try_acquire``/``acquire``); any thread releases the guards it
    is given. ``reset(value)``, if given, runs on the releasing thread before the slot
    can be acquired again. ``backend`` names the free-list engine (see
    :func:`nexus_pool.available_backends`); by default the ``NEXUS_POOL_BACKEND``
    environment variable, else the fastest backend for this interpreter.
    """

    __slots__ = ()

    def __new__(
        cls,
        capacity: SupportsIndex,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
        warn_after: float | None = None,
    ) -> Pool[T]:
        checked = check_capacity(capacity)
        check_callables(factory, reset)
        return make_pool("pool", checked, factory, reset, backend, track, warn_after)

    def __init__(
        self,
        capacity: SupportsIndex,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
        warn_after: float | None = None,
    ) -> None:
        """Everything happened in ``__new__``, which returned a facade's pool.

        ``track`` says which acquisitions record their acquire site (``"off"``,
        ``"sampled"``: about one in 16, the default, or ``"every"``; ``debug`` records every
        one); ``None`` reads the environment variable ``NEXUS_POOL_TRACK``. ``warn_after``
        (seconds; ``None`` reads ``NEXUS_POOL_WARN_AFTER``, unset: never) makes a guard held
        longer than that produce one :class:`~nexus_pool.PoolLeakWarning`.
        """

    def holders(self) -> list[Holder]:
        """The lent slots, one :class:`~nexus_pool.Holder` each: how long held, by which
        thread, and where it was acquired when that was recorded (``track``); a snapshot
        while other threads release."""
        names = thread_names()
        return [
            make_holder(slot, seconds, thread, names, site, how)
            for slot, seconds, thread, site, how in self._holding()
        ]

    if TYPE_CHECKING:  # the facades implement these

        def try_acquire(self) -> Pooled[T] | None:
            """A guard on a free value, or ``None`` at once when every slot is out."""

        def acquire(self, timeout: float | None = None) -> Pooled[T]:
            """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

            Raises :class:`PoolExhausted` when time runs out; ``timeout=0`` never waits.
            """

        @property
        def capacity(self) -> int:
            """The number of slots (and of values), fixed at construction."""

        def available(self) -> int:
            """How many slots are free now (a snapshot while other threads release)."""

        @property
        def backend(self) -> str:
            """The name of the backend in use."""

        @property
        def facade(self) -> str:
            """``"native"`` or ``"pure"``: which implementation this pool is."""

        def handoff(self) -> None:
            """Give up ownership: the next thread that acquires becomes the owner."""

        def stats(self) -> PoolStats:
            """A snapshot of this pool's counters (see :class:`nexus_pool.PoolStats`)."""

        def shutdown(self) -> None:
            """Lend nothing more: every acquisition raises :class:`PoolShutDown` from now
            on, and those waiting (``acquire``, ``acquire_async``) wake up to raise it.
            Releases are still accepted and lose nothing; ``available()`` and ``stats()``
            keep working. Like ``queue.Queue.shutdown``; calling it again does nothing."""

        @property
        def is_shutdown(self) -> bool:
            """Whether :meth:`shutdown` was called."""

        def _waiter(self) -> Waiter[Pooled[T]]:
            """What ``acquire_async`` needs: an uncounted take, the waiting set, a counter."""

        def _holding(self) -> list[tuple[int | None, float, int, tuple[str, int, str] | None, HowAcquired]]:
            """The raw records behind :meth:`holders`: slot, seconds, thread ident, site, how."""

    def __enter__(self) -> Pool[T]:
        """``with Pool(...) as pool:`` shuts the pool down when the block ends."""
        return self

    def __exit__(self, _exc_type: object, _exc: object, _traceback: object) -> None:
        self.shutdown()

    def acquire_async(self, timeout: float | None = None) -> AsyncAcquisition[T]:
        """Acquire from a coroutine: ``await pool.acquire_async()`` gives a guard,
        ``async with pool.acquire_async() as value:`` the value, released at the end.

        The event loop is then the pool's one acquiring thread; releases from any thread
        (``run_in_executor`` workers, other tasks) wake it. Waits up to ``timeout``
        seconds (``None``: no limit) without blocking the loop, then raises
        :class:`PoolExhausted`. Cancelling the waiting task loses no slot.
        """
        seconds = check_timeout(timeout)
        shown = timeout if type(timeout) in (int, float) and seconds is not None else seconds
        return AsyncAcquisition(self, seconds, shown)

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pool objects cannot be copied or pickled: they own their values")


PoolKind = Literal["pool", "buffers"]
"""What a maker makes: a :class:`Pool`, or a :class:`nexus_pool.BufferPool` (a subclass)."""


class PoolMaker(Protocol):
    """Makes a new pool of ``kind`` on the implementation that serves its backend (see
    ``_facade.py``): ``sample_period`` (0: record no acquire site, 1: every one, n: about one
    in n) and ``warn_after`` (seconds; 0.0: never) are checked already."""

    def __call__(
        self,
        kind: PoolKind,
        capacity: int,
        factory: Callable[[], Any],
        reset: Callable[[Any], object] | None,
        freelist_class: type[FreeList[Any]],
        sample_period: int,
        warn_after: float,
        /,
    ) -> Pool[Any]: ...


_makers: list[PoolMaker] = []
"""The one maker ``Pool(...)`` calls, installed when ``nexus_pool`` is imported."""


def install_maker(maker: PoolMaker) -> None:
    """Make ``maker`` the function that ``Pool(...)`` calls once its arguments are checked."""
    _makers[:] = [maker]


def make_pool(
    kind: PoolKind,
    capacity: int,
    factory: Callable[[], Any],
    reset: Callable[[Any], object] | None,
    backend: str | None,
    track: Literal["off", "sampled", "every"] | None,
    warn_after: float | None,
) -> Pool[Any]:
    """Check the keyword arguments every pool takes, and make the pool (``capacity``,
    ``factory`` and ``reset`` are checked already)."""
    freelist_class = select(backend)
    if capacity > freelist_class.max_capacity:
        raise ValueError(
            f"capacity must be <= {freelist_class.max_capacity} for backend {freelist_class.name!r}, got {capacity}"
        )
    sample_period = check_track(track)
    if freelist_class.name == "debug":
        sample_period = 1  # debug records every acquire site, whatever track says
    return _makers[0](kind, capacity, factory, reset, freelist_class, sample_period, check_warn_after(warn_after))
