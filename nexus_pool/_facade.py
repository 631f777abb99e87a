"""Which implementation ("facade") serves each new pool.

:class:`~nexus_pool.Pool` and :class:`~nexus_pool.Pooled` (``_base.py``) have two
implementations, with identical behaviour:

* the **native facade** (``nexus_pool._native``, C extension types over the lock-free
  free list, ``backends/nexus_pool_native.c``): acquire and release run no bytecode. It
  serves the ``atomic`` backend, the default wherever it loads;
* the **pure-Python facade** (``_pool.py``, the readable reference): every backend, and
  everything when the native one cannot load (no compiler, PyPy) or when the environment
  variable ``NEXUS_POOL_PURE`` is set to ``1``.

``Pool(...)`` checks its arguments and picks the backend (``_base.py``), then calls the
maker this module installs, which picks the facade; ``pool.facade`` says which it is.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

from . import _base
from ._backends import select
from ._backends._contract import FreeList
from ._base import Pool, PoolKind, check_capacity
from ._holders import check_track, check_warn_after
from ._pool import PureBufferPool, PurePool

__all__ = [
    "FACADES",
    "PURE_ENV_VAR",
    "facade_for",
    "native_enabled",
    "native_unavailable",
    "pool_on",
]

T = TypeVar("T")

PURE_ENV_VAR: Final = "NEXUS_POOL_PURE"
"""``NEXUS_POOL_PURE=1`` makes every new pool a pure-Python one."""

FACADES: Final = ("native", "pure")


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


def _create(
    facade: str,
    kind: PoolKind,
    capacity: int,
    factory: Callable[[], T],
    reset: Callable[[T], object] | None,
    freelist_class: type[FreeList[Any]],
    sample_period: int,
    warn_after: float,
) -> Pool[T]:
    # The native facade takes the backend's name (it has its own free list); the pure one
    # the backend's class.
    backend = freelist_class.name if facade == "native" else freelist_class
    pool: Pool[T] = _IMPLEMENTATIONS[facade, kind]._create(capacity, factory, reset, backend, sample_period, warn_after)
    return pool


def _make(
    kind: PoolKind,
    capacity: int,
    factory: Callable[[], T],
    reset: Callable[[T], object] | None,
    freelist_class: type[FreeList[Any]],
    sample_period: int,
    warn_after: float,
) -> Pool[T]:
    return _create(facade_for(freelist_class), kind, capacity, factory, reset, freelist_class, sample_period, warn_after)


_base.install_maker(_make)


def pool_on(
    facade: str,
    capacity: int,
    factory: Callable[[], T],
    reset: Callable[[T], object] | None = None,
    *,
    backend: str,
    track: Literal["off", "sampled", "every"] | None = None,
) -> Pool[T]:
    """A pool on the named facade, whatever ``NEXUS_POOL_PURE`` says (for the benchmark)."""
    freelist_class = select(backend)
    if facade == "native" and not (freelist_class.native and _native is not None):
        raise ValueError(f"the native facade does not serve backend {backend!r} here")
    if facade not in FACADES:
        raise ValueError(f"unknown facade {facade!r}; valid names are: {', '.join(FACADES)}")
    pool: Pool[T] = Pool(capacity, factory, reset, backend=backend, track=track)  # checks the arguments
    if pool.facade == facade:
        return pool
    period = 1 if freelist_class.name == "debug" else check_track(track)
    return _create(
        facade, "pool", check_capacity(capacity), factory, reset, freelist_class, period, check_warn_after(None)
    )


def native_enabled() -> bool:
    """Whether the native facade serves new pools: it loads, and ``NEXUS_POOL_PURE`` is not set."""
    return _native is not None and os.environ.get(PURE_ENV_VAR, "").strip() not in {"1", "true", "yes"}


def facade_for(freelist_class: type[FreeList[Any]]) -> str:
    """``"native"`` or ``"pure"``: which facade serves a new pool of this backend."""
    return "native" if freelist_class.native and native_enabled() else "pure"
