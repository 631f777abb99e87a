"""Fixtures shared by every test: the backend parametrisation lives here.

``backend`` runs a test once per registered backend. A backend that cannot load is a
skip on a developer's machine but a *failure* when ``CI`` is set: CI must exercise every
backend the registry promises.
"""

from __future__ import annotations

import pytest

from nexus_pool._backends import BACKENDS

from .conformance.support import require_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each registered backend in turn."""
    name: str = request.param
    return require_backend(name)


@pytest.fixture(autouse=True)
def _no_backend_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose backends explicitly; a developer's NEXUS_POOL_BACKEND must not leak in."""
    monkeypatch.delenv("NEXUS_POOL_BACKEND", raising=False)


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
