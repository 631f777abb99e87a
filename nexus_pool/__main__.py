"""``python -m nexus_pool``: what this interpreter offers, then a fan-out run on each backend.

A parser thread fills pooled ``bytearray`` buffers and hands the guards to worker
threads, which release them; the run checks that every buffer came back.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time

from . import Pool, Pooled, __version__, available_backends
from ._backends import default_backend


def fan_out(backend: str, frames: int, workers: int, capacity: int) -> float:
    """Run the fan-out pattern; return frames per second."""
    pool = Pool(capacity, bytearray, bytearray.clear, backend=backend)
    inbox: queue.SimpleQueue[Pooled[bytearray] | None] = queue.SimpleQueue()
    corrupted: list[bytes] = []

    def worker() -> None:
        while (frame := inbox.get()) is not None:
            with frame as payload:
                if not payload.startswith(b"frame "):
                    corrupted.append(bytes(payload))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    for number in range(frames):
        guard = pool.acquire(timeout=30)
        guard.value.extend(b"frame %d" % number)
        inbox.put(guard)
    del guard
    for _ in threads:
        inbox.put(None)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if corrupted:
        raise AssertionError(f"{len(corrupted)} frames were corrupted, e.g. {corrupted[0]!r}")
    if pool.available() != capacity:
        raise AssertionError(f"{capacity - pool.available()} slots did not come back")
    return frames / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexus_pool", description=__doc__)
    parser.add_argument("--frames", type=int, default=100_000, help="frames per backend (default 100000)")
    parser.add_argument("--workers", type=int, default=4, help="releasing threads (default 4)")
    parser.add_argument("--capacity", type=int, default=64, help="pool capacity (default 64)")
    args = parser.parse_args(argv)

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"nexus_pool {__version__} on Python {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded'})")
    print(f"backends available: {', '.join(available_backends())}; default: {default_backend()}")
    print(f"fan-out: 1 parser thread, {args.workers} workers, capacity {args.capacity}, {args.frames} frames")
    for backend in available_backends():
        rate = fan_out(backend, args.frames, args.workers, args.capacity)
        print(f"  {backend:<8} {rate:>12,.0f} frames/s   all {args.capacity} buffers returned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
