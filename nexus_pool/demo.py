"""python -m nexus_pool.demo: the market-data fan-out nexus_pool is made for.

A parser thread fills pooled buffers with synthetic market-data frames (each a batch of
fixed-size binary messages: sequence number, symbol, price, quantity) and hands each
buffer to one of N worker threads through a ``queue.SimpleQueue``; the worker parses the
messages, keeps a running volume-weighted price per symbol, and releases the buffer,
which goes straight back to the parser's pool: no second queue. The parser blocks in
``acquire()`` when every buffer is out.

It prints a progress line while it runs, then frames and messages per second and the
pool's statistics, and checks that every message was parsed exactly once (a buffer
reused while a worker read it would break the check). When the parser has waited a
second for a buffer, it prints who holds the pool's buffers (``pool.holders()``); with
no worker at all, nobody ever will release one, and the run ends there.

    python -m nexus_pool.demo                          # 4 workers, 3 seconds
    python -m nexus_pool.demo --workers 2 --seconds 10 --capacity 16 --backend debug
    python -m nexus_pool.demo --workers 0 --capacity 8           # the pool runs dry
    python -m nexus_pool.demo --workers 1 --slow-worker 1.5      # a worker that stalls it
"""

from __future__ import annotations

import argparse
import queue
import random
import struct
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from . import Pool, Pooled, PoolExhausted, available_backends

MESSAGE = struct.Struct("<QHxxxxxxdQ")
"""One market-data message: sequence number, symbol id, price, quantity (32 bytes)."""

FRAME_MESSAGES = 64
FRAME_BYTES = MESSAGE.size * FRAME_MESSAGES
SYMBOLS = 50

_SUMMARY, _DETAILS = (__doc__ or "\n").split("\n", 1)


@dataclass
class Tally:
    """One worker's results; merged at the end."""

    messages: int = 0
    sequence_sum: int = 0
    volume: dict[int, int] = field(default_factory=dict)
    notional: dict[int, float] = field(default_factory=dict)


def parse(frame: memoryview, tally: Tally) -> None:
    """Parse one frame's messages into ``tally``: the work a worker does per buffer."""
    volume, notional = tally.volume, tally.notional
    count = sequence_sum = 0
    for sequence, symbol, price, quantity in MESSAGE.iter_unpack(frame):
        volume[symbol] = volume.get(symbol, 0) + quantity
        notional[symbol] = notional.get(symbol, 0.0) + price * quantity
        sequence_sum += sequence
        count += 1
    tally.messages += count
    tally.sequence_sum += sequence_sum


STALL_SECONDS = 1.0
"""How long the parser waits for a buffer before it reports who holds them."""


def worker(frames: queue.SimpleQueue[tuple[Pooled[bytearray], int] | None], tally: Tally, slow: float = 0.0) -> None:
    while (item := frames.get()) is not None:
        guard, length = item
        with guard as buffer:  # released (back to the parser's pool) at the end of the block
            parse(memoryview(buffer)[:length], tally)
            if slow:
                time.sleep(slow)


def report_stall(pool: Pool[bytearray], error: PoolExhausted, out: TextIO) -> None:
    """What the parser prints when it has waited a second: the pool's holders."""
    print(f"  the parser has waited {STALL_SECONDS:g} s for a buffer: {error}", file=out)
    holders = sorted(error.holders, key=lambda holder: -holder.seconds)
    for holder in holders[:5]:
        print(f"    {holder}", file=out)
    if len(holders) > 5:
        print(f"    ... and {len(holders) - 5} more", file=out)


def run(
    *,
    workers: int,
    seconds: float,
    capacity: int,
    backend: str | None,
    slow_worker: float = 0.0,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Run the fan-out for ``seconds``; print the figures; return them."""
    # track="every": each buffer knows where it was acquired (about 0.3 µs per frame here).
    pool = Pool(capacity, lambda: bytearray(FRAME_BYTES), backend=backend, track="every")
    frames: queue.SimpleQueue[tuple[Pooled[bytearray], int] | None] = queue.SimpleQueue()
    tallies = [Tally() for _ in range(workers)]
    threads = [
        threading.Thread(
            target=worker, args=(frames, tally, slow_worker if n == 0 else 0.0), name=f"worker-{n}", daemon=True
        )
        for n, tally in enumerate(tallies)
    ]
    for thread in threads:
        thread.start()
    rng = random.Random(1)
    prices = [100.0 + rng.random() * 50 for _ in range(SYMBOLS)]
    sequence = sent = 0
    started = time.perf_counter()
    deadline = started + seconds
    next_progress = started + 0.5
    try:
        while (now := time.perf_counter()) < deadline:
            try:
                guard = pool.acquire(timeout=STALL_SECONDS)
            except PoolExhausted as stalled:
                report_stall(pool, stalled, out)
                if not workers:
                    print("  no worker will ever release one: stopping", file=out)
                    break
                continue
            buffer = guard.value
            for offset in range(0, FRAME_BYTES, MESSAGE.size):  # the parser writes a frame
                symbol = sequence % SYMBOLS
                MESSAGE.pack_into(buffer, offset, sequence, symbol, prices[symbol], 1 + sequence % 7)
                sequence += 1
            frames.put((guard, FRAME_BYTES))
            del guard, buffer
            sent += 1
            if now >= next_progress:
                stats = pool.stats()
                print(
                    f"  {now - started:5.1f} s  {sent / (now - started):10,.0f} frames/s  "
                    f"in use {stats.in_use:3}/{capacity}  waited {stats.wait_seconds:6.2f} s",
                    file=out,
                    flush=True,
                )
                next_progress += 0.5
    finally:
        for _ in threads:
            frames.put(None)
        for thread in threads:
            thread.join()
        if not workers:  # nobody took the frames: parse and release them here, for the check
            leftover = Tally()
            tallies.append(leftover)
            while not frames.empty():
                item = frames.get_nowait()
                if item is not None:
                    with item[0] as buffer:
                        parse(memoryview(buffer)[: item[1]], leftover)
    elapsed = time.perf_counter() - started
    parsed = sum(tally.messages for tally in tallies)
    if parsed != sequence or sum(tally.sequence_sum for tally in tallies) != sequence * (sequence - 1) // 2:
        raise AssertionError(f"{sequence} messages sent, {parsed} parsed: a buffer was reused while in use")
    stats = pool.stats()
    assert stats.in_use == 0 and pool.available() == capacity, "every buffer came back"
    gil = "disabled" if getattr(sys, "_is_gil_enabled", lambda: True)() is False else "enabled"
    print(
        f"{sent:,} frames ({parsed:,} messages) in {elapsed:.2f} s: {sent / elapsed:,.0f} frames/s, "
        f"{parsed / elapsed:,.0f} messages/s\n"
        f"pool: capacity {capacity}, backend {pool.backend}, facade {pool.facade}; "
        f"{workers} workers; Python {sys.version.split()[0]}"
        f"{' free-threaded' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''} (GIL {gil})\n"
        f"stats: {stats.acquisitions:,} acquisitions, high-water {stats.high_water}, "
        f"{stats.exhaustions:,} times exhausted, {stats.wait_seconds:.2f} s waiting for a buffer",
        file=out,
    )
    return {"frames_per_second": sent / elapsed, "messages_per_second": parsed / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nexus_pool.demo",
        description=_SUMMARY,
        epilog=_DETAILS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="worker threads (default: 4; 0: nobody releases, the pool runs dry)"
    )
    parser.add_argument(
        "--slow-worker",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="worker 0 holds each buffer this much longer (default: 0)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the parser runs (default: 3)")
    parser.add_argument("--capacity", type=int, default=64, help="pooled buffers (default: 64)")
    parser.add_argument(
        "--backend", choices=available_backends(), help="the pool's backend (default: as nexus_pool.Pool picks)"
    )
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error("--workers must be at least 0")
    if args.slow_worker < 0:
        parser.error("--slow-worker must be at least 0 seconds")
    if args.capacity < 1:
        parser.error("--capacity must be at least 1")
    if not args.seconds > 0:
        parser.error("--seconds must be more than 0")
    run(
        workers=args.workers,
        seconds=args.seconds,
        capacity=args.capacity,
        backend=args.backend,
        slow_worker=args.slow_worker,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
