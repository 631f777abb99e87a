"""The public base classes and their implementations, side by side.

The public classes (``Pool``, ``BufferPool``, ``local.Pool``, ``local.BoundedPool``,
``shared.SharedBufferPool``) carry every public method with its docstring, so ``help()``
and the API reference show them; each implementation (the native facade's C types, the
pure facade's classes, the compiled shared pool) overrides every one of them. A base
class's own body only serves an object its constructor did not make, and says so.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from nexus_pool import BufferPool, Pool, _base, _pool, local, shared
from nexus_pool._facade import native_unavailable
from nexus_pool._local import _PureBoundedPool, _PurePool

BASE_METHODS = {
    Pool: ["try_acquire", "acquire", "capacity", "available", "backend", "facade", "handoff", "stats", "shutdown",
           "is_shutdown", "_waiter", "_holding"],
    local.Pool: ["try_acquire", "acquire", "take", "put", "available", "backend", "handoff"],
    local.BoundedPool: ["capacity", "try_acquire", "acquire", "available", "backend", "handoff"],
    shared.SharedBufferPool: ["name", "capacity", "size", "closed", "is_shutdown", "queue", "try_acquire", "acquire",
                              "available", "stats", "shutdown", "reclaim", "close", "lease_word", "_wait"],
}  # fmt: skip


def implementations(base: type) -> list[type]:
    pure: dict[type, list[type]] = {
        Pool: [_pool.PurePool, _pool.PureBufferPool],
        local.Pool: [_PurePool],
        local.BoundedPool: [_PureBoundedPool],
        shared.SharedBufferPool: [],
    }
    found = pure[base]
    if not native_unavailable():
        from nexus_pool import _native

        native: dict[type, list[type]] = {
            Pool: [_native.Pool, _native.BufferPool],
            local.Pool: [_native.LocalPool],
            local.BoundedPool: [_native.LocalBoundedPool],
            shared.SharedBufferPool: [],
        }
        found += native[base]
    if base is shared.SharedBufferPool and not shared.shared_unavailable():
        from nexus_pool import _shared_native

        found.append(_shared_native.SharedBufferPool)
    return found


@pytest.mark.parametrize("base", list(BASE_METHODS), ids=lambda base: f"{base.__module__}.{base.__qualname__}")
def test_every_implementation_overrides_every_method_of_its_base(base: type) -> None:
    classes = implementations(base)
    assert classes, "no implementation to check"
    declared = {name for name, value in vars(base).items() if callable(value) or isinstance(value, property)}
    assert set(BASE_METHODS[base]) <= declared
    for cls in classes:
        assert issubclass(cls, base)
        for name in BASE_METHODS[base]:
            owner = next(klass for klass in cls.__mro__ if name in vars(klass))
            assert owner is not base, f"{cls.__qualname__}.{name} is the base class's placeholder"


@pytest.mark.parametrize("base", list(BASE_METHODS), ids=lambda base: f"{base.__module__}.{base.__qualname__}")
def test_the_public_methods_have_docstrings_help_shows(base: type) -> None:
    for name in BASE_METHODS[base]:
        if not name.startswith("_"):
            assert inspect.getdoc(getattr(base, name)), f"{base.__qualname__}.{name} has no docstring"


def test_a_pool_its_constructor_did_not_make_says_so() -> None:
    for base in BASE_METHODS:
        bare: Any = object.__new__(base)
        with pytest.raises(TypeError, match=r"was not made by .*\(\.\.\.\): it holds nothing"):
            bare.try_acquire()
        with pytest.raises(TypeError, match="was not made by"):
            _ = bare.available()


def test_help_on_pool_shows_acquire() -> None:
    assert "A guard on a free value, waiting up to" in (inspect.getdoc(_base.Pool.acquire) or "")
    assert BufferPool.acquire is Pool.acquire
