"""``locked``: the pure-Python reference backend, correct with and without the GIL.

The free list is a :class:`collections.deque` of slot indices used as a stack. Its
``append`` and ``pop`` are documented as thread-safe: the GIL makes each one atomic, and
on free-threaded builds the deque takes its own per-object lock. So the hot path takes no
lock of ours; a blocked acquirer sleeps as ``_wakeup.py`` describes.
"""

from __future__ import annotations

from collections import deque
from functools import partial
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
        # One item per announced sleeper. list.append and list.pop are atomic, so a push
        # takes an announcement over with pop(), and exactly one push gets each. The
        # deque serialises the sleeper's last pop and a push's append, which orders
        # the announcement and the push as the wake-up protocol needs.
        self._announced: list[None] = []
        self._wakeup = Wakeup(partial(self._announced.append, None), self._retract)
        self.tickets = range(capacity)

    def pop(self) -> int:
        try:
            return self._free.pop()
        except IndexError:
            return EMPTY

    def push(self, ticket: int) -> int:
        self._free.append(ticket)
        if self._announced and self._retract():
            self._wakeup.wake()
        return 0

    def pop_wait(self, timeout: float | None) -> int:
        return self._wakeup.pop_wait(self.pop, timeout)

    def _retract(self) -> bool:
        """Take one announcement off (a sleeper withdrawing, or a push taking it over)."""
        try:
            self._announced.pop()
        except IndexError:
            return False
        return True

    def available(self) -> int:
        return len(self._free)


backend_class = LockedFreeList
