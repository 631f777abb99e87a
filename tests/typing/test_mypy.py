"""Static typing as a tested feature.

* The whole project (package, tests, stubs) is ``mypy --strict`` clean, with the
  configuration in pyproject.toml.
* Each file in ``fail/`` is user code that mypy must reject: every line marked
  ``# E: <code>`` must get an error with that code, and no other line may get one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAIL_DIR = Path(__file__).parent / "fail"
EXPECTED = re.compile(r"#\s*E:\s*([a-z-]+)")
REPORTED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def run_mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(300)
def test_project_is_strict_clean() -> None:
    result = run_mypy()  # files, strictness and stubs come from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("snippet", sorted(FAIL_DIR.glob("*.py")), ids=lambda path: path.stem)
def test_snippet_fails_with_the_named_error_codes(snippet: Path) -> None:
    expected = {
        (number, match.group(1))
        for number, line in enumerate(snippet.read_text().splitlines(), start=1)
        if (match := EXPECTED.search(line))
    }
    assert expected, f"{snippet.name} marks no expected error"
    result = run_mypy(str(snippet.relative_to(ROOT)))  # strict, from pyproject.toml
    reported = {
        (int(match["line"]), match["code"])
        for line in result.stdout.splitlines()
        if (match := REPORTED.match(line))
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported == expected, result.stdout
