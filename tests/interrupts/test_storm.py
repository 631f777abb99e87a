"""Signal storms (``storm.py``, each in a fresh interpreter) lose nothing and keep deadlines.

Bounded in time: ``NEXUS_POOL_STORM_SECONDS`` per backend (default 2). The figures go to
the terminal summary ("interrupt figures").
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from ..layout import ROOT

SECONDS = float(os.environ.get("NEXUS_POOL_STORM_SECONDS", "2"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers"),
]


def run_storm(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.interrupts.storm", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120 + 2 * SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


@pytest.mark.timeout(300)
def test_a_signal_storm_loses_nothing(
    facade: str, backend: str, record_property: Callable[[str, object], None]
) -> None:
    figures = run_storm("interrupts", backend, str(SECONDS))
    record_property(
        "interrupts",
        f"{facade:6} {backend:6} storm: {figures['episodes']} episodes, {figures['operations']:,} operations, "
        f"{figures['interrupts']:,} KeyboardInterrupts in them, {figures['interrupted_finalizers']} in "
        f"finalizers; {len(figures['problems'])} problems",
    )
    assert figures["interrupts"] > 100, "the storm hardly reached the pool"
    assert figures["problems"] == []


@pytest.mark.timeout(300)
def test_a_signal_storm_loses_nothing_while_the_unraisable_hook_keeps_its_arguments(
    facade: str, backend: str, record_property: Callable[[str, object], None]
) -> None:
    """A KeyboardInterrupt that lands in a finalizer or a weak reference callback goes to
    sys.unraisablehook; a hook that keeps the exception keeps its traceback's frames.
    No slot may depend on the hook letting go of them for good."""
    figures = run_storm("interrupts", backend, str(SECONDS), "keep")
    record_property(
        "interrupts",
        f"{facade:6} {backend:6} storm, hook keeps: {figures['episodes']} episodes, "
        f"{figures['interrupts']:,} KeyboardInterrupts, {figures['interrupted_finalizers']} kept; "
        f"{len(figures['problems'])} problems",
    )
    assert figures["interrupts"] > 100, "the storm hardly reached the pool"
    assert figures["problems"] == []


@pytest.mark.timeout(300)
def test_a_blocked_acquire_keeps_its_deadline_under_a_signal_storm(
    facade: str, backend: str, record_property: Callable[[str, object], None]
) -> None:
    figures = run_storm("deadline", backend)
    record_property(
        "interrupts",
        f"{facade:6} {backend:6} deadline: acquire(timeout=0.05) x {figures['calls']} under {figures['signals']:,} "
        f"signals: median {figures['median_s']:.3f} s, longest {figures['longest_s']:.3f} s",
    )
    assert figures["signals"] > 1000
    assert figures["longest_s"] < 0.5


@pytest.mark.timeout(300)
def test_memory_running_out_as_a_guard_is_dropped_loses_nothing(
    facade: str, backend: str, record_property: Callable[[str, object], None]
) -> None:
    if importlib.util.find_spec("_testcapi") is None:
        pytest.skip("this Python was built without its test modules (_testcapi)")
    result = subprocess.run(
        [sys.executable, "-m", "tests.interrupts.nomemory", backend],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    record_property(
        "interrupts",
        f"{facade:6} {backend:6} no memory: {figures['rounds']} drops with 4 failing allocations, "
        f"{figures['unraisable']} errors reported; {len(figures['problems'])} problems",
    )
    assert figures["problems"] == []
