"""nexus_pool: a typed object pool where one thread acquires and any thread releases.

>>> from nexus_pool import Pool
>>> pool = Pool(4, bytearray, bytearray.clear)
>>> with pool.acquire() as buf:
...     buf += b"hello"
>>> pool.available()
4
"""

from . import _facade  # installs the maker that Pool(...) calls: which facade serves a pool
from ._async import AsyncAcquisition
from ._backends import available_backends
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
from ._holders import AcquireSite, Holder
from ._base import Pool, Pooled
from ._stats import PoolStats

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

__version__ = "0.1.0"
