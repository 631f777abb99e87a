"""Single-thread pools, after the Rust crate's ``nexus_pool::local``.

``Pool`` grows (``acquire()`` calls the factory when no value is free, ``try_acquire()``
never does); ``BoundedPool`` holds a fixed number of values, made up front. One thread
acquires and releases; guards are :class:`nexus_pool.Pooled` guards. Under the
``debug`` backend the pools raise :class:`nexus_pool.OwnershipError` when another thread
acquires or releases.
"""

from . import _local  # noqa: F401 - installs the maker the classes call: which implementation serves a pool
from ._local_base import BoundedPool, Pool

__all__ = ["BoundedPool", "Pool"]
