"""``locked``: the pure-Python reference backend, correct with and without the GIL.

The free list is a :class:`collections.deque` of slot indices used as a stack. Its
``append`` and ``pop`` are documented as thread-safe: the GIL makes each one atomic, and
on free-threaded builds the deque takes its own per-object lock. So the hot path takes no
lock of ours. A :class:`threading.Condition` is used only when the acquirer must sleep.
"""

from __future__ import annotations

import threading
from collections import deque
from time import monotonic
from typing import final

from ._contract import EMPTY, FreeList

__all__ = ["LockedFreeList", "backend_class"]


@final
class LockedFreeList(FreeList):
    """A deque stack of free slot indices; a condition variable for blocking acquires."""

    name = "locked"

    def __init__(self, capacity: int) -> None:
        # Reversed, so that the first pops come out 0, 1, 2, ...
        self._free = deque(range(capacity - 1, -1, -1))
        self._wakeup = threading.Condition(threading.Lock())
        # Acquirers inside pop_wait. Written only under _wakeup's lock; read by push
        # without it. That read cannot miss a sleeper: the sleeper counts itself in
        # *before* its last pop, and push reads *after* its append, and both of those
        # deque operations are serialised by the deque (GIL or its own lock), so either
        # the pop sees the pushed slot or the push sees the count.
        self._sleepers = 0
        self.tickets = range(capacity)

    def pop(self) -> int:
        try:
            return self._free.pop()
        except IndexError:
            return EMPTY

    def push(self, ticket: int) -> int:
        self._free.append(ticket)
        if self._sleepers:
            with self._wakeup:
                self._wakeup.notify()
        return 0

    def pop_wait(self, timeout: float | None) -> int:
        deadline = None if timeout is None else monotonic() + timeout
        with self._wakeup:
            self._sleepers += 1
            try:
                while True:
                    slot = self.pop()
                    if slot != EMPTY:
                        return slot
                    if deadline is None:
                        self._wakeup.wait()
                        continue
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        return EMPTY
                    self._wakeup.wait(remaining)
            finally:
                self._sleepers -= 1

    def available(self) -> int:
        return len(self._free)


backend_class = LockedFreeList
