"""Zero-copy buffer pools shared with worker processes (Linux). See ``_shared.py``."""

from ._shared import (
    Handle,
    SharedBufferPool,
    SharedLease,
    producer_alive,
    receive,
    remove_orphans,
    shared_unavailable,
)

__all__ = [
    "Handle",
    "SharedBufferPool",
    "SharedLease",
    "producer_alive",
    "receive",
    "remove_orphans",
    "shared_unavailable",
]
