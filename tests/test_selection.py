"""Backend selection: argument, then environment, then default; clear errors for bad names."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import nexus_pool
from nexus_pool import BackendUnavailable, Pool, available_backends
from nexus_pool._backends import BACKENDS, ENV_VAR, _loaded, backend_class
from nexus_pool._facade import default_backend


def test_available_backends_lists_registered_names_in_order() -> None:
    names = available_backends()
    assert isinstance(names, tuple)
    assert set(names) <= set(BACKENDS)
    assert list(names) == [name for name in BACKENDS if name in names]
    assert {"locked", "debug"} <= set(names)


def test_default_backend_is_available_and_used() -> None:
    assert default_backend() in available_backends()
    assert Pool(1, list).backend == default_backend()


def test_default_falls_back_to_locked_without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(_loaded, "atomic", raising=False)
    monkeypatch.setitem(sys.modules, "nexus_pool._backends.atomic", None)  # makes the import fail
    assert default_backend() == "locked"
    assert Pool(1, list).backend == "locked"


def test_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "debug")
    assert Pool(1, list).backend == "debug"
    assert Pool(1, list, backend="locked").backend == "locked"


def test_empty_environment_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "")
    assert Pool(1, list).backend == default_backend()


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'fast'; valid names are: ") as caught:
        Pool(1, list, backend="fast")
    for name in BACKENDS:
        assert name in str(caught.value)


def test_unknown_name_from_environment_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "nope")
    with pytest.raises(ValueError, match=f"unknown backend 'nope'.*environment variable {ENV_VAR}"):
        Pool(1, list)


def test_known_backend_that_cannot_load_raises_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not 'unknown': the name is right, the interpreter lacks what the backend needs."""
    monkeypatch.setattr("nexus_pool._backends.BACKENDS", (*BACKENDS, "broken"))
    module_name = "nexus_pool._backends.broken"
    monkeypatch.setitem(sys.modules, module_name, None)  # makes the import fail
    with pytest.raises(BackendUnavailable, match="backend 'broken' cannot load on this interpreter"):
        Pool(1, list, backend="broken")
    assert "broken" not in available_backends()


def test_importing_nexus_pool_imports_no_backend() -> None:
    code = "import sys, nexus_pool; print(sorted(m for m in sys.modules if m.startswith('nexus_pool._backends.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['nexus_pool._backends._contract']"


def test_backends_are_loaded_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(_loaded, "debug", raising=False)
    first = backend_class("debug")
    assert _loaded["debug"] is first
    assert backend_class("debug") is first


def test_a_module_without_a_free_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nexus_pool._backends.BACKENDS", (*BACKENDS, "hollow"))
    hollow = types.ModuleType("nexus_pool._backends.hollow")
    hollow.backend_class = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, hollow.__name__, hollow)
    with pytest.raises(TypeError, match="does not define a FreeList for 'hollow'"):
        backend_class("hollow")


def test_public_names() -> None:
    assert sorted(nexus_pool.__all__) == sorted(
        [
            "AcquireSite",
            "AsyncAcquisition",
            "BackendUnavailable",
            "Buffer",
            "BufferPool",
            "Holder",
            "OwnershipError",
            "Pool",
            "PoolError",
            "PoolExhausted",
            "PoolLeakWarning",
            "PoolShutDown",
            "PoolStats",
            "Pooled",
            "ReleasedError",
            "SharedBlockCorrupted",
            "available_backends",
        ]
    )
    for name in nexus_pool.__all__:
        assert getattr(nexus_pool, name) is not None
    for error in ("BackendUnavailable", "OwnershipError", "PoolExhausted", "ReleasedError", "SharedBlockCorrupted"):
        assert issubclass(getattr(nexus_pool, error), nexus_pool.PoolError)
