"""SIGKILL storm against worker processes holding shared buffers.

Run in a fresh, single-threaded interpreter (so fork is safe):
``python -m tests.shared.storm TRIALS SECONDS``. Each trial forks a worker that receives
1-3 buffers and holds them, or releases them, and kills it at a random moment; the
producer then reclaims. After every trial: no slot is held by a dead process, no handle
of a killed worker can be received again, and acquiring the whole pool gives every slot
exactly once. Prints one line of figures; exits 1 on the first broken invariant.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

from nexus_pool import ReleasedError, shared


def main(trials: int, seconds: float) -> int:
    rng = random.Random(11)
    capacity = 6
    deadline = time.monotonic() + seconds
    done = reclaimed = 0
    with shared.SharedBufferPool(capacity, 4096) as pool:
        while done < trials and time.monotonic() < deadline:
            handles = [pool.acquire(0).send() for _ in range(rng.randint(1, 3))]
            read, write = os.pipe()
            child = os.fork()
            if child == 0:  # the worker: claim, maybe release some, report, then wait
                os.close(read)
                leases = [shared.receive(handle) for handle in handles]
                for lease in leases[: rng.randint(0, len(leases))]:
                    lease.release()
                os.write(write, b"!")
                time.sleep(rng.random() * 0.002)
                if rng.random() < 0.1:
                    os._exit(0)  # some exit on their own, holding what they hold
                time.sleep(60)
            os.close(write)
            if rng.random() < 0.5:
                os.read(read, 1)  # kill after it claimed
            else:
                time.sleep(rng.random() * 0.003)  # kill at any moment, even mid-claim
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            os.close(read)
            reclaimed += pool.reclaim(transit_max_age=0)  # a kill before its claim leaves transit
            for handle in handles:
                try:
                    shared.receive(handle).release()
                except ReleasedError:
                    continue
                print(f"trial {done}: a killed worker's handle was received again: {handle}")
                return 1
            leases = [pool.acquire(0) for _ in range(capacity)]
            slots = sorted(lease.slot for lease in leases)
            if slots != list(range(capacity)) or pool.try_acquire() is not None:
                print(f"trial {done}: slots {slots}: lost or lent twice")
                return 1
            for lease in leases:
                lease.release()
            done += 1
    print(f"shared SIGKILL storm: {done} trials, {reclaimed} buffers reclaimed, 0 invariant failures")
    return 0 if done >= min(trials, 1) else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), float(sys.argv[2])))
