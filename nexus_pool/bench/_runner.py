"""Runs every scenario on every contender, interleaved, and keeps medians over repeats."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from ._contenders import Contender
from ._scenarios import (
    Run,
    Sizes,
    barrier_release,
    clock_cost_ns,
    cross_thread,
    floor_cycle,
    same_thread_cycle,
    with_block,
)

__all__ = ["FLOOR", "LIFO_QUEUE", "Result", "Row", "Scenario", "run_benchmark", "scenarios"]

FLOOR = "floor: deque pop+clear+append"
LIFO_QUEUE = "queue.LifoQueue"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str  # what ns_per_op is per
    run: Callable[[Contender, Sizes, float], Run]
    applies: Callable[[Contender], bool] = lambda contender: True


def scenarios() -> list[Scenario]:
    found = [
        Scenario("cycle", "same thread: try_acquire() + release()", "cycle", same_thread_cycle),
        Scenario("with", "same thread: with pool.acquire(0)", "cycle", with_block, lambda c: c.guards),
    ]
    found += [
        Scenario(
            f"return-{returners}",
            f"cross-thread return: 1 acquirer, {returners} returner thread{'s' * (returners > 1)}",
            "round trip",
            partial(cross_thread, returners=returners, fill=False),
            lambda c: c.blocks,
        )
        for returners in (1, 2, 3, 4)
    ]
    found += [
        Scenario(
            f"barrier-{threads}",
            f"concurrent release of all slots by {threads} thread{'s' * (threads > 1)} at a barrier",
            "release",
            partial(barrier_release, threads=threads),
        )
        for threads in (1, 2, 4)
    ]
    found.append(
        Scenario(
            "fan-out",
            "fan-out pipeline: parser fills frames, 4 workers read and release",
            "frame",
            partial(cross_thread, returners=4, fill=True),
            lambda c: c.blocks,
        )
    )
    return found


@dataclass
class Row:
    contender: str
    ns_per_op: float
    latency: dict[str, tuple[float, float]]  # op -> (p50, p99) in ns
    note: str = ""


@dataclass
class Result:
    scenario: Scenario
    rows: list[Row] = field(default_factory=list)

    def row(self, contender: str) -> Row | None:
        return next((row for row in self.rows if row.contender == contender), None)


def _percentile(samples: list[int], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


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
            latency = {
                op: (
                    statistics.median(_percentile(run.samples[op], 0.50) for run in repeated),
                    statistics.median(_percentile(run.samples[op], 0.99) for run in repeated),
                )
                for op in repeated[0].samples
            }
            ns = statistics.median(run.ns_per_op for run in repeated)
            result.rows.append(Row(name, ns, latency, notes.get(name, "")))
        results.append(result)
    return results, clock_cost
