"""``debug``: the ``locked`` free list plus checks that name the misuse and where it happened.

* Ownership, Python's stand-in for Rust's ``Send + !Sync``: the first thread that acquires
  owns the pool; another live thread acquiring gets :class:`~nexus_pool.OwnershipError`
  naming both threads. Ownership moves on ``pool.handoff()`` or when the owner finishes.
  The check and the change of owner happen under one lock, so two threads racing for a
  free pool cannot both win (trio's ``ConflictDetector``, made atomic for threads).
* Double release and use after release: the facade asks this backend where the first
  release happened and puts it in the :class:`~nexus_pool.ReleasedError`.
* A guard returned by garbage collection instead of ``release()``/``with``: a
  ``ResourceWarning`` located at the line that acquired it, as for unclosed files.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from types import FrameType
from typing import NamedTuple, final

from .._errors import OwnershipError
from ._contract import EMPTY, FreeList
from .locked import LockedFreeList

__all__ = ["DebugFreeList", "backend_class"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _Site(NamedTuple):
    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


_UNKNOWN_SITE = _Site("<unknown>", 0, "<unknown>")


def _caller_site() -> _Site:
    """The innermost frame outside nexus_pool: the user's line that called into the pool."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return _UNKNOWN_SITE
    return _Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _describe(thread: threading.Thread) -> str:
    return f"{thread.name!r} (ident {thread.ident})"


@final
class DebugFreeList(FreeList):
    """``locked`` with ownership, release-site and leak checks."""

    name = "debug"

    def __init__(self, capacity: int) -> None:
        self._inner = LockedFreeList(capacity)
        self.tickets = self._inner.tickets
        self.push = self._inner.push
        self._owner_lock = threading.Lock()
        self._owner: threading.Thread | None = None
        self._acquired_at = [_UNKNOWN_SITE] * capacity
        self.watcher = self

    def _take_ownership(self) -> None:
        me = threading.current_thread()
        with self._owner_lock:
            owner = self._owner
            if owner is me:
                return
            if owner is None or not owner.is_alive():
                self._owner = me
                return
        raise OwnershipError(
            f"thread {_describe(me)} tried to acquire from a pool owned by thread "
            f"{_describe(owner)}. A pool has one acquiring thread at a time; the owner "
            "passes it on by calling pool.handoff() (ownership also moves when the owning "
            "thread finishes). Releasing guards is allowed from any thread."
        )

    def _record(self, slot: int) -> int:
        if slot != EMPTY:
            self._acquired_at[slot] = _caller_site()
        return slot

    def pop(self) -> int:
        self._take_ownership()
        return self._record(self._inner.pop())

    def pop_wait(self, timeout: float | None) -> int:
        self._take_ownership()
        return self._record(self._inner.pop_wait(timeout))

    def available(self) -> int:
        return self._inner.available()

    def handoff(self) -> None:
        me = threading.current_thread()
        with self._owner_lock:
            owner = self._owner
            if owner is None or owner is me or not owner.is_alive():
                self._owner = None
                return
        raise OwnershipError(
            f"thread {_describe(me)} called handoff() on a pool owned by thread "
            f"{_describe(owner)}; only the owner can hand the pool over"
        )

    # LeaseWatcher

    def released(self, slot: int) -> str:
        return str(_caller_site())

    def collected(self, slot: int) -> None:
        site = self._acquired_at[slot]
        warnings.warn_explicit(
            f"a Pooled guard (slot {slot}) was returned to its pool by garbage collection, "
            f"not by release() or a with block; it was acquired at {site}",
            ResourceWarning,
            filename=site.filename,
            lineno=site.lineno,
        )


backend_class = DebugFreeList
