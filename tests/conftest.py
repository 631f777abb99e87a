"""Fixtures shared by every test: the facade x backend parametrisation lives here.

``backend`` runs a test once per facade x backend pair (``native-atomic``,
``pure-atomic``, ``pure-locked``, ``pure-debug``), the way multidict runs its suite over
its C and its pure module: it selects the facade through ``NEXUS_POOL_PURE`` for the
test's duration and gives the backend's name, so the tests themselves do not change.
``facade`` names the facade of the running pair. A backend or facade that cannot load is
a skip on a developer's machine but a *failure* when ``CI`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nexus_pool._facade import PURE_ENV_VAR

from .conformance.support import FACADE_BACKEND_PAIRS, require_backend, require_native_facade


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


@pytest.fixture(params=FACADE_BACKEND_PAIRS, ids=[f"{facade}-{name}" for facade, name in FACADE_BACKEND_PAIRS])
def facade_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Each facade x backend pair in turn, with the facade selected for the test."""
    facade, name = request.param
    require_backend(name)
    if facade == "native":
        require_native_facade()
    with environment(PURE_ENV_VAR, "1" if facade == "pure" else "0"):
        yield facade, name


@pytest.fixture
def backend(facade_backend: tuple[str, str]) -> str:
    """The backend of the running pair; new pools use the pair's facade."""
    return facade_backend[1]


@pytest.fixture
def facade(facade_backend: tuple[str, str]) -> str:
    """The facade of the running pair."""
    return facade_backend[0]


@pytest.fixture(autouse=True)
def _no_backend_from_environment() -> Iterator[None]:
    """Tests choose backends explicitly; a developer's NEXUS_POOL_BACKEND must not leak in."""
    with environment("NEXUS_POOL_BACKEND", None):
        yield


FIGURES = {"stress": "stress figures", "interrupts": "interrupt figures"}
"""``record_property`` names whose values the terminal summary prints, by section."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures tests recorded (``record_property("stress", ...)`` and alike)."""
    for name, title in FIGURES.items():
        lines = [
            value
            for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
            for key, value in report.user_properties
            if key == name
        ]
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(str(line))
