"""The record of each implementation of the pools, and how a test selects one.

The one place in the suite that knows the switch between the native and the pure-Python
facade (``NEXUS_POOL_PURE``); ``conftest.py`` builds its fixtures and marks on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from nexus_pool._facade import PURE_ENV_VAR

from .conformance.support import require_native_facade

__all__ = ["IMPLEMENTATIONS", "Implementation", "environment"]


@contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    """``os.environ[name]`` set to ``value`` (None: removed) for the block.

    Not pytest's ``monkeypatch``: pytest-run-parallel (free-threaded CI) runs a test body
    in several threads after its fixtures are set up once, and treats every test that
    uses ``monkeypatch`` as unsafe to run so; the variables set here are only read."""
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@dataclass(frozen=True)
class Implementation:
    """One implementation of the pools: ``"native"`` (C types) or ``"pure"`` (Python)."""

    facade: str

    def require(self) -> None:
        """Fail (in CI) or skip unless this implementation loads here."""
        if self.facade == "native":
            require_native_facade()

    def selected(self) -> AbstractContextManager[None]:
        """New pools are of this implementation inside the block."""
        return environment(PURE_ENV_VAR, "1" if self.facade == "pure" else "0")


IMPLEMENTATIONS = {"native": Implementation("native"), "pure": Implementation("pure")}
