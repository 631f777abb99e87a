"""The exceptions nexus_pool raises. All of them derive from :class:`PoolError`.

Each also derives from the standard exception that code catching it without knowing
nexus_pool would expect, as ``filelock.Timeout`` and ``asyncio.timeout`` do: running out
of time is a ``TimeoutError``, misusing a guard or a pool is a ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._records import Holder, SharedHolder

__all__ = [
    "BackendUnavailable",
    "OwnershipError",
    "PoolError",
    "PoolExhausted",
    "PoolLeakWarning",
    "PoolShutDown",
    "ProducerGone",
    "ReleasedError",
    "SharedBlockCorrupted",
]


class PoolError(Exception):
    """Base class of every error raised by nexus_pool."""


class PoolExhausted(PoolError, TimeoutError):
    """``acquire()`` found no free slot before its timeout ran out.

    Its message says how long the oldest holder has held its slot and where the holders
    acquired them (where that was recorded); ``holders`` lists them.
    """

    holders: Sequence[Holder | SharedHolder] = ()
    """The pool's holders when it gave up (see :meth:`nexus_pool.Pool.holders`; a shared
    pool's are :class:`~nexus_pool.shared.SharedHolder` records)."""


class PoolShutDown(PoolError):
    """The pool was shut down (``pool.shutdown()``): it lends nothing any more.

    Raised by every acquisition after the shutdown, and by those blocked when it came
    (as ``queue.ShutDown`` is by ``queue.Queue.get``). Releases are still accepted.
    """


class ReleasedError(PoolError, RuntimeError):
    """A guard was used or released after it had already been released."""


class OwnershipError(PoolError, RuntimeError):
    """A second thread acquired from a pool that another live thread owns.

    Raised by the ``debug`` backend: a pool has one acquiring thread at a time
    (returns may come from any thread). The owner passes the pool on with
    ``pool.handoff()``.
    """


class BackendUnavailable(PoolError):
    """The named backend exists but cannot load on this interpreter."""


class SharedBlockCorrupted(PoolError):
    """A shared-memory block says something no process of nexus_pool writes.

    Another process changed its header or a slot's record (any process of the same user
    can write into the block). Each process checks the block against its own copy of the
    block's geometry, so a corrupt block is refused, never read or written out of bounds.
    """


class PoolLeakWarning(ResourceWarning):
    """A guard was held longer than its pool's ``warn_after`` (or never released: the
    ``debug`` backend warns at interpreter exit). The message says which slot, for how
    long, on which thread and where it was acquired, when that was recorded."""


class ProducerGone(PoolError):
    """The process that made a shared block died: no more buffers will come from it."""
