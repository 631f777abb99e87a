"""The public classes of ``nexus_pool.local``: :class:`Pool` and :class:`BoundedPool`.

Two implementations subclass them, as for the thread-safe pool: the native one (C types
in ``backends/nexus_pool_native.c``) and the pure one (``_local.py``, the readable
reference, which also serves the ``debug`` backend). This module imports neither: the
native module imports it to subclass its classes, and ``_local.py`` installs the function
that makes a new pool on the chosen implementation (:func:`install_maker`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Generic, Literal, Protocol, SupportsIndex, TypeVar, cast, final

from ._checks import check_callables, check_capacity, not_made_by
from ._guard import Pooled
from ._holders import check_track, make_holder, thread_names
from ._records import Holder, HowAcquired

__all__ = ["EXHAUSTED_REASON", "LOCAL_WHAT", "BoundedPool", "LocalPoolMaker", "Pool", "install_maker"]

EXHAUSTED_REASON: Final = "only its own thread releases them, so acquire() does not wait"

LOCAL_WHAT: Final = "values of this local.BoundedPool"
"""What a BoundedPool's exhaustion message calls its values."""

T = TypeVar("T")


@final
class Pool(Generic[T]):
    """A growable single-thread pool: ``acquire()`` calls ``factory()`` when none is free.

    ``reset(value)``, if given, runs at each release. Values are kept for reuse however
    many there are; ``take()`` and ``put()`` move a value out of and into the pool.
    """

    __slots__ = ()

    def __new__(
        cls,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
    ) -> Pool[T]:
        check_callables(factory, reset)
        pool: Pool[T] = _makers[0](None, factory, reset, backend, check_track(track))
        return pool

    def __init__(
        self,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
    ) -> None:
        """Everything happened in ``__new__``, which returned an implementation's pool.

        ``track``: which acquisitions record their acquire site, as for
        :class:`nexus_pool.Pool`."""

    def holders(self) -> list[Holder]:
        """The values lent out now, one :class:`~nexus_pool.Holder` each (``slot`` is
        ``None``: local pools have no slots), as :meth:`nexus_pool.Pool.holders`."""
        return _holders_of(self)

    # The implementations define what follows; these bodies serve only an object
    # that the class did not make.

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` when none is free (never calls ``factory``)."""
        raise not_made_by(self, "local.Pool(...)")

    def acquire(self) -> Pooled[T]:
        """A guard on a free value, or on a new one made by ``factory()``."""
        raise not_made_by(self, "local.Pool(...)")

    def take(self) -> T:
        """A value that leaves the pool for good (a free one, else a new one)."""
        raise not_made_by(self, "local.Pool(...)")

    def put(self, value: T) -> None:
        """Add ``value`` to the pool (``reset`` is not called: pass it ready for reuse)."""
        raise not_made_by(self, "local.Pool(...)")

    def available(self) -> int:
        """How many values are free now."""
        raise not_made_by(self, "local.Pool(...)")

    @property
    def backend(self) -> str:
        """``"debug"`` when threads are checked, else ``"local"`` (a plain stack, no locks)."""
        raise not_made_by(self, "local.Pool(...)")

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner (``debug`` only)."""
        raise not_made_by(self, "local.Pool(...)")


@final
class BoundedPool(Generic[T]):
    """A fixed single-thread pool: ``capacity`` values made now by ``factory()``."""

    __slots__ = ()

    def __new__(
        cls,
        capacity: SupportsIndex,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
    ) -> BoundedPool[T]:
        checked = check_capacity(capacity)
        check_callables(factory, reset)
        pool: BoundedPool[T] = _makers[0](checked, factory, reset, backend, check_track(track))
        return pool

    def __init__(
        self,
        capacity: SupportsIndex,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None = None,
        *,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
    ) -> None:
        """Everything happened in ``__new__``, which returned an implementation's pool.

        ``track``: which acquisitions record their acquire site, as for
        :class:`nexus_pool.Pool`."""

    def holders(self) -> list[Holder]:
        """The values lent out now, one :class:`~nexus_pool.Holder` each (``slot`` is
        ``None``: local pools have no slots), as :meth:`nexus_pool.Pool.holders`."""
        return _holders_of(self)

    # The implementations define what follows; these bodies serve only an object
    # that the class did not make.

    @property
    def capacity(self) -> int:
        """The number of values, fixed at construction."""
        raise not_made_by(self, "local.BoundedPool(...)")

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` when none is free."""
        raise not_made_by(self, "local.BoundedPool(...)")

    def acquire(self) -> Pooled[T]:
        """A guard on a free value; :class:`~nexus_pool.PoolExhausted` at once when none is free.

        Only this thread returns values, so waiting could never end.
        """
        raise not_made_by(self, "local.BoundedPool(...)")

    def available(self) -> int:
        """How many values are free now."""
        raise not_made_by(self, "local.BoundedPool(...)")

    @property
    def backend(self) -> str:
        """``"debug"`` when threads are checked, else ``"local"`` (a plain stack, no locks)."""
        raise not_made_by(self, "local.BoundedPool(...)")

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner (``debug`` only)."""
        raise not_made_by(self, "local.BoundedPool(...)")


class LocalPoolMaker(Protocol):
    """Makes a local pool: ``capacity`` None for a growing :class:`Pool`, else a
    :class:`BoundedPool` of that many values; ``sample_period`` as for the thread-safe pool
    (see ``_local.py``)."""

    def __call__(
        self,
        capacity: int | None,
        factory: Callable[[], Any],
        reset: Callable[[Any], object] | None,
        backend: str | None,
        sample_period: int,
        /,
    ) -> Any: ...


class _Holding(Protocol):
    def _holding(self) -> list[tuple[int | None, float, int, tuple[str, int, str] | None, HowAcquired]]: ...


def _holders_of(pool: object) -> list[Holder]:
    records = cast(_Holding, pool)._holding()
    names = thread_names()
    return [make_holder(slot, seconds, thread, names, site, how) for slot, seconds, thread, site, how in records]


_makers: list[LocalPoolMaker] = []
"""The one maker the public classes call, installed when ``nexus_pool.local`` is imported."""


def install_maker(maker: LocalPoolMaker) -> None:
    """Make ``maker`` the function that ``Pool(...)`` and ``BoundedPool(...)`` call."""
    _makers[:] = [maker]
