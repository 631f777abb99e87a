"""``locked``: the pure-Python reference backend, correct with and without the GIL.

The free list is a :class:`collections.deque` of slot indices used as a stack. Its
``append`` and ``pop`` are documented as thread-safe: the GIL makes each one atomic, and
on free-threaded builds the deque takes its own per-object lock. So the hot path takes no
lock of ours.

Waking a blocked acquirer goes through a :class:`queue.SimpleQueue`, not a
``threading.Condition``: ``push`` can run inside a finalizer (a guard collected without
``release()``), and finalizers run between any two bytecodes of whatever the thread was
doing, possibly inside our own wait. ``SimpleQueue.put`` is documented as reentrant for
exactly that; a Condition's lock would deadlock against its own thread, and a wake-up
sent by the waiting thread to itself would be lost.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from time import monotonic
from typing import final

from ._contract import EMPTY, FreeList

__all__ = ["LockedFreeList", "backend_class"]


@final
class LockedFreeList(FreeList):
    """A deque stack of free slot indices; a token queue to wake a blocked acquirer."""

    name = "locked"

    def __init__(self, capacity: int) -> None:
        # Reversed, so that the first pops come out 0, 1, 2, ...
        self._free = deque(range(capacity - 1, -1, -1))
        self._wakeups: queue.SimpleQueue[None] = queue.SimpleQueue()
        # Acquirers inside pop_wait; changed under _sleepers_lock, read by push without
        # it. That read cannot miss a sleeper: the sleeper counts itself in *before* its
        # last pop, push reads *after* its append, and the deque serialises that pop and
        # that append (GIL or its own lock): either the pop sees the slot or the push
        # sees the count and leaves a wake-up token.
        self._sleepers = 0
        self._sleepers_lock = threading.Lock()
        self.tickets = range(capacity)

    def pop(self) -> int:
        try:
            return self._free.pop()
        except IndexError:
            return EMPTY

    def push(self, ticket: int) -> int:
        self._free.append(ticket)
        if self._sleepers:
            self._wakeups.put(None)
        return 0

    def pop_wait(self, timeout: float | None) -> int:
        deadline = None if timeout is None else monotonic() + timeout
        with self._sleepers_lock:
            self._sleepers += 1
        try:
            while (slot := self.pop()) == EMPTY:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    # A token may be stale (left by a push whose slot was already
                    # taken): that only costs one more turn of this loop.
                    self._wakeups.get(timeout=remaining)
                except queue.Empty:
                    pass
            return slot
        finally:
            with self._sleepers_lock:
                self._sleepers -= 1

    def available(self) -> int:
        return len(self._free)


backend_class = LockedFreeList
