"""Putting a blocked acquirer to sleep until a push, for backends whose pushes never block.

Protocol, with no lost wake-up and one wake-up per sleep:

* the sleeper *announces* itself, pops once more, and only then sleeps on a token;
* a push makes its slot visible, then looks for an announcement; if there is one, it
  *takes it over* (an atomic decrement-if-positive, so exactly one push per
  announcement) and leaves one token.

The backend orders the announcement before that last pop, and the push before its look
(seq_cst atomics, or the deque's own lock), so either the pop sees the slot or the push
sees the sleeper. After a burst of returns the acquirer is woken once, not once per
return, and returners that find no announcement pay nothing.

Tokens travel through a :class:`queue.SimpleQueue`, not a ``threading.Condition``:
``push`` can run inside a finalizer (a guard collected without ``release()``), and
finalizers run between any two bytecodes of whatever the thread was doing, possibly
inside this very wait. ``SimpleQueue.put`` is documented as reentrant for exactly that;
a Condition's lock would deadlock against its own thread. A token whose announcement
was withdrawn too late just makes a later sleep return early, once.
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
    """The token queue and the sleep loop, over a backend's announce/retract pair."""

    def __init__(self, announce: Callable[[], object], retract: Callable[[], object]) -> None:
        self._announce = announce
        self._retract = retract  # withdraws an announcement no push took over yet
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def wake(self) -> None:
        """Called by the push that took an announcement over; safe inside finalizers."""
        self._tokens.put(None)

    def pop_wait(self, pop: Callable[[], int], timeout: float | None) -> int:
        """``pop()`` until it gives a slot, sleeping between tries; EMPTY after ``timeout``."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            self._announce()
            slot = pop()
            if slot != EMPTY:
                self._retract()
                return slot
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                self._retract()
                return EMPTY
            try:
                self._tokens.get(timeout=remaining)
            except queue.Empty:
                self._retract()
