"""``python -m nexus_pool.demo`` runs, checks itself, and refuses bad arguments."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from nexus_pool import demo
from nexus_pool._backends import BACKENDS

from .conformance.support import require_backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_fan_out_runs_on_every_backend(backend: str) -> None:
    require_backend(backend)
    out = io.StringIO()
    figures = demo.run(workers=2, seconds=0.3, capacity=4, backend=backend, out=out)
    assert figures["messages_per_second"] == pytest.approx(figures["frames_per_second"] * demo.FRAME_MESSAGES)
    printed = out.getvalue()
    assert f"backend {backend}" in printed
    assert "frames/s" in printed and "high-water 4" in printed


def test_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nexus_pool.demo", "--seconds", "0.8", "--workers", "1", "--capacity", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "in use" in lines[0], "a progress line while it runs"
    assert "1 workers" in done.stdout and "capacity 3" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--capacity", "0"], "--capacity must be at least 1"),
        (["--seconds", "-1"], "--seconds must be more than 0"),
        (["--backend", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_bad_arguments_are_named(arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo.main(arguments)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
