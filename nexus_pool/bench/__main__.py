"""python -m nexus_pool.bench: nexus_pool against the alternatives, in one run.

    python -m nexus_pool.bench --quick             # about a minute
    python -m nexus_pool.bench                     # the full run, about half an hour
    python -m nexus_pool.bench --json out.json --plot chart.png

Scenarios follow the Rust crate's benches (same-thread acquire+release, cross-thread
return with 1-4 returners, concurrent release at a barrier) plus a fan-out pipeline and
real work: a reader thread readinto()s a file's chunks, workers hash them.
Contenders: every nexus_pool backend available here, queue.LifoQueue (urllib3's pool
pattern), queue.SimpleQueue, a collections.deque free list, a lock + list, and pondpond
when installed (pip install 'nexus-pool[bench]'). The floor is a bare deque
pop() + append() with the same clear() reset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys

from ._contenders import contenders, skipped_contenders
from ._report import as_json, environment, load_matplotlib, plot, tables
from ._runner import run_benchmark, scenarios
from ._scenarios import Sizes

# Many short repeats rather than a few long ones: on a shared machine a burst of noise
# then spoils a few runs of each contender, which the median drops.
FULL = Sizes(cycles=50_000, items=15_000, rounds=80, file_bytes=64 << 20)
QUICK = Sizes(cycles=20_000, items=6_000, rounds=30, file_bytes=16 << 20)
TINY = Sizes(cycles=200, items=100, rounds=2, file_bytes=2 << 20)  # for the test suite's smoke test


_SUMMARY, _DETAILS = (__doc__ or "\n").split("\n", 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nexus_pool.bench",
        description=_SUMMARY,
        epilog=_DETAILS,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the examples' layout
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a short run, about a minute")
    size.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, help="repeats per scenario (default: 21, or 3 with --quick)")
    parser.add_argument("--only", metavar="KEY", action="append", help="run only these scenarios (repeatable)")
    parser.add_argument(
        "--file-capacity",
        type=int,
        metavar="N",
        help="slots (and queue bound) in the file scenarios (default: 64 for chunks up to 64 KiB, else 2N+2)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout only)")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw a chart (needs the 'plot' extra: matplotlib)")
    args = parser.parse_args(argv)

    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.tiny else 3 if args.quick else 21)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.file_capacity is not None:
        if args.file_capacity < 1:
            parser.error("--file-capacity must be at least 1")
        sizes = dataclasses.replace(sizes, file_capacity=args.file_capacity)
    chosen = scenarios()
    if args.only:
        unknown = set(args.only) - {scenario.key for scenario in chosen}
        if unknown:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {[s.key for s in chosen]}")
        chosen = [scenario for scenario in chosen if scenario.key in args.only]

    if args.plot:  # before measuring: a missing extra must not cost a whole run
        try:
            load_matplotlib()
        except ImportError as exc:
            parser.error(f"--plot needs matplotlib: pip install 'nexus-pool[plot]' ({exc})")
    command = "python -m nexus_pool.bench" + "".join(f" {shlex.quote(arg)}" for arg in (argv or sys.argv[1:]))
    env = environment(command)
    env["skipped_contenders"] = skipped_contenders()
    quiet = args.json == "-"
    results, clock_cost = run_benchmark(
        contenders(), chosen, sizes, repeats, progress=(lambda m: None) if quiet else _progress
    )
    document = as_json(results, env, clock_cost)
    if quiet:
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        print(tables(results, env, clock_cost))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(document, out, indent=2)
    if args.plot:
        plot(results, env, args.plot)
    return 0


def _progress(message: str) -> None:
    print(f"\r{message}...", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
