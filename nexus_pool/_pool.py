"""The pure-Python facade: the readable reference implementation of Pool and Pooled.

Everything users see is the same for every backend; a backend (see
``_backends/_contract.py``) only keeps the free slots' leases, and ``_slots.py`` keeps
every slot owned, even when an exception lands between two bytecodes. The public classes
(``_base.py``) are shared with the native facade; ``_facade.py`` chooses between the two
for each new pool.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from threading import get_ident
from time import monotonic
from typing import Final, TypeVar, final

from ._backends._contract import FreeList
from ._base import Pool
from ._buffers import Buffer, BufferPool
from ._checks import check_timeout
from ._errors import ReleasedError
from ._guard import COLLECTED_MESSAGE, RELEASED_MESSAGE, Pooled, value_repr
from ._holders import caller_site, exhausted, warn_held_too_long
from ._records import HowAcquired
from ._slots import STALE, Home, Lease, collecting
from ._stats import PoolStats
from ._waiting import Waiter

__all__ = ["PurePool", "PurePooled"]

T = TypeVar("T")


@final
class PurePooled(Pooled[T]):  # type: ignore[misc]  # the public class is final for users, not for its facades
    """The pure facade's guard (see :class:`nexus_pool.Pooled`)."""

    # _lease is present exactly while the lease is held. Deleting it is the release
    # claim, which one thread wins: a slot delete is a single atomic step, under the
    # GIL and under the object's lock on free-threaded builds. When a guard dies, its
    # _lease must go before its _source, so that the home is still there when the dying
    # lease brings its slot back (the guard may hold the last reference to the home of a
    # dropped pool). CPython clears a dying object's slots in the order of its type's
    # member list, which it sorts by name; SLOTS_CLEARED_IN_ORDER below checks that the
    # names sort so, and tests/facades/test_pure_revival.py that CPython still sorts.
    # _collected is set once a release() found the slot returned by garbage collection
    # (a quiet no-op).
    __slots__ = ("_collected", "_lease", "_released_at", "_source")

    _lease: Lease[T]
    _source: Home[T]
    _released_at: str
    _collected: bool

    @property
    def value(self) -> T:
        """The pooled value; :class:`~nexus_pool.ReleasedError` once the guard has been released."""
        try:
            return self._lease.box["value"]
        except (AttributeError, KeyError):  # released; or its lease died and handed the value over
            raise self._released_error(reading=True) from None

    def __enter__(self) -> T:
        return self.value

    def release(self, _exc_type: object = None, _exc: object = None, _traceback: object = None) -> None:
        """Reset the value on this thread and return its slot to the pool.

        Raises :class:`~nexus_pool.ReleasedError` if the guard was already released. If ``reset``
        raises, the slot still goes back (with a fresh ``factory()`` value) and the
        exception propagates from here.
        """
        try:
            lease = self._lease
            del self._lease
        except AttributeError:
            raise self._released_error(reading=False) from None
        # The garbage collector returned the slot already (its lease was found dead), and
        # this guard lives on: a finalizer of the same collection, or the value, kept it.
        # The user did nothing wrong, so the release is done, quietly; a second one raises.
        # Only while the cyclic GC runs can a live guard hold a lease the GC found dead.
        if collecting[0] and lease.record() is not lease:
            self._collected = True
            return
        try:
            value = lease.box["value"]
        except KeyError:  # the GC finalized its lease (it handed its value over): revived
            self._collected = True
            return
        home = self._source
        if home.watcher is not None:
            self._released_at = home.watcher.released(lease.slot)
        if home.reset is not None:
            try:
                home.reset(value)
            except BaseException as reset_error:
                lease.record.fresh_value_needed = True  # first: if we are interrupted again
                home.recover(lease, reset_error)
                raise
        home.give_back(lease)
        if home.dead:
            home.revive_dead()

    def __exit__(self, _exc_type: object, _exc: object, _traceback: object) -> None:
        self.release()

    def _released_error(self, *, reading: bool) -> ReleasedError:
        if hasattr(self, "_lease") or (reading and getattr(self, "_collected", False)):
            return ReleasedError(COLLECTED_MESSAGE)
        message = RELEASED_MESSAGE
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
        return f"<Pooled slot={lease.slot} value={value_repr(value)}>"


SLOTS_CLEARED_IN_ORDER: Final = ("_lease", "_source")
"""A dying :class:`PurePooled` must drop these in this order (see its ``__slots__``)."""

if [name for name in sorted(PurePooled.__slots__) if name in SLOTS_CLEARED_IN_ORDER] != list(SLOTS_CLEARED_IN_ORDER):
    raise RuntimeError("PurePooled's slot names no longer sort in the order its guards must drop them")


class PurePool(Pool[T]):  # type: ignore[misc]  # the public class is final for users, not for its facades
    """The pure facade's pool (see :class:`nexus_pool.Pool`); subclassed only by
    :class:`PureBufferPool`."""

    # The counters behind stats(), and the sampling of acquire sites, kept by the acquiring
    # thread alone; the leak check's schedule (see _holders.py).
    __slots__ = (
        "__weakref__",
        "_acquisitions",
        "_countdown",
        "_exhaustions",
        "_high_water",
        "_home",
        "_last_check",
        "_next_check",
        "_random",
        "_sample_period",
        "_wait_seconds",
        "_warn_after",
    )

    _home: Home[T]
    _acquisitions: int
    _exhaustions: int
    _high_water: int
    _wait_seconds: float
    _sample_period: int
    _countdown: int
    _random: Random
    _warn_after: float
    _next_check: float
    _last_check: float

    @classmethod
    def _create(
        cls,
        capacity: int,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None,
        freelist_class: type[FreeList[Lease[T]]],
        sample_period: int,
        warn_after: float,
    ) -> PurePool[T]:
        """A new pool; ``nexus_pool.Pool`` checked the arguments."""
        pool: PurePool[T] = object.__new__(cls)
        pool._home = Home(capacity, factory, reset, freelist_class)
        pool._acquisitions = pool._exhaustions = pool._high_water = 0
        pool._wait_seconds = 0.0
        pool._sample_period = sample_period
        pool._random = Random(id(pool))
        pool._countdown = pool._next_interval()
        pool._warn_after = warn_after
        pool._next_check = pool._last_check = monotonic()
        return pool

    def try_acquire(self) -> PurePooled[T] | None:
        """A guard on a free value, or ``None`` at once when every slot is out."""
        if self._warn_after:
            self._check_held_too_long()
        lease = self._home.take_or_none()
        if lease is None:
            self._exhaustions += 1
            return None
        return self._lend(lease, "sync")

    def acquire(self, timeout: float | None = None) -> PurePooled[T]:
        """A guard on a free value, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises :class:`~nexus_pool.PoolExhausted` when time runs out; ``timeout=0`` never waits.
        """
        seconds = check_timeout(timeout)
        if self._warn_after:
            self._check_held_too_long()
        lease = self._home.take_or_none()
        if lease is None:
            lease = self._wait(seconds, timeout if type(timeout) in (int, float) and seconds is not None else seconds)
        return self._lend(lease, "sync")

    def _lend(self, lease: Lease[T], how: HowAcquired) -> PurePooled[T]:
        """A new guard on ``lease`` (a dropped lease brings its slot back: see _slots.py)."""
        if lease.box["value"] is STALE:
            self._home.remake(lease)
        guard: PurePooled[T] = PurePooled()
        guard._lease = lease
        guard._source = home = self._home
        self._acquisitions += 1
        lease.thread = get_ident()
        lease.how = how
        if self._sample_period:
            self._countdown -= 1
            if self._countdown <= 0:
                self._countdown = self._next_interval()
                lease.site = caller_site()
            else:
                lease.site = None
        lease.acquired = monotonic()  # last: from here holders() lists it
        in_use = home.capacity - home.freelist.available()
        if in_use > self._high_water:
            self._high_water = in_use
        return guard

    def _next_interval(self) -> int:
        """Acquisitions until the next recorded site: ``_sample_period`` on average, at
        random intervals (a periodic pattern of call sites cannot hide one of them)."""
        period = self._sample_period
        return 1 if period <= 1 else self._random.randint(1, 2 * period - 1)

    def _check_held_too_long(self) -> None:
        """Warn about the guards whose age crossed ``warn_after`` since the last look (each
        once), at most every quarter of it; before anything is taken, so that a warning
        turned into an error takes nothing."""
        now = monotonic()
        if now < self._next_check:
            return
        threshold, last = self._warn_after, self._last_check
        self._last_check = now
        self._next_check = now + threshold / 4
        crossed = [holder for holder in self.holders() if threshold < holder.seconds <= threshold + now - last]
        warn_held_too_long(crossed, threshold, self)

    def _holding(self) -> list[tuple[int | None, float, int, tuple[str, int, str] | None, HowAcquired]]:
        now = monotonic()
        records = []
        for record in self._home.records:
            lease = record.latest()()
            if lease is None:
                continue
            acquired = lease.acquired
            if acquired is not None:
                records.append((lease.slot, now - acquired, lease.thread, lease.site, lease.how))
        return records

    def _wait(self, seconds: float | None, shown: object) -> Lease[T]:
        """The slow path of ``acquire``: every slot is out (and none was revived)."""
        self._exhaustions += 1
        if seconds == 0:
            lease = None
        else:
            started = monotonic()
            try:
                lease = self._home.wait_for_lease(seconds)
            finally:
                self._wait_seconds += monotonic() - started
        if lease is None:
            raise exhausted(self._home.capacity, self.holders(), None if seconds == 0 else shown)
        return lease

    def _waiter(self) -> Waiter[Pooled[T]]:
        home = self._home

        def take() -> Pooled[T] | None:
            if self._warn_after:
                self._check_held_too_long()
            lease = home.take_or_none()
            return None if lease is None else self._lend(lease, "async")

        return Waiter(take, home.waiting, self._note_wait)

    def _note_wait(self, seconds: float) -> None:
        self._exhaustions += 1
        self._wait_seconds += seconds

    def shutdown(self) -> None:
        """Lend nothing more: every acquisition raises :class:`~nexus_pool.PoolShutDown` from now on,
        and those waiting wake up to raise it. Releases are still accepted."""
        self._home.shutdown()

    @property
    def is_shutdown(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._home.shut_down

    def stats(self) -> PoolStats:
        """A snapshot of this pool's counters (see :class:`nexus_pool.PoolStats`)."""
        capacity = self._home.capacity
        ages = [seconds for _, seconds, _, _, _ in self._holding()]
        return PoolStats(
            capacity,
            capacity - self.available(),
            self._high_water,
            self._acquisitions,
            self._exhaustions,
            self._wait_seconds,
            max(ages, default=None),
        )

    @property
    def capacity(self) -> int:
        """The number of slots (and of values), fixed at construction."""
        return self._home.capacity

    @property
    def _reset(self) -> Callable[[T], object] | None:
        """The reset the pool was made with."""
        return self._home.reset

    def available(self) -> int:
        """How many slots are free now (a snapshot while other threads release)."""
        home = self._home
        home.revive_dead()
        return home.freelist.available()

    @property
    def backend(self) -> str:
        """The name of the backend in use."""
        return self._home.freelist.name

    @property
    def facade(self) -> str:
        """``"pure"``: this pool is the pure-Python implementation."""
        return "pure"

    def handoff(self) -> None:
        """Give up ownership: the next thread that acquires becomes the owner.

        Checked by the ``debug`` backend (only the owner may hand off); a no-op elsewhere.
        """
        self._home.freelist.handoff()

    def __repr__(self) -> str:
        return f"<nexus_pool.Pool capacity={self.capacity} available={self.available()} backend={self.backend!r}>"


@final
class PureBufferPool(BufferPool, PurePool[Buffer]):  # type: ignore[misc]  # final Pool, as for PurePool
    """The pure facade's :class:`nexus_pool.BufferPool`: its pool, and the buffer pool's
    properties (the repr and ``size`` come first in this order)."""

    __slots__ = ()
