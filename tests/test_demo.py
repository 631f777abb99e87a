"""``python -m nexus_pool.demo`` runs, checks itself, and refuses bad arguments."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from nexus_pool import demo
from nexus_pool._backends import BACKENDS

from .conformance.support import require_backend

pytestmark = pytest.mark.slow


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
        (["--workers", "-1"], "--workers must be at least 0"),
        (["--slow-worker", "-1"], "--slow-worker must be at least 0 seconds"),
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


def test_a_stalled_parser_reports_the_holders() -> None:
    """With no worker the pool runs dry: after a second the parser names who holds the
    buffers (the acquire site is the demo's own line), and the run ends, checked."""
    out = io.StringIO()
    demo.run(workers=0, seconds=5, capacity=3, backend=None, out=out)
    printed = out.getvalue()
    assert "the parser has waited 1 s for a buffer: all 3 slots are in use" in printed
    assert "3 acquired at demo.py:" in printed and " in run" in printed
    assert printed.count("    slot ") == 3
    assert "no worker will ever release one: stopping" in printed


def test_a_slow_worker_stalls_the_parser_and_the_report_says_so() -> None:
    out = io.StringIO()
    demo.run(workers=1, seconds=1.5, capacity=2, backend=None, slow_worker=1.3, out=out)
    assert "the parser has waited 1 s for a buffer" in out.getvalue()
