"""Static typing as a tested feature.

* The whole project (package, tests, stubs) is ``mypy --strict`` clean, with the
  configuration in pyproject.toml.
* Each file in ``fail/`` is user code that mypy must reject: every line marked
  ``# E: <code>`` must get an error with that code, and no other line may get one.

Against an installed wheel or sdist, mypy checks the tests as user code: the same
settings without ``mypy_path`` (the checkout's ``stubs/``), so every type comes from
what was installed (``py.typed`` and the ``.pyi`` beside each compiled module).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..layout import FROM_CHECKOUT, ROOT

FAIL_DIR = Path(__file__).parent / "fail"
EXPECTED = re.compile(r"#\s*E:\s*([a-z-]+)")
REPORTED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The mypy arguments that pick the configuration (see the module docstring)."""
    if FROM_CHECKOUT:
        return []  # pyproject.toml: files, strictness and stubs
    settings = (ROOT / "pyproject.toml").read_text().splitlines(keepends=True)
    kept = [line for line in settings if not line.startswith(("mypy_path =", "files ="))]
    assert len(settings) - len(kept) == 2, "pyproject.toml no longer sets mypy_path and files"
    as_installed = tmp_path_factory.mktemp("mypy") / "pyproject.toml"
    as_installed.write_text("".join(kept))
    return ["--config-file", str(as_installed)]


def run_mypy(config: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes", *config, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(300)
def test_project_is_strict_clean(config: list[str]) -> None:
    result = run_mypy(config, *([] if FROM_CHECKOUT else ["tests"]))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("snippet", sorted(FAIL_DIR.glob("*.py")), ids=lambda path: path.stem)
def test_snippet_fails_with_the_named_error_codes(config: list[str], snippet: Path) -> None:
    expected = {
        (number, match.group(1))
        for number, line in enumerate(snippet.read_text().splitlines(), start=1)
        if (match := EXPECTED.search(line))
    }
    assert expected, f"{snippet.name} marks no expected error"
    result = run_mypy(config, str(snippet.relative_to(ROOT)))  # strict, from pyproject.toml
    reported = {
        (int(match["line"]), match["code"]) for line in result.stdout.splitlines() if (match := REPORTED.match(line))
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported == expected, result.stdout
