"""Signal storms against a pool, in a process of their own (``python -m tests.interrupts.storm``).

Two experiments, each printing one JSON line:

``deadline BACKEND``
    Every slot is out; SIGALRM arrives every 20 µs with a handler that does nothing;
    ``acquire(timeout=0.05)`` is called 60 times. Each call must give up on time.

``interrupts BACKEND SECONDS [keep]``
    Episodes of about 0.25 s. In each, SIGALRM arrives every 20-300 µs (a fresh random
    interval per episode) and its handler raises ``KeyboardInterrupt`` whenever it runs
    inside nexus_pool's code or inside the loop body that uses the pools (never in this
    script's own bookkeeping, so that the experiment itself survives). The body acquires
    and releases (``try_acquire``, ``acquire``, ``with``), drops guards, hands guards to a
    returner thread, and releases guards that another thread acquired from a second pool.
    After each episode the storm stops and both pools are audited from outside: every
    slot free, each value once, each value reset. With ``keep``, ``sys.unraisablehook``
    keeps its arguments (as pytest's plugin and many logging set-ups do: the exception,
    its traceback, the object) until the episode ends, then lets them go.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import nexus_pool
from nexus_pool import Pool, Pooled, PoolExhausted, ReleasedError

PACKAGE_DIR = os.path.dirname(os.path.abspath(nexus_pool.__file__)) + os.sep
CAPACITY = 8


class Buffer:
    __slots__ = ("payload",)

    def __init__(self) -> None:
        self.payload: object = None


def reset(buffer: Buffer) -> None:
    buffer.payload = None


def storm(interval: float, handler: Callable[[int, FrameType | None], None]) -> None:
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)


def calm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)


def deadline(backend: str) -> dict[str, object]:
    pool = Pool(2, Buffer, reset, backend=backend)
    held = [pool.acquire(), pool.acquire()]
    signals = [0]

    def count(signum: int, frame: FrameType | None) -> None:
        signals[0] += 1

    waits = []
    storm(20e-6, count)
    try:
        for _ in range(60):
            started = time.monotonic()
            try:
                pool.acquire(timeout=0.05)
            except PoolExhausted:
                pass
            else:
                raise AssertionError("acquired from an exhausted pool")
            waits.append(time.monotonic() - started)
    finally:
        calm()
    for guard in held:
        guard.release()
    return {"experiment": "deadline", "backend": backend, "signals": signals[0], "calls": len(waits),
            "longest_s": max(waits), "median_s": sorted(waits)[len(waits) // 2]}  # fmt: skip


class Episode:
    """One episode's pools, helper threads and counters."""

    def __init__(self, backend: str) -> None:
        self.main = Pool(CAPACITY, Buffer, reset, backend=backend)  # acquired here
        self.other = Pool(CAPACITY, Buffer, reset, backend=backend)  # acquired by a helper thread
        self.to_returner: queue.SimpleQueue[Pooled[Buffer] | None] = queue.SimpleQueue()
        self.from_helper: queue.SimpleQueue[Pooled[Buffer]] = queue.SimpleQueue()
        self.stop = threading.Event()
        # Daemons: if this script fails, it exits with its traceback instead of waiting for them.
        self.threads = [
            threading.Thread(target=self.returner, daemon=True),
            threading.Thread(target=self.helper, daemon=True),
        ]
        self.held: list[Pooled[Buffer]] = []
        self.operations = 0

    def returner(self) -> None:
        while (guard := self.to_returner.get()) is not None:
            guard.release()

    def helper(self) -> None:
        while not self.stop.is_set():
            try:
                guard = self.other.acquire(timeout=0.01)
            except PoolExhausted:
                continue
            guard.value.payload = "used by the helper"
            self.from_helper.put(guard)

    def body(self) -> None:
        """What the storm hits: one round of everything, on the main thread."""
        main = self.main
        choice = random.randrange(6)
        if choice == 0:
            guard = main.try_acquire()
            if guard is not None:
                guard.value.payload = "used"
                guard.release()
        elif choice == 1:
            with main.acquire(timeout=0.01) as value:
                value.payload = "used"
        elif choice == 2:
            guard = main.acquire(timeout=0.01)
            guard.value.payload = "used"
            self.to_returner.put(guard)
        elif choice == 3:
            guard = main.acquire(timeout=0.01)
            guard.value.payload = "dropped"
            del guard
        elif choice == 4:
            guard = main.acquire(timeout=0.01)
            guard.value.payload = "kept"
            self.held.append(guard)
            if len(self.held) > 2:
                self.held.pop(0).release()
        else:
            self.from_helper.get(timeout=0.01).release()
        self.operations += 1

    def run(self, seconds: float, interval: float) -> int:
        """Run the body under the storm; the number of KeyboardInterrupts it took."""
        interrupts = 0

        def raise_inside(signum: int, frame: FrameType | None) -> None:
            while frame is not None:
                code = frame.f_code
                if code.co_filename.startswith(PACKAGE_DIR) or code is Episode.body.__code__:
                    raise KeyboardInterrupt
                if code.co_filename == __file__:
                    return  # this script's bookkeeping: let it be
                frame = frame.f_back

        for thread in self.threads:
            thread.start()
        end = time.monotonic() + seconds
        storm(interval, raise_inside)
        try:
            while time.monotonic() < end:
                try:
                    self.body()
                except KeyboardInterrupt:
                    interrupts += 1
                except (PoolExhausted, queue.Empty):
                    pass
        finally:
            calm()
        return interrupts

    def audit(self) -> list[str]:
        """Stop the helpers, give everything back, and check both pools from outside."""
        self.stop.set()
        self.to_returner.put(None)
        for thread in self.threads:
            thread.join(timeout=30)
            if thread.is_alive():
                return [f"{thread.name} hangs"]
        while self.held:
            self.held.pop().release()
        while True:
            try:
                self.from_helper.get_nowait().release()
            except queue.Empty:
                break
        problems = []
        for name, pool in (("main", self.main), ("other", self.other)):
            if pool.available() != CAPACITY:
                problems.append(f"{name}: available() is {pool.available()} of {CAPACITY}")
            guards = []
            while (guard := pool.try_acquire()) is not None:
                guards.append(guard)
            values = [guard.value for guard in guards]
            if len(guards) != CAPACITY:
                problems.append(f"{name}: {len(guards)} of {CAPACITY} slots could be acquired")
            if len({id(value) for value in values}) != len(values):
                problems.append(f"{name}: a value sits in two slots")
            if any(value.payload is not None for value in values):
                problems.append(f"{name}: a value came back without its reset")
            for guard in guards:
                guard.release()
        return problems


def interrupts(backend: str, seconds: float, keep: bool = False) -> dict[str, object]:
    unraisable: list[str] = []
    kept: list[object] = []

    def hook(hook_args: Any) -> None:
        unraisable.append(hook_args.exc_type.__name__)
        if keep:
            kept.append(hook_args)

    sys.unraisablehook = hook
    episodes = operations = delivered = 0
    problems: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        episode = Episode(backend)
        delivered += episode.run(0.25, random.uniform(20e-6, 300e-6))
        operations += episode.operations
        episodes += 1
        kept.clear()
        gc.collect()
        problems += [f"episode {episodes}: {problem}" for problem in episode.audit()]
        try:
            episode.main.acquire(timeout=0).release()  # usable after the storm
        except (PoolExhausted, ReleasedError) as exc:
            problems.append(f"episode {episodes}: unusable afterwards: {exc!r}")
    return {
        "experiment": "interrupts",
        "backend": backend,
        "keep": keep,
        "episodes": episodes,
        "operations": operations,
        "interrupts": delivered,
        "interrupted_finalizers": len(unraisable),
        "problems": problems,
    }


def main(argv: list[str]) -> int:
    experiment, backend = argv[0], argv[1]
    if experiment == "deadline":
        result = deadline(backend)
    else:
        result = interrupts(backend, float(argv[2]), keep=argv[3:] == ["keep"])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
