"""How an acquirer waits for a release, and how a release wakes it: the part of the pure
facade's machinery that the native facade (``backends/nexus_pool_native.c``) and the
asyncio acquirer (``_async.py``) share.

A blocked acquirer puts a token in its pool's waiting set, looks once more, and sleeps
on the pool's wake-up lock for at most :data:`WAIT_SLICE`; a release that finds a token
takes it and wakes its owner (:func:`wake_token`). An event loop's token is a callable
that schedules the wake-up on the loop.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Final, Generic, TypeVar, final

if TYPE_CHECKING:
    from _thread import LockType as Lock

__all__ = ["SHUTDOWN_MESSAGE", "WAIT_SLICE", "Waiter", "wait", "wake_token"]

SHUTDOWN_MESSAGE: Final = "this pool was shut down: it lends nothing more (releases are still accepted)"

WAIT_SLICE: Final = 0.005 if sysconfig.get_config_var("Py_GIL_DISABLED") else 0.05
"""How long a blocked acquirer sleeps at most before it looks again, in seconds.

A release that an exception interrupted between giving its slot back and waking the
acquirer loses that wake-up; the slice bounds the delay. On free-threaded builds it is
short for another reason: a guard dropped by a worker is often finalized by the thread
that made it, the acquirer (biased reference counting), and only when that thread runs
bytecode, so a sleeping acquirer must run now and then for such slots to come home."""

X = TypeVar("X")


def wake_token(token: object, wakeup: Lock) -> None:
    """Wake the acquirer that put ``token`` in its pool's waiting set.

    A thread blocked in ``acquire`` waits for ``wakeup`` (its token is a plain object);
    an event loop in ``acquire_async`` gives a callable token that schedules its wake-up
    (see ``_async.py``). The native facade does the same in C (``wake_waiter``).
    """
    if callable(token):
        try:
            token()
        except Exception:  # the loop closed: nobody is left to wake
            pass
        return
    try:
        wakeup.release()
    except RuntimeError:
        pass  # released already: a wake-up is pending anyway


@final
@dataclass(frozen=True, slots=True)
class Waiter(Generic[X]):
    """What ``acquire_async`` needs from a facade's pool (``pool._waiter()``)."""

    take: Callable[[], X | None]
    """A guard, or None when every slot is out; counts acquisitions, not exhaustions."""
    waiting: set[object]
    """The tokens of blocked acquirers; a release takes one and wakes its owner."""
    note_wait: Callable[[float], None]
    """Counts one exhaustion and the seconds waited, for ``stats()``."""


def wait(take: Callable[[], X | None], waiting: set[object], wakeup: Lock, timeout: float | None) -> X | None:
    """Call ``take()`` until it gives something, sleeping in between; ``None`` after ``timeout``.

    Both facades wait here (see ``Home.__init__`` on `waiting` and `wakeup`). Whatever
    ``take`` returns must bring its slot back if it is dropped: an exception can land
    right after the call.
    """
    deadline = None if timeout is None else monotonic() + timeout
    token = object()
    try:
        while True:
            waiting.add(token)  # before looking: a release after this look wakes us
            found = take()
            if found is not None:
                return found
            if deadline is None:
                wakeup.acquire(timeout=WAIT_SLICE)
            else:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return None
                wakeup.acquire(timeout=min(remaining, WAIT_SLICE))
    finally:
        waiting.discard(token)
