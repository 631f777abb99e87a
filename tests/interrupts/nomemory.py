"""Allocation failures while a guard is dropped (``python -m tests.interrupts.nomemory BACKEND``).

For each n, ``_testcapi.set_nomemory(n, n + 4)`` makes the n-th to the (n+3)-th memory
allocations after it fail, then the only guard of a slot is dropped: the lease dies while
memory runs out, in its finalizer, its weak reference callbacks, or the revival they start.
Afterwards (the failures over, ``sys.unraisablehook`` having kept its arguments and let them
go) every slot must come back, each value once. Prints one JSON line.
"""

from __future__ import annotations

import _testcapi  # type: ignore[import-not-found]  # CPython's test module; absent from some builds
import gc
import json
import sys
from typing import Any

from nexus_pool import Pool

from .storm import Buffer, reset

CAPACITY = 2


def main(backend: str) -> dict[str, object]:
    kept: list[Any] = []
    sys.unraisablehook = kept.append
    problems = []
    failures_seen = 0
    for start in range(60):
        pool = Pool(CAPACITY, Buffer, reset, backend=backend)
        guard = pool.acquire()
        guard.value.payload = "dropped"
        _testcapi.set_nomemory(start, start + 4)
        try:
            del guard
        except MemoryError:
            pass
        finally:
            _testcapi.remove_mem_hooks()
        failures_seen += len(kept)
        kept.clear()
        gc.collect()
        if pool.available() != CAPACITY:
            problems.append(f"n={start}: available() is {pool.available()} of {CAPACITY}")
        guards = [pool.try_acquire() for _ in range(CAPACITY + 1)]
        if guards[-1] is not None or None in guards[:-1]:
            problems.append(f"n={start}: {sum(g is not None for g in guards)} slots could be acquired")
        values = [g.value for g in guards if g is not None]
        if len({id(value) for value in values}) != len(values):
            problems.append(f"n={start}: a value sits in two slots")
        if any(value.payload is not None for value in values):
            problems.append(f"n={start}: a value came back without its reset")
    return {"backend": backend, "rounds": 60, "unraisable": failures_seen, "problems": problems}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
