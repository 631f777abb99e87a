"""The README's and the documentation's promises: every example runs, the commands are the
ones CI runs, and the README stays a user's page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_after(marker: str, language: str) -> list[str]:
    return re.findall(rf"<!-- {marker}[^>]*-->\n```{language}\n(.*?)```", README, flags=re.DOTALL)


def python_blocks(page: Path) -> list[tuple[str, str]]:
    """Every ```python block of ``page`` with the heading it is under (sketches are ```text)."""
    found = []
    heading = ""
    text = page.read_text(encoding="utf-8")
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            found.append((f"{page.relative_to(ROOT)}: {heading}", match.group(2)))
    return found


EXAMPLES = [example for page in PAGES for example in python_blocks(page)]


def test_the_readme_and_every_guide_have_examples() -> None:
    pages = {where.split(":")[0] for where, _ in EXAMPLES}
    assert "README.md" in pages
    guides = {str(path.relative_to(ROOT)) for path in (ROOT / "docs" / "guides").glob("*.md")}
    assert guides - pages <= {"docs/guides/guarantees.md", "docs/guides/when-pooling-pays.md"}
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[where for where, _ in EXAMPLES])
def test_every_python_block_runs_as_written(code: str, tmp_path: Path) -> None:
    if 'if __name__ == "__main__":' in code:
        # A program (worker processes import its functions): run it as a script.
        script = tmp_path / "example.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return
    exec(compile(code, "example.md", "exec"), {"__name__": "example"})


def test_the_readme_is_a_users_page() -> None:
    assert len(README.splitlines()) <= 300
    assert "pip install nexus-pool" in README
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bissues? \d+|#\d{1,3}\b", text), f"{page.name} cites the work's history"


def test_the_readmes_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target


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
