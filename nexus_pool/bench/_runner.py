"""Runs every scenario on every contender, interleaved, and keeps medians over repeats."""

from __future__ import annotations

import atexit
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from ._contenders import Contender
from ._processes import (
    FUTEX,
    HANDROLLED,
    KINDS,
    MP_QUEUE,
    NO_WORK_CHUNK,
    NO_WORK_KINDS,
    ONE_WORKER_KINDS,
    WAKING_KINDS,
    process_fan_out,
    process_wakeup,
)
from ._scenarios import (
    DataFile,
    Run,
    Sizes,
    barrier_release,
    clock_cost_ns,
    cross_thread,
    file_fan_out,
    floor_cycle,
    make_data_file,
    same_thread_cycle,
    with_block,
)

__all__ = [
    "FLOOR",
    "FUTEX",
    "HANDROLLED",
    "LIFO_QUEUE",
    "MP_QUEUE",
    "RATIO_LABELS",
    "Result",
    "Row",
    "Scenario",
    "run_benchmark",
    "scenarios",
]

FLOOR = "floor: deque pop+clear+append"
LIFO_QUEUE = "queue.LifoQueue"

RATIO_LABELS: Final = {LIFO_QUEUE: "Lifo/x", MP_QUEUE: "mpQ/x", HANDROLLED: "hand/x", FUTEX: "futex/x"}
"""The ratio column's header for each reference contender."""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str  # what ns_per_op is per
    run: Callable[[Contender, Sizes, float], Run]
    applies: Callable[[Contender], bool] = lambda contender: _pools(contender)
    reference: str = LIFO_QUEUE  # the contender the ratio column compares with


def scenarios() -> list[Scenario]:
    found = [
        Scenario("cycle", "same thread: try_acquire() + release()", "cycle", same_thread_cycle, _cycling),
        Scenario("with", "same thread: with pool.acquire(0)", "cycle", with_block, lambda c: c.guards),
    ]
    found += [
        Scenario(
            f"return-{returners}",
            f"cross-thread return: 1 acquirer, {returners} returner thread{'s' * (returners > 1)}",
            "round trip",
            partial(cross_thread, returners=returners, fill=False),
            lambda c: c.blocks and _pools(c),
        )
        for returners in (1, 2, 3, 4)
    ]
    found += [
        Scenario(
            f"barrier-{threads}",
            f"concurrent release of all slots by {threads} thread{'s' * (threads > 1)} at a barrier",
            "release",
            partial(barrier_release, threads=threads),
            lambda c: c.threads and _pools(c),
        )
        for threads in (1, 2, 4)
    ]
    found.append(
        Scenario(
            "fan-out",
            "fan-out pipeline: parser fills frames, 4 workers read and release",
            "frame",
            partial(cross_thread, returners=4, fill=True),
            lambda c: c.blocks and _pools(c),
        )
    )
    found += [
        Scenario(
            f"file-{label}" + ("" if work == "sha256" else f"-{work}"),
            f"real work: a reader readinto()s {label} chunks of a file, 2 workers {work} them",
            "chunk",
            partial(_file_scenario, chunk=chunk, workers=2, work=work),
            lambda c: (c.blocks and _pools(c)) or bool(c.fresh) or bool(c.buffers),
        )
        for work in ("sha256", "crc32")
        for label, chunk in (("4KiB", 4096), ("64KiB", 1 << 16), ("1MiB", 1 << 20))
    ]
    found += [
        Scenario(
            f"process-{label}-{workers}w",
            f"process fan-out: a producer fills {label} chunks, {workers} worker process"
            f"{'es' * (workers > 1)} sha256 them",
            "chunk",
            partial(_process_scenario, chunk=chunk, workers=workers),
            partial(_fans_out, kinds=KINDS, workers=workers),
            MP_QUEUE,
        )
        for label, chunk in (("64KiB", 1 << 16), ("1MiB", 1 << 20))
        for workers in (1, 2)
    ]
    found += [
        Scenario(
            f"process-nowork-{workers}w",
            f"no-work fan-out: {workers} worker process{'es' * (workers > 1)} release each buffer "
            "at once (machinery only)",
            "chunk",
            partial(_no_work_scenario, workers=workers),
            partial(_fans_out, kinds=NO_WORK_KINDS, workers=workers),
            HANDROLLED,
        )
        for workers in (1, 2)
    ]
    found.append(
        Scenario(
            "process-wakeup",
            "wake-up across processes: the producer, blocked, woken by a worker's return",
            "wake",
            _wakeup_scenario,
            lambda c: c.process in WAKING_KINDS,
            FUTEX,
        )
    )
    return found


def _fans_out(contender: Contender, kinds: tuple[str, ...], workers: int) -> bool:
    return contender.process in kinds and (workers == 1 or contender.process not in ONE_WORKER_KINDS)


FILE_CHUNKS: Final = (4096, 1 << 16, 1 << 20)
_data_files: dict[int, DataFile] = {}


def _pools(contender: Contender) -> bool:
    """The scenarios that drive a pool through the contenders' common shape."""
    return not (contender.fresh or contender.buffers or contender.process or contender.track)


def _cycling(contender: Contender) -> bool:
    """The same-thread cycles: every pool, and nexus_pool under each tracking mode."""
    return _pools(contender) or bool(contender.track)


def _wakeup_scenario(contender: Contender, sizes: Sizes, clock_cost: float) -> Run:
    latencies, cpu = process_wakeup(contender.process, max(10, sizes.items // 30))
    return Run(statistics.median(latencies), {"wake": latencies}, cpu_ns=cpu * 1e9)


_process_data: dict[int, bytes] = {}


def _process_scenario(contender: Contender, sizes: Sizes, clock_cost: float, chunk: int, workers: int) -> Run:
    data = _process_data.get(sizes.file_bytes)
    if data is None:
        data = _process_data[sizes.file_bytes] = os.urandom(sizes.file_bytes)
    view = memoryview(data)
    chunks = [view[offset : offset + chunk] for offset in range(0, len(data), chunk)]
    elapsed, cpu = process_fan_out(contender.process, chunks, chunk, workers, work=True)
    return Run(elapsed / len(chunks) * 1e9, {}, cpu_ns=None if cpu is None else cpu / len(chunks) * 1e9)


def _no_work_scenario(contender: Contender, sizes: Sizes, clock_cost: float, workers: int) -> Run:
    chunks = [number.to_bytes(NO_WORK_CHUNK, "little") for number in range(sizes.items)]
    elapsed, cpu = process_fan_out(contender.process, chunks, 4096, workers, work=False)
    return Run(elapsed / len(chunks) * 1e9, {}, cpu_ns=None if cpu is None else cpu / len(chunks) * 1e9)


def _file_scenario(contender: Contender, sizes: Sizes, clock_cost: float, chunk: int, workers: int, work: str) -> Run:
    data = _data_files.get(sizes.file_bytes)
    if data is None:
        data = _data_files[sizes.file_bytes] = make_data_file(sizes.file_bytes, FILE_CHUNKS)
        atexit.register(os.unlink, data.path)
    return file_fan_out(contender, sizes, clock_cost, data, chunk, workers, work)


@dataclass
class Row:
    contender: str
    ns_per_op: float
    latency: dict[str, tuple[float, float]]  # op -> (p50, p99) in ns
    note: str = ""
    peak_bytes: float | None = None  # median peak of traced memory, where measured
    cpu_ns: float | None = None  # median CPU time per operation of every process involved


@dataclass
class Result:
    scenario: Scenario
    rows: list[Row] = field(default_factory=list)

    def row(self, contender: str) -> Row | None:
        return next((row for row in self.rows if row.contender == contender), None)


def _percentiles(samples: list[int]) -> tuple[float, float]:
    """p50 and p99 of one run's per-operation times (NaN for an operation never timed)."""
    if len(samples) < 2:
        only = float(samples[0]) if samples else float("nan")
        return only, only
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def run_benchmark(
    contenders: list[Contender],
    chosen: list[Scenario],
    sizes: Sizes,
    repeats: int,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[Result], float]:
    """Medians over ``repeats``; each repeat runs every (scenario, contender) once, in order."""
    clock_cost = clock_cost_ns()
    runs: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for repeat in range(repeats):
        progress(f"repeat {repeat + 1}/{repeats}")
        for scenario in chosen:
            if scenario.key == "cycle":
                runs[(scenario.key, FLOOR)].append(floor_cycle(sizes, clock_cost))
            for contender in contenders:
                if scenario.applies(contender):
                    runs[(scenario.key, contender.name)].append(scenario.run(contender, sizes, clock_cost))
    notes = {contender.name: contender.note for contender in contenders}
    results = []
    for scenario in chosen:
        result = Result(scenario)
        for (key, name), repeated in runs.items():
            if key != scenario.key:
                continue
            latency = {}
            for op in repeated[0].samples:
                p50s, p99s = zip(*(_percentiles(run.samples[op]) for run in repeated), strict=True)
                latency[op] = (statistics.median(p50s), statistics.median(p99s))
            ns = statistics.median(run.ns_per_op for run in repeated)
            peaks = [run.peak_bytes for run in repeated if run.peak_bytes is not None]
            peak = statistics.median(peaks) if peaks else None
            cpus = [run.cpu_ns for run in repeated if run.cpu_ns is not None]
            cpu = statistics.median(cpus) if cpus else None
            result.rows.append(Row(name, ns, latency, notes.get(name, ""), peak, cpu))
        results.append(result)
    return results, clock_cost
