"""``locked``: the pure-Python reference backend, correct with and without the GIL.

The free leases sit in a :class:`collections.deque` used as a stack. Its ``append`` and
``pop`` are documented as thread-safe: the GIL makes each one atomic, and on
free-threaded builds the deque takes its own per-object lock. So ``take`` and ``give``
are the deque's own C methods: one step each, no lock of ours, no bytecode in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import final

from ._contract import FreeList, LeaseT

__all__ = ["LockedFreeList", "backend_class"]


@final
class LockedFreeList(FreeList[LeaseT]):
    """A deque stack of free leases."""

    name = "locked"

    def __init__(self, leases: Sequence[LeaseT]) -> None:
        # Reversed, so that the first takes come out in slot order.
        self._free = deque(reversed(leases))
        self.take = self._free.pop  # IndexError (a LookupError) when empty
        self.give = self._free.append

    def available(self) -> int:
        return len(self._free)

    def free_leases(self) -> list[LeaseT]:
        """The free leases now (a copy; for the debug backend's leak report)."""
        return list(self._free)


backend_class = LockedFreeList
