"""The backend contract: what a free list must do for the :class:`~nexus_pool.Pool` facade.

This module is the one place the contract is written down; every backend subclasses
:class:`FreeList` and the conformance suite (``tests/conformance``) holds each of them to it.

Division of labour
------------------
The facade owns the user-visible contract: the values, the guards (``Pooled``), the
``reset`` call, argument checks, errors, and waiting for a free slot. A backend owns
exactly one thing: the *leases of the free slots*. A lease is an opaque object with a
``slot`` attribute (its index, ``0 .. capacity-1``); the facade makes one per slot and
hands it to the backend while the slot is free. A backend never sees a value.

Ownership moves in one step
---------------------------
A slot is owned by its lease object, and the facade relies on that object always being
held by someone: the backend while the slot is free, a guard while it is lent. So
``take`` must remove a lease from the backend and return it without running Python
bytecode in between (a deque ``pop``, a C function, ``map`` over C callables), and
``give`` must store the lease before anything can fail. An asynchronous exception (a
``KeyboardInterrupt`` raised by a signal handler) can only land between bytecodes; if it
lands while the lease sits in a local variable, the lease object dies and the facade
brings the slot back (``nexus_pool/_slots.py``). A lease dropped *inside* the backend,
after ``take`` removed it but before it returned, would be lost.

Threads
-------
* ``take`` and ``handoff`` run on the acquiring thread. The design has one acquirer at a
  time, but a backend must stay uncorrupted if two threads take at once (it may refuse
  the second with :class:`~nexus_pool.OwnershipError`).
* ``give`` runs on whichever thread releases a guard, concurrently with everything else.
* The facade gives back each taken lease exactly once, and never a lease that is free.

Hot path
--------
The facade reads ``take`` and ``give`` once per pool and then calls them directly, so a
backend may bind them to any callables: bound methods of C types, C functions, or
``functools.partial`` / ``map`` objects over them. Keep them to one call each.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, Protocol, TypeVar

__all__ = ["FreeList", "Lease", "LeaseT", "LeaseWatcher"]


class Lease(Protocol):
    """What a backend may know of a lease: which slot it is for."""

    @property
    def slot(self) -> int: ...


LeaseT = TypeVar("LeaseT", bound=Lease)


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
        """The lease of ``slot`` died without being given back; its slot is being returned."""


class FreeList(abc.ABC, Generic[LeaseT]):
    """The free slots of one pool, as their leases.

    Constructed with every slot free. The first ``take`` calls return the leases in slot
    order 0, 1, 2, ...; after that the most recently given lease comes out first (LIFO:
    its value is hot in cache).
    """

    name: ClassVar[str]
    """The registry name of the backend (``Pool(..., backend=name)``)."""

    max_capacity: ClassVar[int] = sys.maxsize
    """The largest capacity the backend supports; larger ones are a ``ValueError``."""

    watcher: LeaseWatcher | None = None
    """Guard lifecycle hooks, for checking backends; ``None`` for the fast ones."""

    native: ClassVar[bool] = False
    """Whether the native facade serves this backend, with its own C free list: the
    lock-free stack of ``backends/nexus_pool_freelist.c``. Other backends always run on
    the pure-Python facade."""

    take: Callable[[], LeaseT]
    """Remove and return a free lease without blocking; ``LookupError`` when there is none."""

    give: Callable[[LeaseT], object]
    """Store a taken lease again, from any thread.

    A false result (``None``, ``0``) means done. Anything else asks the facade to call
    :meth:`settle` with it, so rare work (reporting misuse) stays off the hot path.
    """

    @abc.abstractmethod
    def __init__(self, leases: Sequence[LeaseT]) -> None:
        """Hold ``leases`` (``leases[i].slot == i``), all free.

        ``1 <= len(leases) <= max_capacity`` is checked by the facade.
        """

    @abc.abstractmethod
    def available(self) -> int:
        """How many leases are free now (a snapshot when other threads are giving)."""

    def settle(self, lease: LeaseT, status: object) -> None:
        """Finish a ``give`` of ``lease`` that returned the true ``status``."""
        raise AssertionError(f"{self.name}: give(slot {lease.slot}) returned unexpected status {status!r}")

    def handoff(self) -> None:  # deliberately a no-op unless a backend checks ownership
        """The acquiring thread gives up ownership; whichever thread acquires next owns the pool."""
