"""The backend contract: what a free list must do for the :class:`~nexus_pool.Pool` facade.

This module is the one place the contract is written down; every backend subclasses
:class:`FreeList` and the conformance suite (``tests/conformance``) holds each of them to it.

Division of labour
------------------
The facade owns the user-visible contract: the values, the guards (``Pooled``), the
``reset`` call, argument checks and errors. A backend owns exactly one thing: *which slot
indices are free right now*. It never sees a value.

Threads
-------
* ``pop``, ``pop_wait`` and ``handoff`` run on the acquiring thread. The design has one
  acquirer at a time, but a backend must stay uncorrupted if two threads acquire at once
  (it may serialise them, or refuse the second with :class:`~nexus_pool.OwnershipError`).
* ``push`` runs on whichever thread releases a guard, concurrently with everything else.
* The facade guarantees that each leased slot is pushed exactly once, after its ``reset``,
  and never a slot that is free.

Hot path
--------
The facade reads ``pop``, ``push`` and ``tickets`` once per pool and then calls them
directly, so a backend may bind them to any callables: bound methods, C functions, or
``functools.partial`` objects over them. Keep them to one call each.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, Protocol

__all__ = ["EMPTY", "FreeList", "LeaseWatcher"]

EMPTY: Final = -1
"""What ``pop``/``pop_wait`` return when they found no free slot."""


class LeaseWatcher(Protocol):
    """Optional hooks through which a checking backend observes guards.

    A backend that sets :attr:`FreeList.watcher` gets these calls; the others pay only
    one ``is None`` test per release for the feature.
    """

    def released(self, slot: int) -> str:
        """A guard of ``slot`` was just claimed for release, on the releasing thread.

        Return a description of the place (``file:line``) for later error messages.
        """

    def collected(self, slot: int) -> None:
        """A guard of ``slot`` was collected without being released; its slot is being returned."""


class FreeList(abc.ABC):
    """The free slots of one pool of ``capacity`` slots, indices ``0 .. capacity-1``.

    All slots start free. The first pops return 0, 1, 2, ... in order; after that the
    most recently pushed slot comes out first (LIFO: it is hot in cache).
    """

    name: ClassVar[str]
    """The registry name of the backend (``Pool(..., backend=name)``)."""

    max_capacity: ClassVar[int] = sys.maxsize
    """The largest capacity the backend supports; larger ones are a ``ValueError``."""

    watcher: LeaseWatcher | None = None
    """Guard lifecycle hooks, for checking backends; ``None`` for the fast ones."""

    pop: Callable[[], int]
    """Take a free slot without blocking; return its index, or :data:`EMPTY`."""

    push: Callable[[int], int]
    """Give back a leased slot, named by its ticket (``tickets[slot]``), from any thread.

    Return 0 when done. Any other status asks the facade to call :meth:`settle` with
    it, so rare work (waking a blocked acquirer, reporting misuse) stays off the hot path.
    """

    tickets: Sequence[int]
    """``tickets[slot]`` is the integer that ``push`` takes for ``slot``.

    Lets a native backend take one argument that locates both itself and the slot.
    """

    @abc.abstractmethod
    def __init__(self, capacity: int) -> None:
        """Make ``capacity`` free slots; ``1 <= capacity <= max_capacity`` is checked by the facade."""

    @abc.abstractmethod
    def pop_wait(self, timeout: float | None) -> int:
        """Like ``pop`` but block until a slot is free, at most ``timeout`` seconds.

        ``None`` waits for ever; the facade only calls this after ``pop`` found the list
        empty, with ``timeout > 0`` or ``None``. Return :data:`EMPTY` when time ran out.
        A push that happens while the acquirer is falling asleep must wake it (no lost
        wake-up), a push while nobody waits must cost (next to) nothing extra, and the
        wait must not hold the GIL.
        """

    @abc.abstractmethod
    def available(self) -> int:
        """How many slots are free now (a snapshot when other threads are pushing)."""

    def settle(self, ticket: int, status: int) -> None:
        """Finish a ``push`` of ``ticket`` that returned the non-zero ``status``."""
        raise AssertionError(f"{self.name}: push({ticket}) returned unexpected status {status}")

    def handoff(self) -> None:  # noqa: B027 - deliberately a no-op unless a backend checks ownership
        """The acquiring thread gives up ownership; whichever thread acquires next owns the pool."""
