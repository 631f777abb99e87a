"""``atomic``: the lock-free C free list (``backends/nexus_pool_freelist.c``) via cffi.

This is the one module that touches the compiled module's ``ffi`` and ``lib``. The hot
path is one C call per acquire (``nxp_pop``, bound to this list by a ``partial``) and
one per release (``nxp_push``, whose single argument, the ticket, locates both the list
and the slot); neither takes a Python lock, and on free-threaded builds returner threads
push in parallel. A blocked acquirer sleeps as ``_wakeup.py`` describes; the C side
keeps the sleeper count and tells each push whether to wake it.
"""

from __future__ import annotations

from functools import partial
from typing import Final, final

from .._errors import ReleasedError
from ._contract import FreeList
from ._wakeup import Wakeup

try:
    from .._freelist_native import ffi, lib
except ImportError as exc:  # the registry turns this into BackendUnavailable
    raise ImportError(
        f"its compiled module is missing ({exc}); pip builds it at install time, "
        "which needs a C compiler and cffi"
    ) from exc

__all__ = ["AtomicFreeList", "backend_class"]

_WAKE_SLEEPER: Final = 1
_NOT_LEASED: Final = -1


@final
class AtomicFreeList(FreeList):
    """A tagged Treiber stack of slot indices in C memory."""

    name = "atomic"
    max_capacity = lib.nxp_max_capacity()

    def __init__(self, capacity: int) -> None:
        raw = lib.nxp_create(capacity)
        if raw == ffi.NULL:
            raise MemoryError(f"cannot allocate a free list of {capacity} slots")
        self._list = ffi.gc(raw, lib.nxp_destroy)  # freed with the last reference
        self.pop = partial(lib.nxp_pop, self._list)
        self.push = lib.nxp_push
        # Tickets are addresses inside self._list: valid while this object lives,
        # which the facade ensures by keeping it as long as any guard.
        self.tickets = [lib.nxp_ticket(self._list, slot) for slot in range(capacity)]
        self._wakeup = Wakeup(
            partial(lib.nxp_sleeper_announce, self._list), partial(lib.nxp_sleeper_retract, self._list)
        )

    def pop_wait(self, timeout: float | None) -> int:
        return self._wakeup.pop_wait(self.pop, timeout)

    def settle(self, ticket: int, status: int) -> None:
        if status == _WAKE_SLEEPER:
            self._wakeup.wake()
        elif status == _NOT_LEASED:
            raise ReleasedError(f"slot {self.tickets.index(ticket)} was pushed while free; the push was refused")
        else:
            super().settle(ticket, status)

    def available(self) -> int:
        return int(lib.nxp_available(self._list))


backend_class = AtomicFreeList
