"""Fixtures shared by every test: the backend parametrisation lives here.

``backend`` runs a test once per registered backend. A backend that cannot load is a
skip on a developer's machine but a *failure* when ``CI`` is set: CI must exercise every
backend the registry promises.
"""

from __future__ import annotations

import os

import pytest

from nexus_pool import BackendUnavailable
from nexus_pool._backends import BACKENDS, backend_class

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_backend(name: str) -> str:
    """``name`` if that backend loads here; otherwise fail (in CI) or skip the test."""
    try:
        backend_class(name)
    except BackendUnavailable as exc:
        if IN_CI:
            pytest.fail(f"backend {name!r} is registered but unavailable in CI: {exc}")
        pytest.skip(f"backend {name!r} unavailable here: {exc}")
    return name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each registered backend in turn."""
    name: str = request.param
    return require_backend(name)


@pytest.fixture(autouse=True)
def _no_backend_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose backends explicitly; a developer's NEXUS_POOL_BACKEND must not leak in."""
    monkeypatch.delenv("NEXUS_POOL_BACKEND", raising=False)
