"""``atomic``: the lock-free C free list (``backends/nexus_pool_freelist.c``) via cffi.

This is the one module that touches the compiled module's ``ffi`` and ``lib``. The C
Treiber stack decides which slot is free and which comes out next; pop and push are one
compare-and-swap each, take no Python lock, and on free-threaded builds run in parallel
on every returner thread. The leases of free slots wait in a dict keyed by slot.

``take`` chains the C pop and the dict pop with ``map``, so that the popped index never
sits in a Python variable: both run inside one ``next()`` of the ``map``, with no
bytecode in between (see the contract: ownership moves in one step).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Final, final

from .._errors import BackendUnavailable, ReleasedError
from ._contract import FreeList, LeaseT

if TYPE_CHECKING:
    from .._freelist_native import _FFI, _Lib


def _load() -> tuple[_FFI | None, _Lib | None, str, int]:
    """The cffi module's ``ffi`` and ``lib`` (None if it cannot load here, and why), and
    the largest capacity. The native facade links the same C free list: where only it
    loads (an isolated subinterpreter cannot load cffi's single-phase modules), the
    backend serves native pools, and pure-Python ones say why they cannot have it."""
    try:
        from .._freelist_native import ffi, lib
    except ImportError as exc:
        cffi_missing = (
            f"its compiled module is missing or cannot load in this interpreter ({exc}); pip builds "
            "it at install time, which needs a C compiler and cffi"
        )
    else:
        return ffi, lib, "", lib.nxp_max_capacity()
    try:
        from .._native import MAX_CAPACITY
    except ImportError:  # the registry turns this into BackendUnavailable
        raise ImportError(cffi_missing) from None
    return None, None, cffi_missing, MAX_CAPACITY


_ffi, _lib, _cffi_missing, _max_capacity = _load()

__all__ = ["AtomicFreeList", "backend_class"]

_NOT_LEASED: Final = -1


@final
class AtomicFreeList(FreeList[LeaseT]):
    """A tagged Treiber stack of slot indices in C memory, and the free slots' leases."""

    name = "atomic"
    max_capacity = _max_capacity
    native = True  # the native facade links the same C free list
    pure_unavailable: Final = _cffi_missing
    """Why pure-Python pools cannot use this backend here (native ones can); empty if they can."""

    def __init__(self, leases: Sequence[LeaseT]) -> None:
        if _ffi is None or _lib is None:
            raise BackendUnavailable(f"backend 'atomic' cannot serve a pure-Python pool here: {_cffi_missing}")
        ffi, lib = _ffi, _lib
        raw = lib.nxp_create(len(leases))
        if raw == ffi.NULL:
            raise MemoryError(f"cannot allocate a free list of {len(leases)} slots")
        self._list = ffi.gc(raw, lib.nxp_destroy)  # freed with the last reference
        parked = {lease.slot: lease for lease in leases}
        # A ticket is an address inside self._list; give (a closure over this object's
        # members, below) is the only user, and keeps the list alive with the pool.
        tickets = [lib.nxp_ticket(self._list, lease.slot) for lease in leases]
        push = lib.nxp_push
        # nxp_pop gives -1 when the stack is empty; the dict has no key -1: KeyError.
        self.take = partial(next, map(parked.pop, map(lib.nxp_pop, repeat(self._list))))

        def give(lease: LeaseT) -> int:
            # Park, then push: once pushed, the slot can be taken at once, and take pops
            # the dict. Nothing may separate the two: no call (a signal handler can run
            # right after one), and no line (a tracer can raise at every line).
            parked[lease.slot] = lease; return push(tickets[lease.slot])  # noqa: E702  # fmt: skip

        self.give = give
        self._parked = parked
        self._available = lib.nxp_available

    def settle(self, lease: LeaseT, status: object) -> None:
        if status == _NOT_LEASED:
            raise ReleasedError(f"slot {lease.slot} was given back while free; the C free list refused it")
        super().settle(lease, status)

    def available(self) -> int:
        return int(self._available(self._list))


backend_class = AtomicFreeList
