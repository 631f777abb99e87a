"""No Python code crashes the interpreter through ``nexus_pool.shared``, and the block is
untrusted input.

Probes that could crash run in a child interpreter: a crash is a failing test with its
exit code. The fuzz test (``fuzz.py``) lets another process write random bytes into the
block's header and slot records while a producer and workers run.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexus_pool import ReleasedError, SharedBlockCorrupted, shared
from nexus_pool._shared import shared_unavailable
from nexus_pool._shared_native import SharedBuffer, SharedLease, WorkQueue
from nexus_pool._shared_native import SharedBufferPool as NativePool

from ..conformance.support import IN_CI

pytestmark = pytest.mark.skipif(
    bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
)

HEADER = 384
"""Bytes of the block's header: six cache lines (geometry; hint; the acquirer's wake word;
the work queue's tail; its head; the workers' wake word)."""
RECORD = 64
"""Bytes of one slot's record; its lease word comes first."""
CAPACITY_OFFSET, SIZE_OFFSET, BUFFERS_OFFSET, HINT_OFFSET, TAIL_OFFSET, HEAD_OFFSET = 12, 16, 24, 64, 192, 256


def run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; a crash or an error fails the test."""
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def pool() -> Iterator[shared.SharedBufferPool]:
    with shared.SharedBufferPool(4, 8192) as made:
        yield made


class Raw:
    """The block's bytes as another process sees them (its own mapping of the file)."""

    def __init__(self, name: str) -> None:
        with open(f"/dev/shm/{name}", "r+b") as file:
            self.memory = mmap.mmap(file.fileno(), 0)

    def write(self, offset: int, data: bytes) -> None:
        self.memory[offset : offset + len(data)] = data

    def read(self, offset: int, size: int) -> bytes:
        return self.memory[offset : offset + size]

    def close(self) -> None:
        self.memory.close()


# ---- use after close -------------------------------------------------------------------


def test_every_method_of_a_closed_pool_raises_a_clear_error(pool: shared.SharedBufferPool) -> None:
    name = pool.name
    pool.close()
    assert pool.closed and "closed" in repr(pool)
    assert (pool.name, pool.capacity, pool.size) == (name, 4, 8192)  # what it was
    for call in (pool.available, pool.try_acquire, pool.acquire, lambda: pool.acquire(0.2), pool.reclaim,
                 pool.holders, pool.stats, lambda: pool.queue.put(None)):  # fmt: skip
        with pytest.raises(ValueError, match=f"shared pool '{name}' is closed"):
            call()
    pool.close()  # again: nothing


def test_a_lease_out_at_close_keeps_working_until_released() -> None:
    done = run_child(
        """
        from nexus_pool import shared
        pool = shared.SharedBufferPool(2, 4096)
        lease = pool.acquire()
        buffer = lease.value
        view = buffer.data
        part = view[10:20]
        pool.close()
        try:
            pool.try_acquire()
        except ValueError as error:
            assert "closed" in str(error)
        else:
            raise AssertionError("a closed pool lent a buffer")
        view[:5] = b"still"  # the memory stays mapped while the lease is out
        buffer.length = 5
        assert bytes(lease.value.filled) == b"still"
        lease.release()
        part[:3] = b"abc"  # a slice kept past release: aliases, but never unmapped memory
        del lease, view, buffer, pool
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok"
    assert done.stderr == "", "nothing may be reported at exit"


def test_close_wakes_a_thread_waiting_in_acquire(pool: shared.SharedBufferPool) -> None:
    held = [pool.acquire(0) for _ in range(4)]
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire(timeout=30)
        except BaseException as error:
            outcome.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    pool.close()
    waiter.join(10)
    assert not waiter.is_alive(), "the waiter hangs"
    assert time.monotonic() - started < 1, "close() did not wake the waiter"
    assert isinstance(outcome[0], ValueError) and "closed" in str(outcome[0])
    for lease in held:
        lease.release()  # still accepted: the memory stays mapped


@pytest.mark.parametrize("run", range(8))
def test_exit_with_a_daemon_thread_asleep_in_acquire(run: int) -> None:
    """Normal interpreter exit while a daemon thread sleeps in acquire(): the block is
    closed by the exit, the mapping stays while the thread can touch it."""
    done = run_child(
        f"""
        import threading, time
        from nexus_pool import shared
        pool = shared.SharedBufferPool(1, 4096)
        held = pool.acquire()
        for _ in range({1 + run % 3}):
            threading.Thread(target=pool.acquire, daemon=True).start()
        time.sleep({0.01 * run})
        print(pool.name)
        """
    )
    name = done.stdout.strip()
    assert not os.path.exists(f"/dev/shm/{name}"), "exit leaves the block behind"
    assert "Fatal" not in done.stderr and "Segmentation" not in done.stderr, done.stderr


def test_a_closed_pool_in_a_finalizer_and_at_exit() -> None:
    """The pool, its leases and a worker-side mapping dropped in every order at exit."""
    done = run_child(
        """
        import gc
        from nexus_pool import shared
        pools = [shared.SharedBufferPool(2, 4096) for _ in range(3)]
        leases = [pool.acquire() for pool in pools]
        handles = [pools[0].acquire().send()]
        received = shared.receive(handles[0])
        pools[1].close()
        del pools[2]
        gc.collect()
        kept = (pools, leases, received)
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok" and done.stderr == ""


# ---- objects only nexus_pool.shared makes ----------------------------------------------


def test_the_compiled_types_cannot_be_made_or_copied_directly(pool: shared.SharedBufferPool) -> None:
    import copy
    import pickle

    lease = pool.acquire()
    for kind in (NativePool, SharedLease, SharedBuffer, WorkQueue):
        with pytest.raises(TypeError, match=r"made by nexus_pool\.shared"):
            kind()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            object.__new__(kind)
        with pytest.raises(TypeError):

            class Subclass(kind):  # type: ignore[valid-type,misc]
                pass

    for thing in (pool, lease, lease.value, pool.queue):
        with pytest.raises(TypeError):
            pickle.dumps(thing)
        with pytest.raises(TypeError):
            copy.copy(thing)
    buffer = lease.value
    view = buffer.data
    lease.release()
    with pytest.raises(ReleasedError):
        _ = lease.value
    with pytest.raises(ReleasedError):
        _ = buffer.data
    with pytest.raises(ReleasedError):
        buffer.length = 1
    with pytest.raises(ValueError, match="released memoryview"):
        view[0]  # the lease's own view is released with it


def test_a_dropped_lease_gives_its_buffer_back(pool: shared.SharedBufferPool) -> None:
    lease = pool.acquire()
    del lease
    assert pool.available() == 4
    handle = pool.acquire().send()
    received = shared.receive(handle)
    del received
    assert pool.available() == 4


# ---- an untrusted block ----------------------------------------------------------------


def test_attaching_refuses_what_is_no_sound_block(pool: shared.SharedBufferPool) -> None:
    raw = Raw(pool.name)
    original = raw.read(0, HEADER)
    cases = {
        "magic": (0, b"XXXXXXXX"),
        "version": (8, struct.pack("<I", 99)),
        "capacity beyond the mapping": (CAPACITY_OFFSET, struct.pack("<I", 1 << 19)),
        "capacity zero": (CAPACITY_OFFSET, struct.pack("<I", 0)),
        "buffer size beyond the mapping": (SIZE_OFFSET, struct.pack("<Q", 1 << 30)),
        "buffers offset": (BUFFERS_OFFSET, struct.pack("<Q", 1 << 40)),
    }
    try:
        for offset, data in cases.values():
            raw.write(offset, data)
            with pytest.raises(SharedBlockCorrupted):
                NativePool._attach(pool.name)
            raw.write(0, original)
        assert NativePool._attach(pool.name).capacity == 4, "the restored block attaches again"
    finally:
        raw.close()
    with open("/dev/shm/nxp-not-a-block-test", "wb") as file:
        file.write(b"x" * 10000)
    try:
        with pytest.raises(SharedBlockCorrupted):
            NativePool._attach("nxp-not-a-block-test")
    finally:
        os.unlink("/dev/shm/nxp-not-a-block-test")
    with pytest.raises(FileNotFoundError):
        NativePool._attach("nxp-no-such-block")
    with pytest.raises(ValueError, match="without '/'"):
        NativePool._attach("../etc")


def test_a_header_rewritten_after_attach_is_refused_not_followed(pool: shared.SharedBufferPool) -> None:
    lease = pool.acquire()
    handle = lease.send()
    raw = Raw(pool.name)
    original = raw.read(0, HEADER)
    try:
        raw.write(CAPACITY_OFFSET, struct.pack("<I", 1 << 20))  # as if there were a million slots
        for call in (pool.available, pool.try_acquire, pool.reclaim, lambda: shared.receive(handle)):
            with pytest.raises(SharedBlockCorrupted, match="is corrupt"):
                call()
        raw.write(0, original)
        with shared.receive(handle) as buffer:
            assert buffer.size == 8192
    finally:
        raw.close()
    assert pool.available() == 4


def test_indices_read_from_the_block_are_checked(pool: shared.SharedBufferPool) -> None:
    raw = Raw(pool.name)
    queue = pool.queue
    try:
        for hint in (5, 1 << 31, 0xFFFFFFFF):  # index + 1 of a slot that does not exist
            raw.write(HINT_OFFSET, struct.pack("<I", hint))
            leases = [pool.acquire(0) for _ in range(4)]
            assert sorted(lease.slot for lease in leases) == [0, 1, 2, 3]
            for lease in leases:
                lease.release()
        # Ring entries naming slots that do not exist, or leases not queued: skipped.
        ring = HEADER + 4 * RECORD
        for position, entry in enumerate((0, 99, (7 << 32) | 2, 0xFFFFFFFFFFFFFFFF)):
            raw.write(ring + 8 * position, struct.pack("<Q", entry))
        raw.write(TAIL_OFFSET, struct.pack("<Q", 4))
        lease = pool.acquire()
        lease.value.write(b"real")
        queue.put(lease)  # written at position 4
        taken = queue.get(timeout=1)
        assert taken is not None and bytes(taken.value.filled) == b"real"
        taken.release()
        # A tail further ahead of the head than the ring holds: corrupt, refused.
        raw.write(TAIL_OFFSET, struct.pack("<Q", 1 << 40))
        with pytest.raises(SharedBlockCorrupted):
            queue.get(timeout=0)
        raw.write(TAIL_OFFSET, struct.pack("<Q", 5))
        raw.write(HEAD_OFFSET, struct.pack("<Q", 5))
        # A slot's length beyond the buffer: read as the buffer's size, never beyond.
        lease = pool.acquire()
        raw.write(HEADER + lease.slot * RECORD + 16, struct.pack("<Q", 1 << 50))
        assert lease.value.length == 8192 and len(lease.value.filled) == 8192
        lease.release()
        raw.write(HEADER + 1 * RECORD, struct.pack("<Q", (1 << 32) | (1 << 30) | 0x3FFFFFFF))  # held by pid 2**30-1
        assert pool.reclaim() == 1, "a holder that cannot exist is dead"
    finally:
        raw.close()
    with pytest.raises(ReleasedError):
        shared.receive(shared.Handle(pool.name, 1 << 30, 1))  # a slot that does not exist


@pytest.mark.slow
def test_fuzzed_block_while_a_producer_and_workers_run(record_property: Callable[[str, object], None]) -> None:
    """Another process writes random bytes into random header and slot-record fields
    (seeded; see fuzz.py) while a producer and two workers run: nobody crashes, and
    every operation either works or raises one of the package's errors."""
    rounds = int(os.environ.get("NEXUS_POOL_FUZZ_ROUNDS", "4000"))
    done = subprocess.run(
        [sys.executable, "-m", "tests.shared.fuzz", "7", str(rounds)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{rounds} writes" in done.stdout, done.stdout
    record_property("stress", done.stdout.strip())


def test_a_refused_send_leaves_the_slots_age_alone() -> None:
    """Only the holder stamps a send: a lease object copied into a forked child (whose pid
    does not hold the slot) is refused without touching the slot's record."""
    done = run_child(
        """
        import os, time
        from nexus_pool import ReleasedError, shared
        with shared.SharedBufferPool(2, 4096) as pool:
            lease = pool.acquire()
            before = pool.lease_word(lease.slot)
            time.sleep(0.01)
            child = os.fork()
            if child == 0:
                try:
                    lease.send()
                except ReleasedError:
                    os._exit(0)
                os._exit(1)
            _, status = os.waitpid(child, 0)
            assert os.waitstatus_to_exitcode(status) == 0, "the child's send was not refused"
            assert pool.lease_word(lease.slot) == before, "a refused send changed the record"
            lease.release()
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok"
