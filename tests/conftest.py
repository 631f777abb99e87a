"""Fixtures shared by every test: which implementation a test runs on is decided here.

As multidict's ``tests/conftest.py`` does for its C and pure modules, one record names
each implementation (:class:`Implementation`: the native facade, the pure-Python one)
and knows how to select it; nothing else in the suite reads or sets ``NEXUS_POOL_PURE``.

* ``backend`` runs a test once per facade x backend pair (``native-atomic``,
  ``pure-atomic``, ``pure-locked``, ``pure-debug``) with that facade selected, and gives
  the backend's name, so the tests themselves do not change; ``facade`` names the pair's
  facade, ``implementation`` its record.
* ``@pytest.mark.native_only`` runs a test on the native facade alone (tests of the C
  types themselves), ``@pytest.mark.pure_only`` on the pure one.

A backend or facade that cannot load is a skip on a developer's machine but a *failure*
when ``CI`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conformance.support import FACADE_BACKEND_PAIRS, require_backend
from .implementations import IMPLEMENTATIONS, Implementation, environment


@pytest.fixture(autouse=True)
def _implementation_marks(request: pytest.FixtureRequest) -> Iterator[None]:
    """``native_only`` / ``pure_only``: the test runs with that implementation selected."""
    for mark, facade in (("native_only", "native"), ("pure_only", "pure")):
        if request.node.get_closest_marker(mark) is not None:
            implementation = IMPLEMENTATIONS[facade]
            implementation.require()
            with implementation.selected():
                yield
            return
    yield


@pytest.fixture(params=FACADE_BACKEND_PAIRS, ids=[f"{facade}-{name}" for facade, name in FACADE_BACKEND_PAIRS])
def facade_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Each facade x backend pair in turn, with the facade selected for the test."""
    facade, name = request.param
    require_backend(name)
    implementation = IMPLEMENTATIONS[facade]
    implementation.require()
    with implementation.selected():
        yield facade, name


@pytest.fixture
def backend(facade_backend: tuple[str, str]) -> str:
    """The backend of the running pair; new pools use the pair's facade."""
    return facade_backend[1]


@pytest.fixture
def facade(facade_backend: tuple[str, str]) -> str:
    """The facade of the running pair."""
    return facade_backend[0]


@pytest.fixture
def implementation(facade_backend: tuple[str, str]) -> Implementation:
    """The record of the running pair's facade."""
    return IMPLEMENTATIONS[facade_backend[0]]


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
