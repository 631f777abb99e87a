"""``locked``: the pure-Python reference backend, correct with and without the GIL.

The free list is a :class:`collections.deque` of slot indices used as a stack. Its
``append`` and ``pop`` are documented as thread-safe: the GIL makes each one atomic, and
on free-threaded builds the deque takes its own per-object lock. So the hot path takes no
lock of ours; a blocked acquirer sleeps as ``_wakeup.py`` describes.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import final

from ._contract import EMPTY, FreeList
from ._wakeup import Wakeup

__all__ = ["LockedFreeList", "backend_class"]


@final
class LockedFreeList(FreeList):
    """A deque stack of free slot indices."""

    name = "locked"

    def __init__(self, capacity: int) -> None:
        # Reversed, so that the first pops come out 0, 1, 2, ...
        self._free = deque(range(capacity - 1, -1, -1))
        # Acquirers asleep in pop_wait; changed under _sleepers_lock, read by push
        # without it. The deque serialises the sleeper's last pop and a push's append,
        # which is the ordering the wake-up protocol needs.
        self._sleepers = 0
        self._sleepers_lock = threading.Lock()
        self._wakeup = Wakeup(self._count_sleeper)
        self.tickets = range(capacity)

    def pop(self) -> int:
        try:
            return self._free.pop()
        except IndexError:
            return EMPTY

    def push(self, ticket: int) -> int:
        self._free.append(ticket)
        if self._sleepers:
            self._wakeup.wake()
        return 0

    def pop_wait(self, timeout: float | None) -> int:
        return self._wakeup.pop_wait(self.pop, timeout)

    def _count_sleeper(self, delta: int) -> None:
        with self._sleepers_lock:
            self._sleepers += delta

    def available(self) -> int:
        return len(self._free)


backend_class = LockedFreeList
