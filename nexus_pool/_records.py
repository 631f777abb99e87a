"""The records that say who holds what: :class:`Holder` (a pool's lent slot),
:class:`AcquireSite`, :class:`SharedHolder` (a shared pool's lent buffer).

Plain frozen data, importing nothing of the package: the errors carry them
(``PoolExhausted.holders``), ``_holders.py`` makes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, final

__all__ = ["AcquireSite", "Holder", "HowAcquired", "SharedHolder"]

HowAcquired = Literal["sync", "async", "local"]
"""How a guard was acquired: ``acquire``/``try_acquire``, ``acquire_async``, a local pool."""


@final
@dataclass(frozen=True, slots=True)
class AcquireSite:
    """Where a guard was acquired: the caller's file, line and function."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{os.path.basename(self.filename)}:{self.lineno} in {self.function}"


@final
@dataclass(frozen=True, slots=True)
class Holder:
    """One lent slot of a pool, as :meth:`nexus_pool.Pool.holders` reports it."""

    slot: int | None
    """The slot's index (``None`` for a local pool's lease: local pools have no slots)."""
    seconds: float
    """How long the slot has been held, in seconds (to a few milliseconds)."""
    thread_id: int
    """The ident of the thread that acquired it (``threading.get_ident()`` there)."""
    thread_name: str
    """That thread's name, or ``"(ended)"`` if it has finished since."""
    site: AcquireSite | None
    """Where it was acquired, when that was recorded (see ``track``)."""
    how: HowAcquired
    """``"sync"``: ``acquire``/``try_acquire``; ``"async"``: ``acquire_async``; ``"local"``:
    a local pool's acquisition."""

    def __str__(self) -> str:
        where = f" at {self.site}" if self.site is not None else ""
        slot = "" if self.slot is None else f"slot {self.slot} "
        return f"{slot}held {self.seconds:.1f} s by thread {self.thread_name!r}{where}"


@final
@dataclass(frozen=True, slots=True)
class SharedHolder:
    """One lent buffer of a shared pool, as :meth:`~nexus_pool.shared.SharedBufferPool.holders` reports it."""

    slot: int
    state: Literal["held", "in transit"]
    """``"held"`` by a process (acquired, or received), or ``"in transit"``: sent, and not
    received yet."""
    pid: int
    """The process that holds it, or that sent it."""
    alive: bool
    """Whether that process still runs (a dead holder's buffer comes back by ``reclaim()``)."""
    seconds: float
    """Seconds since it was acquired, sent or received (its latest hand-over)."""

    def __str__(self) -> str:
        life = "" if self.alive else ", dead"
        return f"slot {self.slot} {self.state} {self.seconds:.1f} s, pid {self.pid}{life}"
