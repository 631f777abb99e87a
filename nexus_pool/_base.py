"""The public class :class:`Pool`: what users import, annotate with and test with
``isinstance``.

Two implementations subclass it, with identical behaviour: the native facade (C types,
``backends/nexus_pool_native.c``) and the pure-Python facade (``_pool.py``). This module
imports neither, nor the backend registry: ``Pool(...)`` checks its arguments and hands
them to the one maker that ``_facade.py`` (which imports both implementations and chooses
between them) installs with :func:`install_maker`, a registration, as codecs register
their search functions. The guard class :class:`~nexus_pool.Pooled` lives in ``_guard.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, Protocol, SupportsIndex, TypeVar, final

from ._async import AsyncAcquisition
from ._checks import check_callables, check_capacity, check_timeout, not_made_by
from ._guard import Pooled
from ._holders import check_track, check_warn_after, make_holder, thread_names
from ._records import Holder, HowAcquired
from ._stats import PoolStats

if TYPE_CHECKING:
    from ._waiting import Waiter

__all__ = ["Pool", "PoolKind", "PoolMaker", "install_maker", "make_pool"]

T = TypeVar("T")


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
            make_holder(slot, seconds, thread, names, site, how) for slot, seconds, thread, site, how in self._holding()
        ]

    # The facades implement what follows; these bodies serve only an object that
    # ``Pool(...)`` did not make (``object.__new__(Pool)``), which has no slots.

    def try_acquire(self) -> Pooled[T] | None:
        """A guard on a free value, or ``None`` at once when every slot is out."""
        raise not_made_by(self, "Pool(...)")

    def acquire(self, timeout: float | None = None) -> Pooled[T]:
        """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises :class:`~nexus_pool.PoolExhausted` when time runs out; ``timeout=0`` never waits.
        """
        raise not_made_by(self, "Pool(...)")

    @property
    def capacity(self) -> int:
        """The number of slots (and of values), fixed at construction."""
        raise not_made_by(self, "Pool(...)")

    def available(self) -> int:
        """How many slots are free now (a snapshot while other threads release)."""
        raise not_made_by(self, "Pool(...)")

    @property
    def backend(self) -> str:
        """The name of the backend in use."""
        raise not_made_by(self, "Pool(...)")

    @property
    def facade(self) -> str:
        """``"native"`` or ``"pure"``: which implementation this pool is."""
        raise not_made_by(self, "Pool(...)")

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner."""
        raise not_made_by(self, "Pool(...)")

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters (see :class:`nexus_pool.PoolStats`)."""
        raise not_made_by(self, "Pool(...)")

    def shutdown(self) -> None:
        """Lend nothing more: every acquisition raises :class:`~nexus_pool.PoolShutDown` from now
        on, and those waiting (``acquire``, ``acquire_async``) wake up to raise it.
        Releases are still accepted and lose nothing; ``available()`` and ``stats()``
        keep working. Like ``queue.Queue.shutdown``; calling it again does nothing."""
        raise not_made_by(self, "Pool(...)")

    @property
    def is_shutdown(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        raise not_made_by(self, "Pool(...)")

    def _waiter(self) -> Waiter[Pooled[T]]:
        """What ``acquire_async`` needs: an uncounted take, the waiting set, a counter."""
        raise not_made_by(self, "Pool(...)")

    def _holding(self) -> list[tuple[int | None, float, int, tuple[str, int, str] | None, HowAcquired]]:
        """The raw records behind :meth:`holders`: slot, seconds, thread ident, site, how."""
        raise not_made_by(self, "Pool(...)")

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
        :class:`~nexus_pool.PoolExhausted`. Cancelling the waiting task loses no slot.
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
    ``_facade.py``), which it chooses from ``backend`` (a name, or ``None``: the
    environment's, else the default). ``capacity``, ``factory`` and ``reset`` are checked
    already, and so are ``sample_period`` (0: record no acquire site, 1: every one, n:
    about one in n) and ``warn_after`` (seconds; 0.0: never)."""

    def __call__(
        self,
        kind: PoolKind,
        capacity: int,
        factory: Callable[[], Any],
        reset: Callable[[Any], object] | None,
        backend: str | None,
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
    return _makers[0](kind, capacity, factory, reset, backend, check_track(track), check_warn_after(warn_after))
