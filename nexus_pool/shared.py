"""Zero-copy buffer pools shared with worker processes (Linux). See ``_shared.py``."""

from ._errors import ProducerGone, SharedBlockCorrupted
from ._records import SharedHolder
from ._shared import (
    Handle,
    SharedBufferPool,
    handles,
    producer_alive,
    receive,
    receiver,
    remove_orphans,
    shared_unavailable,
)

try:
    from ._shared_native import SharedBuffer, SharedLease, WorkQueue
except ImportError:  # shared_unavailable() says why; SharedBufferPool(...) raises it
    pass

__all__ = [
    "Handle",
    "ProducerGone",
    "SharedBlockCorrupted",
    "SharedBuffer",
    "SharedBufferPool",
    "SharedHolder",
    "SharedLease",
    "WorkQueue",
    "handles",
    "producer_alive",
    "receive",
    "receiver",
    "remove_orphans",
    "shared_unavailable",
]


if __name__ == "__main__":  # python -m nexus_pool.shared list | inspect NAME | remove-orphans
    from ._shared_cli import main

    raise SystemExit(main())
