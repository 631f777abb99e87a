"""Putting a blocked acquirer to sleep until a push, for backends whose pushes never block.

Protocol, with no lost wake-up: the sleeper *announces* itself (a counter the backend
keeps), then pops once more, then sleeps on a token queue. A push makes its slot
visible, then reads the counter and, if anyone is announced, leaves a token. The
backend orders the announcement before the last pop and the push before its read of
the counter (a seq_cst atomic, or the deque's own lock), so either that last pop sees
the slot or the push sees the sleeper.

Tokens travel through a :class:`queue.SimpleQueue`, not a ``threading.Condition``:
``push`` can run inside a finalizer (a guard collected without ``release()``), and
finalizers run between any two bytecodes of whatever the thread was doing, possibly
inside this very wait. ``SimpleQueue.put`` is documented as reentrant for exactly that;
a Condition's lock would deadlock against its own thread. A token left by a push whose
slot someone already took costs the sleeper one more turn of its loop, nothing else.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from time import monotonic
from typing import final

from ._contract import EMPTY

__all__ = ["Wakeup"]


@final
class Wakeup:
    """A token queue plus the sleep loop; ``announce(+1/-1)`` maintains the sleeper count."""

    def __init__(self, announce: Callable[[int], object]) -> None:
        self._announce = announce
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def wake(self) -> None:
        """Called by a push that saw a sleeper announced; safe inside finalizers."""
        self._tokens.put(None)

    def pop_wait(self, pop: Callable[[], int], timeout: float | None) -> int:
        """``pop()`` until it gives a slot, sleeping between tries; EMPTY after ``timeout``."""
        deadline = None if timeout is None else monotonic() + timeout
        self._announce(1)
        try:
            while (slot := pop()) == EMPTY:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    self._tokens.get(timeout=remaining)
                except queue.Empty:
                    pass
            return slot
        finally:
            self._announce(-1)
