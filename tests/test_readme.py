"""The README's promises: its example runs, its commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks_after(marker: str, language: str) -> list[str]:
    return re.findall(rf"<!-- {marker}[^>]*-->\n```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_runnable_examples_run() -> None:
    examples = blocks_after("runnable", "python")
    assert examples, "README has no runnable example"
    for code in examples:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


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
