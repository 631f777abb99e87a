"""The thread-safe pool: one acquiring thread, any number of releasing threads.

The same classes as ``nexus_pool.Pool`` and ``nexus_pool.Pooled``; this module mirrors
the Rust crate's ``nexus_pool::sync``.
"""

from ._base import Pool
from ._guard import Pooled

__all__ = ["Pool", "Pooled"]
