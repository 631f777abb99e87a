"""Zero-copy buffer pools shared with worker processes (Linux). See ``_shared.py``."""

from ._shared import (
    Handle,
    ProducerGone,
    SharedBlockCorrupted,
    SharedBufferPool,
    SharedHolder,
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
    "SharedHolder",
    "SharedLease",
    "handles",
    "producer_alive",
    "receive",
    "remove_orphans",
    "shared_unavailable",
]

if __name__ == "__main__":  # python -m nexus_pool.shared list | inspect NAME | remove-orphans
    from ._shared_cli import main

    raise SystemExit(main())
