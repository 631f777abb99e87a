"""Which implementation ("facade") serves each new pool.

:class:`~nexus_pool.Pool` and :class:`~nexus_pool.Pooled` (``_base.py``) have two
implementations, with identical behaviour:

* the **native facade** (``nexus_pool._native``, C extension types over the lock-free
  free list, ``backends/nexus_pool_native.c``): acquire and release run no bytecode. It
  serves the ``atomic`` backend, the default wherever it loads;
* the **pure-Python facade** (``_pool.py``, the readable reference): every backend, and
  everything when the native one cannot load (no compiler, PyPy) or when the environment
  variable ``NEXUS_POOL_PURE`` is set to ``1``.

``Pool(...)`` checks its arguments (``_base.py``), then calls the maker this module
installs, which picks the backend (the registry, ``_backends``, knows the names; the default
depends on which facade loads, so it is chosen here) and the facade; ``pool.facade`` says
which it is.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ._backends import backend_class, requested
from ._backends._contract import FreeList
from ._base import Pool, PoolKind, install_maker
from ._errors import BackendUnavailable
from ._pool import PureBufferPool, PurePool

__all__ = [
    "PURE_ENV_VAR",
    "default_backend",
    "facade_for",
    "native_enabled",
    "native_unavailable",
    "select",
]

T = TypeVar("T")

PURE_ENV_VAR: Final = "NEXUS_POOL_PURE"
"""``NEXUS_POOL_PURE=1`` makes every new pool a pure-Python one."""


def _load_native() -> tuple[Any, str]:
    """The native module, or None and why it cannot load here."""
    if platform.python_implementation() != "CPython":
        return None, f"it is for CPython, this is {platform.python_implementation()}"
    try:
        from . import _native
    except ImportError as exc:
        return None, (
            f"its compiled module is missing ({exc}); pip builds it at install time, which "
            "needs a C compiler (see `python -m nexus_pool`)"
        )
    return _native, ""


_native, _native_missing = _load_native()

_IMPLEMENTATIONS: Final[dict[tuple[str, PoolKind], Any]] = {
    ("pure", "pool"): PurePool,
    ("pure", "buffers"): PureBufferPool,
    **({("native", "pool"): _native.Pool, ("native", "buffers"): _native.BufferPool} if _native else {}),
}
"""The class that makes each kind of pool on each facade (all with a ``_create``)."""


def native_unavailable() -> str:
    """Why the native facade cannot serve pools here; empty if it can."""
    return _native_missing


def _make(
    kind: PoolKind,
    capacity: int,
    factory: Callable[[], T],
    reset: Callable[[T], object] | None,
    backend: str | None,
    sample_period: int,
    warn_after: float,
) -> Pool[T]:
    freelist_class = select(backend)
    if capacity > freelist_class.max_capacity:
        raise ValueError(
            f"capacity must be <= {freelist_class.max_capacity} for backend {freelist_class.name!r}, got {capacity}"
        )
    if freelist_class.name == "debug":
        sample_period = 1  # debug records every acquire site, whatever track says
    facade = facade_for(freelist_class)
    # The native facade takes the backend's name (it has its own free list); the pure one
    # the backend's class.
    named = freelist_class.name if facade == "native" else freelist_class
    pool: Pool[T] = _IMPLEMENTATIONS[facade, kind]._create(capacity, factory, reset, named, sample_period, warn_after)
    return pool


install_maker(_make)


def default_backend() -> str:
    """The backend used when neither ``backend=`` nor the environment names one.

    The fastest on this interpreter, as measured by ``python -m nexus_pool.bench`` (the
    documentation's Performance page): ``atomic`` where the native facade serves it, ``locked``
    on the pure-Python facade. There, since slots are owned by lease objects
    (``_slots.py``), ``locked`` gives a lease back with one deque append, where ``atomic``
    parks it in a dict and pushes its slot from a Python function: ``locked`` measured
    807 vs 1315 ns per cycle on CPython 3.11 and 0.9-1.0 vs 2.5-2.7 us on 3.14t.
    """
    try:
        atomic = backend_class("atomic")
    except BackendUnavailable:
        return "locked"
    return "atomic" if facade_for(atomic) == "native" else "locked"


def select(backend: object) -> type[FreeList[Any]]:
    """The free-list class for a new pool: ``backend=`` argument, then environment, then default."""
    return requested(backend) or backend_class(default_backend())


def native_enabled() -> bool:
    """Whether the native facade serves new pools: it loads, and ``NEXUS_POOL_PURE`` is not set."""
    return _native is not None and os.environ.get(PURE_ENV_VAR, "").strip() not in {"1", "true", "yes"}


def facade_for(freelist_class: type[FreeList[Any]]) -> str:
    """``"native"`` or ``"pure"``: which facade serves a new pool of this backend."""
    return "native" if freelist_class.native and native_enabled() else "pure"
