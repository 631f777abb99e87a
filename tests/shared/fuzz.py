"""A shared block written at random by another process while it is in use.

``python -m tests.shared.fuzz SEED WRITES``, in a fresh, single-threaded interpreter (so
that fork is safe). The producer (this process) acquires, fills and sends buffers to two
forked workers, which receive, read and release them; a forked fuzzer writes random
bytes into random fields of the block's header and slot records (seeded), now and then
putting the geometry back for a moment and freeing every slot, so that traffic goes on
and the deeper paths run on corrupt lease words and hints too. Every operation must
either work or raise one of the package's errors, and every process must end on its own:
a crash (or, under AddressSanitizer, an out-of-bounds access) is a nonzero status.
Prints one line of figures; exits 1 if any process crashed.
"""

from __future__ import annotations

import mmap
import os
import random
import struct
import sys
import time
from collections import Counter

from nexus_pool import PoolExhausted, ReleasedError, SharedBlockCorrupted, shared

CAPACITY = 6
HEADER = 192
RECORD = 64
EXPECTED = (ReleasedError, SharedBlockCorrupted, PoolExhausted)


def worker(name: str, inbox: int) -> int:
    errors: Counter[str] = Counter()
    with os.fdopen(inbox, "r") as lines:
        for line in lines:
            if line.strip() == "stop":
                break
            slot, generation = (int(part) for part in line.split())
            try:
                with shared.receive(shared.Handle(name, slot, generation)) as buffer:
                    buffer[0] = buffer[-1] = 7
            except EXPECTED as error:
                errors[type(error).__name__] += 1
    return 0


def fuzz(name: str, seed: int, writes: int) -> int:
    rng = random.Random(seed)
    with open(f"/dev/shm/{name}", "r+b") as file:
        memory = mmap.mmap(file.fileno(), 0)
    geometry = memory[:40]
    records_end = HEADER + CAPACITY * RECORD
    for done in range(writes):
        where = rng.random()
        if where < 0.6:
            offset = HEADER + rng.randrange(CAPACITY) * RECORD + rng.randrange(16)
        elif where < 0.8:
            offset = 64 + rng.randrange(HEADER - 64)  # hint, wake word, sleepers
        else:
            offset = rng.randrange(40)  # geometry: put back below
        size = min(rng.randint(1, 8), records_end - offset)
        memory[offset : offset + size] = rng.randbytes(size)
        time.sleep(rng.random() * 0.0005)
        if where >= 0.8 or done % 10 == 0:
            memory[:40] = geometry
        if done % 10 == 0:  # free every slot, so that traffic goes on
            for slot in range(CAPACITY):
                start = HEADER + slot * RECORD
                generation = rng.randrange(1 << 32)
                memory[start : start + 8] = struct.pack("<Q", generation << 32)
    memory[:40] = geometry
    memory.close()
    return 0


def main(seed: int, writes: int) -> int:
    pool = shared.SharedBufferPool(CAPACITY, 4096)
    outboxes, children = [], []
    for _ in range(2):
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
    rng = random.Random(seed + 1)
    operations = 0
    errors: Counter[str] = Counter()
    fuzzer_status = None
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
            lease = pool.acquire(timeout=0.01)
            lease.buffer[0] = 1
            handle = lease.send()
            rng.choice(outboxes).write(f"{handle.slot} {handle.generation}\n")
        except EXPECTED as error:
            errors[type(error).__name__] += 1
            time.sleep(0.0001)  # let the fuzzer put things back
    for outbox in outboxes:
        outbox.write("stop\n")
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
