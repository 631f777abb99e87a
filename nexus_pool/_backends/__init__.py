"""The backend registry: known names, lazy loading, and the backend a pool asks for.

Adding a backend is one module in this package that defines ``backend_class`` (a
:class:`~nexus_pool._backends._contract.FreeList` subclass) plus its name in
:data:`BACKENDS`. Nothing else changes: not the facade, not the conformance suite.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Final

from .._errors import BackendUnavailable
from ._contract import FreeList

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "available_backends",
    "backend_class",
    "requested",
    "unavailable_backends",
]

BACKENDS: Final = ("atomic", "locked", "debug")
"""Every backend nexus_pool knows, by name (each is a module of this package)."""

ENV_VAR: Final = "NEXUS_POOL_BACKEND"
"""Names the backend for pools created without ``backend=``."""

_loaded: dict[str, type[FreeList[Any]]] = {}


def backend_class(name: str) -> type[FreeList[Any]]:
    """The free-list class of backend ``name``, imported on first use and cached.

    Raises ``ValueError`` for a name nexus_pool does not know, and
    :class:`~nexus_pool.BackendUnavailable` for a known one that cannot load here.
    """
    try:
        return _loaded[name]
    except KeyError:
        pass
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid names are: {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise BackendUnavailable(f"backend {name!r} cannot load on this interpreter: {exc}") from exc
    cls = module.backend_class
    if not (isinstance(cls, type) and issubclass(cls, FreeList)) or cls.name != name:
        raise TypeError(f"module {module.__name__} does not define a FreeList for {name!r}")
    _loaded[name] = cls
    return cls


def requested(backend: object) -> type[FreeList[Any]] | None:
    """The free-list class a new pool asks for: the ``backend=`` argument, else the
    environment variable; ``None`` when neither names one (the facade's module knows the
    default, which depends on which facade loads)."""
    if backend is None:
        from_env = os.environ.get(ENV_VAR)
        if not from_env:
            return None
        try:
            return backend_class(from_env)
        except ValueError as exc:
            raise ValueError(f"{exc} (read from the environment variable {ENV_VAR})") from None
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None, not {type(backend).__name__}")
    return backend_class(backend)


def available_backends() -> tuple[str, ...]:
    """The names of the backends that load on this interpreter, in registry order."""
    usable = []
    for name in BACKENDS:
        try:
            backend_class(name)
        except BackendUnavailable:
            continue
        usable.append(name)
    return tuple(usable)


def unavailable_backends() -> dict[str, str]:
    """The registered backends that cannot load here, each with the reason."""
    reasons = {}
    for name in BACKENDS:
        try:
            backend_class(name)
        except BackendUnavailable as exc:
            reasons[name] = str(exc)
    return reasons
