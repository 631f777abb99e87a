"""Tables for people, JSON for machines, a chart for the documentation."""

from __future__ import annotations

import math
import os
import platform
import sys
import textwrap
from datetime import datetime, timezone
from typing import Any, Final

from .. import available_backends
from .._backends import unavailable_backends
from .._facade import default_backend
from ._runner import FLOOR, LIFO_QUEUE, RATIO_LABELS, Result, Row

__all__ = ["WIDTH", "as_json", "environment", "load_matplotlib", "plot", "tables"]


WIDTH: Final = 100
"""Every line of the tables fits this many columns."""


def environment(command: str) -> dict[str, Any]:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "gil": gil,
        "interpreter": (
            f"{platform.python_implementation()} {sys.version.split()[0]}{'' if gil else 't (free-threaded)'}"
        ),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "command": command,
        "backends": list(available_backends()),
        "unavailable_backends": unavailable_backends(),
        "default_backend": default_backend(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _references(results: list[Result], result: Result) -> tuple[Row | None, Row | None]:
    """The floor and the reference rows (LifoQueue, or the scenario's own) this scenario's
    ratios are against."""
    if result.scenario.reference != LIFO_QUEUE:
        return None, result.row(result.scenario.reference)
    own_lifo = result.row(LIFO_QUEUE)
    cycle = next((r for r in results if r.scenario.key == "cycle"), None)
    floor = cycle.row(FLOOR) if cycle else None
    if result.scenario.key in {"cycle", "with"}:
        return floor, own_lifo or (cycle.row(LIFO_QUEUE) if cycle else None)
    return None, own_lifo


def _ratios(row: Row, floor: Row | None, reference: Row | None) -> dict[str, float | None]:
    """x floor, and how many times faster than the reference (LifoQueue unless the
    scenario names another: then ``faster_than_lifoqueue`` is None)."""
    faster = reference.ns_per_op / row.ns_per_op if reference else None
    return {
        "x_floor": row.ns_per_op / floor.ns_per_op if floor else None,
        "faster_than_lifoqueue": faster if reference is None or reference.contender == LIFO_QUEUE else None,
        "faster_than_reference": faster,
    }


def _rate(ns_per_op: float) -> str:
    per_second = 1e9 / ns_per_op
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f} M"
    return f"{per_second / 1e3:.0f} k" if per_second >= 1e4 else f"{per_second:,.0f}"


def _wrap(text: str, indent: str = "") -> list[str]:
    """``text`` in lines of at most WIDTH columns, continuation lines indented further."""
    hanging = " " * len(indent) + "    "
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=hanging, break_on_hyphens=False)


def tables(results: list[Result], env: dict[str, Any], clock_cost: float) -> str:
    lines = [
        *_wrap(f"nexus_pool benchmark on {env['interpreter']}, {env['machine']}, {env['date']}"),
        *_wrap(f"command: {env['command']}"),
        f"nexus_pool backends here: {', '.join(env['backends'])}; default: {env['default_backend']}",
        *(
            line
            for name, why in env["unavailable_backends"].items()
            for line in _wrap(f"NOT BENCHMARKED, backend {name!r} unavailable: {why}")
        ),
        *_wrap(
            "Times are medians over repeats. Per-operation p50/p99 come from reading the clock around "
            f"every operation, minus the clock's own cost ({clock_cost:.0f} ns, measured in this run). "
            "x floor: time / the floor's time (lower is better); Lifo/x: how many times faster than the "
            "queue.LifoQueue pool in the same scenario (higher is better); mpQ/x, hand/x, futex/x: the "
            "same against a multiprocessing.Queue of bytes, hand-rolled shared memory, a raw futex, in "
            "the process scenarios that name them; cpu ns: the CPU time of every process involved "
            "(producer and workers, all their threads), per operation."
        ),
        *(
            line
            for name, why in env.get("skipped_contenders", {}).items()
            for line in _wrap(f"NOT BENCHMARKED, contender {name!r}: {why}")
        ),
    ]
    for result in results:
        floor, lifo = _references(results, result)
        ops = sorted({op for row in result.rows for op in row.latency})
        unit = result.scenario.unit
        short_unit = unit.replace("round trip", "trip")
        lines += ["", f"{result.scenario.title}  (ns per {unit})"]
        # Right-aligned columns, each wide enough for its header plus two spaces.
        op_widths = {op: max(17, len(op) + 10) for op in ops}
        header = f"  {'contender':<29}{'ns/' + short_unit:>10}{short_unit + 's/s':>10}"
        header += "".join(f"{op + ' p50/p99':>{op_widths[op]}}" for op in ops)
        header += f"{'x floor':>8}" if floor else ""
        peaks = any(row.peak_bytes is not None for row in result.rows)
        header += f"{'peak MiB':>10}" if peaks else ""
        cpus = any(row.cpu_ns is not None for row in result.rows)
        header += f"{'cpu ns':>9}" if cpus else ""
        label = RATIO_LABELS.get(result.scenario.reference, "ref/x")
        ratio_width = max(7, len(label) + 1)
        header += f"{label:>{ratio_width}}"
        lines.append(header)
        notes = []
        for row in sorted(result.rows, key=lambda r: r.ns_per_op):
            ratios = _ratios(row, floor, lifo)
            line = f"  {row.contender:<29}{row.ns_per_op:>10.1f}{_rate(row.ns_per_op):>10}"
            for op in ops:
                p50, p99 = row.latency.get(op, (math.nan, math.nan))
                line += f"{f'{p50:.0f} / {p99:.0f}':>{op_widths[op]}}"
            x_floor, faster = ratios["x_floor"], ratios["faster_than_reference"]
            if floor:
                line += f"{f'{x_floor:.2f}' if x_floor is not None else '':>8}"
            if peaks:
                line += f"{f'{row.peak_bytes / (1 << 20):.1f}' if row.peak_bytes is not None else '':>10}"
            if cpus:
                line += f"{f'{row.cpu_ns:.0f}' if row.cpu_ns is not None else '':>9}"
            line += f"{f'{faster:.2f}' if faster is not None else '':>{ratio_width}}"
            lines.append(line)
            if row.note:
                notes.append(f"{row.contender}: {row.note}")
        lines += [wrapped for note in notes for wrapped in _wrap(note, "  note: ")]
    return "\n".join(lines)


def as_json(results: list[Result], env: dict[str, Any], clock_cost: float) -> dict[str, Any]:
    scenarios = []
    for result in results:
        floor, lifo = _references(results, result)
        scenarios.append(
            {
                "key": result.scenario.key,
                "title": result.scenario.title,
                "unit": result.scenario.unit,
                "reference": result.scenario.reference,
                "rows": [
                    {
                        "contender": row.contender,
                        "ns_per_op": row.ns_per_op,
                        "ops_per_second": 1e9 / row.ns_per_op,
                        "latency_ns": {op: {"p50": p50, "p99": p99} for op, (p50, p99) in row.latency.items()},
                        **_ratios(row, floor, lifo),
                        "peak_bytes": row.peak_bytes,
                        "cpu_ns": row.cpu_ns,
                        "note": row.note,
                    }
                    for row in result.rows
                ],
            }
        )
    return {"environment": env, "clock_cost_ns": clock_cost, "scenarios": scenarios}


def load_matplotlib() -> Any:
    """``matplotlib.pyplot``, drawing to files; ImportError if the 'plot' extra is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(results: list[Result], env: dict[str, Any], path: str) -> None:
    """Two panels: same-thread cost per cycle, and throughput with returner threads."""
    plt = load_matplotlib()

    by_key = {result.scenario.key: result for result in results}
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    cycle = by_key.get("cycle")
    if cycle:
        rows = sorted(cycle.rows, key=lambda row: row.ns_per_op)
        with_block = by_key.get("with")
        labels = [row.contender for row in rows]
        values = [row.ns_per_op for row in rows]
        if with_block:
            for row in with_block.rows:
                labels.append(f"{row.contender} with-block")
                values.append(row.ns_per_op)
        colors = ["tab:green" if "nexus_pool" in label else "tab:gray" for label in labels]
        left.barh(labels, values, color=colors)
        left.set_xscale("log")
        left.invert_yaxis()
        left.set_xlabel("ns per acquire + release (log scale, lower is better)")
        left.set_title("same thread")
        for y, value in enumerate(values):
            left.text(value, y, f" {value:.0f}", va="center", fontsize=8)
    keys = [key for key in ("return-1", "return-2", "return-3", "return-4", "fan-out") if key in by_key]
    if keys:
        names = sorted(
            {row.contender for key in keys for row in by_key[key].rows},
            key=lambda name: (not name.startswith("nexus_pool"), name),
        )
        width = 0.8 / max(len(names), 1)
        for index, name in enumerate(names):
            rates = []
            for key in keys:
                found = by_key[key].row(name)
                rates.append(1e9 / found.ns_per_op / 1e3 if found else 0.0)
            positions = [k + index * width for k in range(len(keys))]
            right.bar(positions, rates, width, label=name)
        right.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))])
        right.set_xticklabels(["1 returner", "2 returners", "3 returners", "4 returners", "fan-out (4)"][: len(keys)])
        right.set_ylabel("thousand round trips per second (higher is better)")
        right.set_title("1 acquirer, buffers returned by other threads")
        right.legend(fontsize=8)
    figure.suptitle(f"nexus_pool benchmark - {env['interpreter']} - {env['machine']}\n{env['command']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
