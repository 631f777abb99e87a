"""``debug``: the ``locked`` free list plus checks that name the misuse and where it happened.

* Ownership, Python's stand-in for Rust's ``Send + !Sync``: the first thread that acquires
  owns the pool; another live thread acquiring gets :class:`~nexus_pool.OwnershipError`
  naming both threads. Ownership moves on ``pool.handoff()`` or when the owner finishes,
  however it was started (``threading``, ``_thread``, a C extension's thread).
* Double release and use after release: the facade asks this backend where the first
  release happened and puts it in the :class:`~nexus_pool.ReleasedError`.
* A guard returned by garbage collection instead of ``release()``/``with``: a
  ``ResourceWarning`` located at the line that acquired it, as for unclosed files.
* A guard never released at all: at interpreter exit, a :class:`~nexus_pool.PoolLeakWarning`
  (a ``ResourceWarning``) per slot still lent, located at the line that acquired it.

The ownership check takes no lock: a lock held by a thread that a ``KeyboardInterrupt``
cut short, or by a thread that vanished in ``os.fork()``, would hang every later
acquisition. Instead each change of owner claims the next entry of a dict with
``setdefault``, which one thread wins (trio's ``ConflictDetector``, made atomic for
threads without a lock). In the child of a fork, pools owned by threads that did not
survive the fork are handed to nobody (``os.register_at_fork``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from types import FrameType
from typing import Any, Final, NamedTuple, final

from .._errors import OwnershipError, PoolLeakWarning
from ._contract import FreeList, LeaseT
from .locked import LockedFreeList

__all__ = ["DebugFreeList", "backend_class"]

_INTERNAL_PREFIX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_")
"""nexus_pool's private modules (``_*.py``, ``_backends/``): a site is the first frame outside."""


class _Site(NamedTuple):
    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


_UNKNOWN_SITE: Final = _Site("<unknown>", 0, "<unknown>")


def _caller_site() -> _Site:
    """The innermost frame outside nexus_pool: the user's line that called into the pool."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL_PREFIX):
        frame = frame.f_back
    if frame is None:
        return _UNKNOWN_SITE
    return _Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


@final
class _ThreadToken:
    """Lives exactly as long as its thread.

    It is kept only in the thread's ``threading.local`` storage, which CPython clears
    when the thread ends, however it was started, and for every thread but the one that
    forked, in the child of ``os.fork()``.
    """

    __slots__ = ("__weakref__",)


_tokens = threading.local()


def _current_token() -> _ThreadToken:
    token: _ThreadToken | None = getattr(_tokens, "token", None)
    if token is None:
        token = _tokens.token = _ThreadToken()
    return token


@final
class _Owner(weakref.ref):  # type: ignore[type-arg]  # weakref.ref[_ThreadToken] is not subclassable on 3.10
    """A thread's ownership of a pool: dead once that thread has finished."""

    __slots__ = ("ident", "name")

    ident: int | None
    name: str

    def __str__(self) -> str:
        return f"{self.name!r} (ident {self.ident})"


def _claim() -> _Owner:
    owner = _Owner(_current_token())
    thread = threading.current_thread()
    owner.name, owner.ident = thread.name, thread.ident
    return owner


_PRUNED: Final = object()


@final
class _Watcher:
    """The LeaseWatcher of one debug pool: where guards were released, and leaks."""

    __slots__ = ("_acquired_at",)

    def __init__(self, acquired_at: list[_Site]) -> None:
        self._acquired_at = acquired_at  # filled in by DebugFreeList.take

    def released(self, slot: int) -> str:
        return str(_caller_site())

    def collected(self, slot: int) -> None:
        site = self._acquired_at[slot]
        # Called wherever the lease died (often inside the garbage collector): the
        # warning is located at the acquisition, not here.
        warnings.warn_explicit(
            f"a Pooled guard (slot {slot}) was returned to its pool by garbage collection, "
            f"not by release() or a with block; it was acquired at {site}",
            ResourceWarning,
            filename=site.filename,
            lineno=site.lineno,
        )


@final
class DebugFreeList(FreeList[LeaseT]):
    """``locked`` with ownership, release-site and leak checks."""

    name = "debug"

    def __init__(self, leases: Sequence[LeaseT]) -> None:
        self._inner = LockedFreeList(leases)
        self._inner_take = self._inner.take
        self.give = self._inner.give
        # _owners[epoch] is the owner in that epoch (None: nobody). A new owner claims
        # epoch + 1 with setdefault: of threads racing for a free pool, one wins.
        self._owners: dict[int, _Owner | None] = {0: None}
        self._epoch = 0  # the latest epoch; may lag behind _owners for an instant
        self._acquired_at = [_UNKNOWN_SITE] * len(leases)
        self._acquired_when = [0.0] * len(leases)
        self.watcher = _Watcher(self._acquired_at)  # not self: no reference cycle
        _live_lists.add(self)

    def available(self) -> int:
        return self._inner.available()

    def _current_owner(self) -> tuple[int, _Owner | None]:
        """The latest epoch and its owner (None when nobody owns the pool or its thread ended)."""
        epoch = self._epoch
        while True:
            owner = self._owners.get(epoch, _PRUNED)
            if owner is _PRUNED:  # raced with a change of owner: read again
                epoch = self._epoch
                continue
            later = self._owners.get(epoch + 1, _PRUNED)
            if later is not _PRUNED:  # _epoch lags behind a claim that just won
                epoch += 1
                continue
            assert owner is None or isinstance(owner, _Owner)
            return epoch, (owner if owner is not None and owner() is not None else None)

    def _move_ownership(self, epoch: int, new_owner: _Owner | None) -> _Owner | None:
        """Claim ``epoch + 1`` for ``new_owner``; the owner that won it (``new_owner`` or not)."""
        winner = self._owners.setdefault(epoch + 1, new_owner)
        if winner is new_owner:
            self._epoch = epoch + 1
            self._owners.pop(epoch - 1, None)  # keep the current and the previous epoch
        return winner

    def _take_ownership(self) -> None:
        me = _current_token()
        while True:
            epoch, owner = self._current_owner()
            if owner is not None:
                if owner() is me:
                    return
                raise OwnershipError(
                    f"thread {_claim()} tried to acquire from a pool owned by thread {owner}. "
                    "A pool has one acquiring thread at a time; the owner passes it on by "
                    "calling pool.handoff() (ownership also moves when the owning thread "
                    "finishes). Releasing guards is allowed from any thread."
                )
            claim = _claim()
            if self._move_ownership(epoch, claim) is claim:
                return

    def take(self) -> LeaseT:
        self._take_ownership()
        lease = self._inner_take()
        self._acquired_at[lease.slot] = _caller_site()
        self._acquired_when[lease.slot] = time.monotonic()
        return lease

    def _unreleased(self) -> list[tuple[int, _Site, float]]:
        """The slots lent now: each with where and how long ago it was acquired."""
        free = {lease.slot for lease in self._inner.free_leases()}
        now = time.monotonic()
        return [
            (slot, site, now - self._acquired_when[slot])
            for slot, site in enumerate(self._acquired_at)
            if slot not in free
        ]

    def handoff(self) -> None:
        me = _current_token()
        epoch, owner = self._current_owner()
        if owner is None:
            return  # nobody owns the pool: nothing to hand over
        if owner() is not me:
            raise OwnershipError(
                f"thread {_claim()} called handoff() on a pool owned by thread {owner}; "
                "only the owner can hand the pool over"
            )
        self._move_ownership(epoch, None)


_live_lists: weakref.WeakSet[DebugFreeList[Any]] = weakref.WeakSet()


def _forget_vanished_owners() -> None:
    """In the child of ``os.fork()`` only the forking thread exists.

    The other threads' frames are copied but never run or freed there, so a thread that
    owned a pool while inside an acquisition would keep its token (held by a frame)
    alive for ever: hand every pool the forking thread does not own to nobody.
    """
    me = _current_token()
    for freelist in list(_live_lists):
        epoch, owner = freelist._current_owner()
        if owner is not None and owner() is not me:
            freelist._move_ownership(epoch, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_vanished_owners)


@atexit.register
def _warn_about_unreleased_guards() -> None:
    """At interpreter exit: a PoolLeakWarning for each guard of a debug pool still out,
    located at the line that acquired it (as an unclosed file's ResourceWarning)."""
    for freelist in list(_live_lists):
        for slot, site, seconds in freelist._unreleased():
            warnings.warn_explicit(
                f"a Pooled guard (slot {slot}) was never released: it has been held for {seconds:.1f} s "
                f"since it was acquired at {site}",
                PoolLeakWarning,
                filename=site.filename,
                lineno=site.lineno,
            )


backend_class = DebugFreeList
