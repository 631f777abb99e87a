"""nexus_pool: a typed object pool where one thread acquires and any thread releases.

>>> from nexus_pool import Pool
>>> pool = Pool(4, bytearray, bytearray.clear)
>>> with pool.acquire() as buf:
...     buf += b"hello"
>>> pool.available()
4
"""

from . import _facade  # noqa: F401 - installs the maker that Pool(...) calls: which facade serves a pool
from ._async import AsyncAcquisition
from ._backends import available_backends
from ._base import Pool
from ._buffers import Buffer, BufferPool
from ._errors import (
    BackendUnavailable,
    OwnershipError,
    PoolError,
    PoolExhausted,
    PoolLeakWarning,
    PoolShutDown,
    ReleasedError,
    SharedBlockCorrupted,
)
from ._guard import Pooled
from ._records import AcquireSite, Holder
from ._stats import PoolStats
from ._version import __version__ as __version__

__all__ = [
    "AcquireSite",
    "AsyncAcquisition",
    "BackendUnavailable",
    "Buffer",
    "BufferPool",
    "Holder",
    "OwnershipError",
    "Pool",
    "PoolError",
    "PoolExhausted",
    "PoolLeakWarning",
    "PoolShutDown",
    "PoolStats",
    "Pooled",
    "ReleasedError",
    "SharedBlockCorrupted",
    "available_backends",
]
