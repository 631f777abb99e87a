"""Measures what releasing the GIL around each C call costs the atomic backend.

    python backends/gil_question.py        (needs cffi and setuptools; ~30 s)

Builds the free-list module twice in a temporary directory, once with cffi's default
wrappers (the GIL is released and errno saved around every call) and once with the glue
nexus_pool ships (build_freelist.py), then times, in the same run:

* an empty call (``nxp_max_capacity()``, no arguments);
* one pop plus one push, called the way the backend calls them;
* the same pop+push pair on 4 threads at once (contention for the list and the GIL).

Medians of 7 repeats; the README quotes the output.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_freelist import make_ffibuilder  # after the path: the build script is not a package

CALLS = 200_000
THREADS = 4
REPEATS = 7


def build(directory: str, name: str, keep_thread_state: bool) -> ModuleType:
    make_ffibuilder(name, keep_thread_state=keep_thread_state, build_dir=Path(directory)).compile(tmpdir=directory)
    return importlib.import_module(name)


def empty_call_ns(native: ModuleType) -> float:
    call = native.lib.nxp_max_capacity
    started = time.perf_counter()
    for _ in range(CALLS):
        call()
    return (time.perf_counter() - started) / CALLS * 1e9 - loop_ns()


def pop_push_ns(native: ModuleType, threads: int) -> float:
    lib = native.lib
    freelist = native.ffi.gc(lib.nxp_create(64), lib.nxp_destroy)
    pop, push = partial(lib.nxp_pop, freelist), lib.nxp_push
    tickets = [lib.nxp_ticket(freelist, slot) for slot in range(64)]
    per_thread = CALLS // threads
    start = threading.Barrier(threads + 1)

    def churn() -> None:
        start.wait()
        for _ in range(per_thread):
            slot = pop()
            if slot >= 0:
                push(tickets[slot])

    workers = [threading.Thread(target=churn) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - started) / (per_thread * threads) * 1e9


def loop_ns() -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        pass
    return (time.perf_counter() - started) / CALLS * 1e9


def main() -> None:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"Python {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded'}), medians of {REPEATS}")
    with tempfile.TemporaryDirectory() as directory:
        sys.path.insert(0, directory)
        variants = {
            "cffi default (GIL released)": build(directory, "_nxp_gil_released", keep_thread_state=False),
            "nexus_pool glue (GIL kept)": build(directory, "_nxp_gil_kept", keep_thread_state=True),
        }
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for _ in range(REPEATS):  # interleaved, so drift hits both alike
            for name, native in variants.items():
                results[name].append((empty_call_ns(native), pop_push_ns(native, 1), pop_push_ns(native, THREADS)))
    print(f"{'':30} {'empty call':>12} {'pop+push':>12} {f'pop+push, {THREADS} threads':>22}")
    for name, rows in results.items():
        empty, single, contended = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{name:30} {empty:>9.1f} ns {single:>9.1f} ns {contended:>19.1f} ns")


if __name__ == "__main__":
    main()
