"""The README's promises: its example runs, its commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks_after(marker: str, language: str) -> list[str]:
    return re.findall(rf"<!-- {marker}[^>]*-->\n```{language}\n(.*?)```", README, flags=re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    """Every ```python block with the heading it is under; signature sketches are ```text."""
    found = []
    heading = ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            found.append((heading, match.group(2)))
    return found


EXAMPLES = python_blocks()


def test_the_readme_has_examples() -> None:
    headings = {heading for heading, _ in EXAMPLES}
    assert len(EXAMPLES) >= 7
    assert {"Local pools: one thread acquires and releases", "Statistics"} <= headings


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[heading for heading, _ in EXAMPLES])
def test_every_python_block_runs_as_written(code: str, tmp_path: Path) -> None:
    if 'if __name__ == "__main__":' in code:
        # A program (worker processes import its functions): run it as a script.
        script = tmp_path / "readme_example.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


def test_the_demo_command() -> None:
    """tests/test_demo.py runs the demo itself."""
    (command,) = blocks_after("demo-command", "sh")
    assert "-m nexus_pool.demo" in command


def test_run_command_is_the_quick_benchmark() -> None:
    """tests/test_bench.py runs the benchmark itself (in a tiny mode)."""
    (command,) = blocks_after("run-command", "sh")
    assert command.strip().endswith("-m nexus_pool.bench --quick")
    # editable: run from the checkout, the in-tree package (with its compiled module) is the one imported
    assert "-e '.[bench]'" in command


def test_ci_runs_the_readme_test_command() -> None:
    (command,) = blocks_after("test-command", "sh")
    assert "-m pytest" in command
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci_script, ".ci/run must take its test command from the README"
