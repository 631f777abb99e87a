"""Smoke test of ``python -m nexus_pool.bench``: it runs, in a tiny mode, and reports
every scenario for every contender. No timing is asserted: the machines are shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_pool import available_backends
from nexus_pool.bench._contenders import SHARED_BY_QUEUE, facade_backend_pairs
from nexus_pool.bench._processes import FUTEX, HANDROLLED, MP_QUEUE

from .conformance.support import IN_CI

pytestmark = pytest.mark.slow


def run_bench(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """The bench in its tiny mode; ``prelude`` runs first in the same interpreter."""
    code = (
        f"{prelude}\nimport runpy, sys\nsys.argv[0] = 'bench'\n"
        "runpy.run_module('nexus_pool.bench', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "--tiny", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(300)
def test_tiny_run_reports_every_scenario_and_contender() -> None:
    result = run_bench("--json", "-")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["environment"]["python"] == sys.version.split()[0]
    assert report["clock_cost_ns"] >= 0
    keys = [scenario["key"] for scenario in report["scenarios"]]
    files = ["file-4KiB", "file-64KiB", "file-1MiB", "file-4KiB-crc32", "file-64KiB-crc32", "file-1MiB-crc32"]
    fan_outs = ["process-64KiB-1w", "process-64KiB-2w", "process-1MiB-1w", "process-1MiB-2w"]
    no_work = ["process-nowork-1w", "process-nowork-2w"]
    processes = [*fan_outs, *no_work, "process-wakeup"]
    assert keys == ["cycle", "with", "return-1", "return-2", "return-3", "return-4",
                    "barrier-1", "barrier-2", "barrier-4", "fan-out", *files, *processes]  # fmt: skip
    by_key = {scenario["key"]: {row["contender"]: row for row in scenario["rows"]} for scenario in report["scenarios"]}
    references = {**dict.fromkeys(fan_outs, MP_QUEUE), **dict.fromkeys(no_work, HANDROLLED), "process-wakeup": FUTEX}
    for key in processes:
        rows = by_key[key]
        assert {MP_QUEUE, references[key]} <= set(rows)
        if key in fan_outs:
            assert {"multiprocessing.Pool.imap", HANDROLLED} <= set(rows)
        if IN_CI:
            assert "nexus_pool.shared" in rows, "the shared-memory pool was not measured"
            if key != "process-wakeup":
                assert SHARED_BY_QUEUE in rows
        if "iceoryx2" in rows:
            assert key.endswith(("-1w", "wakeup")), "iceoryx2 broadcasts: it fans out to one worker only"
        assert rows[references[key]]["faster_than_reference"] == pytest.approx(1.0)
        assert all(row["faster_than_lifoqueue"] is None for row in rows.values())
        assert all(row["cpu_ns"] > 0 for name, row in rows.items() if name != "multiprocessing.Pool.imap")
        assert "queue.LifoQueue" not in rows and "nexus_pool native[atomic]" not in rows
    skipped = report["environment"]["skipped_contenders"]
    assert ("iceoryx2" in skipped) != any("iceoryx2" in by_key[key] for key in processes), "measured or said why not"
    nexus = {f"nexus_pool {facade}[{backend}]" for facade, backend in facade_backend_pairs()}
    assert {f"nexus_pool pure[{backend}]" for backend in available_backends()} <= nexus
    if IN_CI:
        assert "nexus_pool native[atomic]" in nexus, "the native facade was not measured"
    assert nexus | {"floor: deque pop+clear+append", "queue.LifoQueue", "queue.SimpleQueue",
                    "collections.deque", "lock + list"} <= set(by_key["cycle"])  # fmt: skip
    tracking = {"nexus_pool track=off", "nexus_pool track=every"}
    assert set(by_key["with"]) == nexus | tracking, "the tracking modes run beside the default"
    assert tracking <= set(by_key["cycle"])
    for key in ("return-2", "barrier-2", "fan-out", "file-4KiB"):
        assert not tracking & set(by_key[key]), "the tracking modes run the same-thread cycles only"
    assert "collections.deque" not in by_key["return-3"], "a pool that cannot wait has no cross-thread row"
    for key in files:
        rows = by_key[key]
        assert {"fresh bytes, bounded queue", "fresh bytes, unbounded queue", "queue.LifoQueue",
                "nexus_pool BufferPool"} <= set(rows)  # fmt: skip
        assert nexus <= set(rows)
        assert all(row["peak_bytes"] > 0 for row in rows.values())
    for key in ("cycle", "return-2", "barrier-2", "fan-out"):
        assert "fresh bytes, bounded queue" not in by_key[key], "fresh bytes only run the file scenarios"
        assert "nexus_pool BufferPool" not in by_key[key], "BufferPool only runs the file scenarios"
    assert "nexus_pool local.BoundedPool" in by_key["cycle"]
    assert "nexus_pool local.Pool" not in by_key["barrier-2"], "local pools are released on their own thread"
    for rows in by_key.values():
        for row in rows.values():
            assert row["ns_per_op"] > 0
            assert all(latency["p99"] >= latency["p50"] >= 0 for latency in row["latency_ns"].values())
    assert by_key["cycle"]["queue.LifoQueue"]["faster_than_lifoqueue"] == pytest.approx(1.0)


@pytest.mark.timeout(300)
def test_table_output_names_the_interpreter_and_the_clock_correction() -> None:
    result = run_bench("--only", "cycle")
    assert result.returncode == 0, result.stderr
    assert f"on {'CPython'} {sys.version.split()[0]}" in result.stdout
    assert "minus the clock's own cost" in result.stdout.replace("\n    ", " ")
    assert "same thread: try_acquire() + release()" in result.stdout


@pytest.mark.timeout(300)
def test_every_output_line_fits_100_columns() -> None:
    result = run_bench()
    assert result.returncode == 0, result.stderr
    too_wide = [line for line in result.stdout.splitlines() if len(line) > 100]
    assert not too_wide, "\n".join(too_wide)
    assert "note: queue.SimpleQueue: FIFO" in result.stdout


def test_a_missing_plot_extra_is_refused_before_measuring(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    # A None entry in sys.modules makes `import matplotlib` fail as if it were not installed.
    result = run_bench("--plot", str(chart), prelude="import sys; sys.modules['matplotlib'] = None")
    assert result.returncode == 2, result.stderr
    assert "--plot needs matplotlib: pip install 'nexus-pool[plot]'" in result.stderr
    assert "repeat 1/" not in result.stderr, "it measured before refusing"
    assert result.stdout == ""
    assert not chart.exists()


def test_help_is_plain_text() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexus_pool.bench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "``" not in result.stdout
    assert "python -m nexus_pool.bench --quick" in result.stdout


def test_unknown_scenario_is_refused() -> None:
    result = run_bench("--only", "nope")
    assert result.returncode == 2
    assert "unknown scenario" in result.stderr


@pytest.mark.timeout(300)
def test_plot_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the optional 'plot' extra")
    chart = tmp_path / "chart.png"
    result = run_bench("--only", "cycle", "--only", "return-1", "--plot", str(chart))
    assert result.returncode == 0, result.stderr
    assert chart.stat().st_size > 10_000


@pytest.mark.timeout(300)
def test_file_capacity_sets_the_file_scenarios_slots() -> None:
    result = run_bench("--only", "file-4KiB", "--file-capacity", "3", "--json", "-")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "--file-capacity 3" in report["environment"]["command"]
    refused = run_bench("--file-capacity", "0")
    assert refused.returncode == 2 and "--file-capacity must be at least 1" in refused.stderr
