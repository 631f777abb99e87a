"""What travels to a worker process for one shared buffer (``nexus_pool.shared.Handle``).

Its own module, which imports nothing of the package: the compiled module
(``_shared_native``) makes handles, and ``_shared.py`` imports that module.
"""

from __future__ import annotations

from typing import NamedTuple, final

__all__ = ["Handle"]


@final
class Handle(NamedTuple):
    """Which block, which slot, which lease of the slot (a tuple: the cheapest thing to
    pickle). A stale, duplicate or foreign handle is refused by ``receive``."""

    name: str
    slot: int
    generation: int
