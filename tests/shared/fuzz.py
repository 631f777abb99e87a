"""A shared block written at random by another process while it is in use.

``python -m tests.shared.fuzz SEED WRITES``, in a fresh, single-threaded interpreter (so
that fork is safe). The producer (this process) acquires, fills and hands buffers to two
forked workers: one receives handles sent through a pipe, the other takes leases from the
block's own work queue; both read and release them. A forked fuzzer writes random bytes
into random fields of the block's header, slot records and work-queue ring (seeded), now
and then putting the geometry back for a moment, freeing every slot and emptying the
queue, so that traffic goes on and the deeper paths run on corrupt lease words, hints and
ring entries too. Every operation must either work or raise one of the package's errors,
and every process must end on its own: a crash (or, under AddressSanitizer, an
out-of-bounds access) is a nonzero status. Prints one line of figures; exits 1 if any
process crashed.
"""

from __future__ import annotations

import mmap
import os
import queue
import random
import select
import struct
import sys
import time
from collections import Counter

from nexus_pool import PoolExhausted, PoolShutDown, ReleasedError, SharedBlockCorrupted, shared

CAPACITY = 6
HEADER = 384
RECORD = 64
GEOMETRY = 40
"""Bytes of the header that say what the block is (magic, version, sizes, creator)."""
FLAGS, TAIL, STOPS, HEAD = 136, 192, 200, 256
"""Offsets of the shut-down flag and of the work queue's counters."""
RING = HEADER + CAPACITY * RECORD
RING_END = RING + 2 * CAPACITY * 8
EXPECTED = (ReleasedError, SharedBlockCorrupted, PoolExhausted, PoolShutDown, queue.Empty)


def touch(buffer: shared.SharedBuffer) -> None:
    buffer.data[0] = buffer.data[-1] = 7
    buffer.length = min(buffer.length, buffer.size)


def pipe_worker(name: str, inbox: int) -> int:
    with os.fdopen(inbox, "r") as lines:
        for line in lines:
            if line.strip() == "stop":
                break
            slot, generation = (int(part) for part in line.split())
            try:
                with shared.receive(shared.Handle(name, slot, generation)) as buffer:
                    touch(buffer)
            except EXPECTED:
                pass
    return 0


def queue_worker(name: str, inbox: int) -> int:
    """Takes from the block's queue until the producer writes to the pipe (the queue's own
    stop marker may be fuzzed away)."""
    work = shared.receiver(name)
    while not select.select([inbox], [], [], 0)[0]:
        try:
            lease = work.get(timeout=0.01)
            if lease is not None:
                with lease as buffer:
                    touch(buffer)
        except EXPECTED:
            pass
    return 0


def fuzz(name: str, seed: int, writes: int) -> int:
    rng = random.Random(seed)
    with open(f"/dev/shm/{name}", "r+b") as file:
        memory = mmap.mmap(file.fileno(), 0)
    geometry = memory[:GEOMETRY]
    for done in range(writes):
        where = rng.random()
        if where < 0.45:
            offset = HEADER + rng.randrange(CAPACITY) * RECORD + rng.randrange(24)  # lease, since, length
        elif where < 0.6:
            offset = RING + rng.randrange(RING_END - RING)
        elif where < 0.8:
            offset = 64 + rng.randrange(HEADER - 64)  # hint, wake words, sleepers, flags, queue ends
        else:
            offset = rng.randrange(GEOMETRY)  # put back below
        size = min(rng.randint(1, 8), RING_END - offset)
        memory[offset : offset + size] = rng.randbytes(size)
        time.sleep(rng.random() * 0.0005)
        if where >= 0.8 or done % 10 == 0:
            memory[:GEOMETRY] = geometry
        if done % 10 == 0:  # free every slot and empty the queue, so that traffic goes on
            for slot in range(CAPACITY):
                start = HEADER + slot * RECORD
                generation = rng.randrange(1 << 32)
                memory[start : start + 8] = struct.pack("<Q", generation << 32)
            memory[FLAGS : FLAGS + 4] = bytes(4)
            memory[STOPS : STOPS + 4] = bytes(4)
            memory[HEAD : HEAD + 8] = memory[TAIL : TAIL + 8]
    memory[:GEOMETRY] = geometry
    memory.close()
    return 0


def main(seed: int, writes: int) -> int:
    pool = shared.SharedBufferPool(CAPACITY, 4096)
    outboxes, children = [], []
    for worker in (pipe_worker, queue_worker):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(write)
            os._exit(worker(pool.name, read))
        os.close(read)
        outboxes.append(os.fdopen(write, "w", buffering=1))
        children.append(child)
    fuzzer = os.fork()
    if fuzzer == 0:
        os._exit(fuzz(pool.name, seed, writes))
    operations = 0
    errors: Counter[str] = Counter()
    fuzzer_status = None
    work = pool.queue
    while fuzzer_status is None:
        finished, status = os.waitpid(fuzzer, os.WNOHANG)
        if finished:
            fuzzer_status = status
            break
        operations += 1
        try:
            if operations % 25 == 0:
                pool.reclaim(transit_max_age=0.05)
                pool.available()
                pool.stats()
            lease = pool.acquire(timeout=0.01)
            lease.value.data[:4] = b"fuzz"
            if operations % 2:
                work.put(lease)
            else:
                handle = lease.send()
                outboxes[0].write(f"{handle.slot} {handle.generation}\n")
        except EXPECTED as error:
            errors[type(error).__name__] += 1
            time.sleep(0.0001)  # let the fuzzer put things back
    outboxes[0].write("stop\n")
    outboxes[1].write("stop\n")
    for outbox in outboxes:
        outbox.close()
    statuses = [os.waitpid(child, 0)[1] for child in children]
    pool.close()
    crashed = [status for status in [fuzzer_status, *statuses] if status != 0]
    print(
        f"shared fuzz: {writes} writes into the block (seed {seed}), {operations} producer operations, "
        f"errors {dict(errors)}, {len(crashed)} crashed processes"
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
