"""Zero-copy buffer pools shared with worker processes (Linux). See ``_shared.py``."""

from ._shared import (
    Handle,
    ProducerGone,
    SharedBlockCorrupted,
    SharedBufferPool,
    SharedLease,
    handles,
    producer_alive,
    receive,
    remove_orphans,
    shared_unavailable,
)

__all__ = [
    "Handle",
    "ProducerGone",
    "SharedBlockCorrupted",
    "SharedBufferPool",
    "SharedLease",
    "handles",
    "producer_alive",
    "receive",
    "remove_orphans",
    "shared_unavailable",
]
