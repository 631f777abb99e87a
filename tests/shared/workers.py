"""Code that runs in worker processes (importable by spawned children)."""

from __future__ import annotations

import hashlib
import multiprocessing.synchronize
import os
import signal
import time
from typing import Any

from nexus_pool import ReleasedError, shared


def hash_handles(inbox: Any, outbox: Any) -> None:
    """Receive handles until None; put (tag, sha256 of the buffer) for each."""
    while (handle := inbox.get()) is not None:
        with shared.receive(handle) as buffer:
            tag = int.from_bytes(buffer.data[:8], "little")
            outbox.put((tag, hashlib.sha256(buffer.data).hexdigest(), os.getpid()))


def race_to_receive(handle: shared.Handle, barrier: multiprocessing.synchronize.Barrier, results: Any) -> None:
    barrier.wait(30)
    try:
        lease = shared.receive(handle)
    except ReleasedError:
        results.put("refused")
    else:
        results.put("won")
        lease.release()


def hold_and_wait(inbox: Any, ready: Any) -> None:
    """Claim every handle given, say so, and sleep until killed."""
    leases = []
    while (handle := inbox.get()) is not None:
        leases.append(shared.receive(handle))
    ready.set()
    time.sleep(3600)


def produce_and_die(names: Any) -> None:
    """Make a pool, publish its name, send one buffer, and kill itself uncleanly."""
    pool = shared.SharedBufferPool(2, 4096)
    names.put(pool.name)
    names.put(pool.acquire().send())
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)


def digest_of(handle: shared.Handle) -> str:
    """A ProcessPoolExecutor task."""
    with shared.receive(handle) as buffer:
        return hashlib.sha256(buffer.data).hexdigest()


def die(handle: shared.Handle) -> None:
    """A task that dies holding its buffer."""
    held = shared.receive(handle)
    os.kill(os.getpid(), signal.SIGKILL)
    held.release()  # never reached


def wait_for_handles(name: str, inbox: Any, outcome: Any) -> None:
    """A worker that waits for handles while its producer dies."""
    try:
        for handle in shared.handles(inbox, name, poll=0.1):
            shared.receive(handle).release()
    except shared.ProducerGone as gone:
        outcome.put(f"gone: {gone}")
    else:
        outcome.put("ended")


def make_pool_and_hang(names: Any) -> None:
    """A producer that publishes its block and then hangs until killed."""
    pool = shared.SharedBufferPool(1, 64)
    names.put(pool.name)
    time.sleep(3600)
