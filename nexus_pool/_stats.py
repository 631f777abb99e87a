"""What ``pool.stats()`` returns: a frozen snapshot of one pool's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["PoolStats"]


@final
@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a pool, taken by :meth:`nexus_pool.Pool.stats`.

    The acquiring thread keeps the counters, without locks or atomic read-modify-writes
    (there is one acquirer; a second one, which is misuse, can only make them miscount).
    Read from another thread, the fields may be a few operations apart.
    """

    capacity: int
    """The number of slots."""
    in_use: int
    """Slots lent out now: ``capacity - available()``."""
    high_water: int
    """The most slots that were ever lent out at once, counted at each acquisition."""
    acquisitions: int
    """Guards handed out, by every kind of acquire."""
    exhaustions: int
    """Times the pool had no free slot: ``try_acquire()`` gave ``None``, or ``acquire()``
    (or ``acquire_async()``) had to wait or gave up at once (``timeout=0``)."""
    wait_seconds: float
    """Total time ``acquire()`` and ``acquire_async()`` spent waiting for a release."""
    oldest_held: float | None = None
    """How long the oldest lent slot has been held, in seconds (``None``: none is lent).
    Every acquisition records its time anyway (for :meth:`nexus_pool.Pool.holders`), so this
    is one pass over the slots when ``stats()`` is called, and costs nothing before."""
