"""``nexus_pool.shared``: buffers lent across processes, never twice, never lost."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import queue
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from nexus_pool import PoolExhausted, ReleasedError, shared
from nexus_pool._shared import shared_unavailable

from ..conformance.support import IN_CI
from ..layout import stub_of
from . import workers

pytestmark = pytest.mark.skipif(
    bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
)

SPAWN = multiprocessing.get_context("spawn")  # the test process has threads: no fork


@pytest.fixture
def pool() -> Iterator[shared.SharedBufferPool]:
    with shared.SharedBufferPool(4, 8192) as made:
        yield made


def test_the_compiled_types_are_the_typed_ones() -> None:
    import ast

    from nexus_pool import _shared_native

    stub = ast.parse(stub_of("nexus_pool._shared_native").read_text())
    typed = {
        node.name: {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
        for node in stub.body
        if isinstance(node, ast.ClassDef)
    }
    for kind in (_shared_native.SharedBufferPool, _shared_native.SharedLease, _shared_native.SharedBuffer,
                 _shared_native.WorkQueue):  # fmt: skip
        own = set(vars(kind)) - {"__doc__", "__new__", "__module__", "__weaklistoffset__"}
        public = {name for name in own if not name.startswith("__") or name in {"__enter__", "__exit__", "__len__"}}
        assert public <= typed[kind.__name__], f"{kind.__name__}: untyped {public - typed[kind.__name__]}"


def test_a_lease_in_one_process(pool: shared.SharedBufferPool) -> None:
    assert (pool.capacity, pool.size, pool.available()) == (4, 8192, 4)
    assert pool.name.startswith(f"nxp-{os.getpid()}-")
    lease = pool.acquire()
    buffer = lease.value
    assert buffer.size == 8192 and len(buffer.data) == 8192 and not buffer.data.readonly
    assert buffer.write(b"hello") == 5 and bytes(buffer.filled) == b"hello" and len(buffer) == 5
    handle = lease.send()
    with pytest.raises(ReleasedError):
        _ = lease.value
    with pytest.raises(ReleasedError):
        _ = buffer.filled  # the buffer went with the lease
    with pytest.raises(ReleasedError):
        lease.release()
    assert pickle.loads(pickle.dumps(handle)) == handle
    with shared.receive(handle) as received:
        assert bytes(received.filled) == b"hello", "the filled length travels in the block"
    with pytest.raises(ReleasedError, match="not in transit"):
        shared.receive(handle)  # a duplicate, after the release: stale
    assert pool.available() == 4
    assert pool.acquire().value.length == 0, "a new lease starts empty"


def test_the_deprecated_names_still_answer(pool: shared.SharedBufferPool) -> None:
    with pytest.warns(DeprecationWarning, match="use .size"):
        assert pool.buffer_size == 8192
    lease = pool.acquire()
    with pytest.warns(DeprecationWarning, match="value.data"):
        view = lease.buffer
    assert len(view) == 8192
    lease.release()


def test_exhaustion_and_timeouts(pool: shared.SharedBufferPool) -> None:
    leases = [pool.acquire(0) for _ in range(4)]
    assert pool.try_acquire() is None
    with pytest.raises(PoolExhausted, match=r"^all 4 shared buffers are in use; oldest held "):
        pool.acquire(0)
    with pytest.raises(PoolExhausted, match=r"none came back within 0\.1 s"):
        pool.acquire(timeout=0.1)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.acquire(-1)
    assert len({lease.slot for lease in leases}) == 4  # four distinct slots
    for lease in leases:
        lease.release()
    assert pool.available() == 4


def test_bad_arguments_and_copies_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        shared.SharedBufferPool(0, 10)
    with pytest.raises(TypeError, match="size must be an int"):
        shared.SharedBufferPool(2, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        shared.SharedBufferPool(2, 0)
    with shared.SharedBufferPool(1, 10) as pool:
        with pytest.raises(TypeError, match="stays with its producer"):
            pickle.dumps(pool)
        with pytest.raises(TypeError, match="send\\(\\) it"):
            pickle.dumps(pool.acquire())


def test_close_and_exit_remove_the_block() -> None:
    pool = shared.SharedBufferPool(1, 10)
    name = pool.name
    assert os.path.exists(f"/dev/shm/{name}")
    pool.close()
    assert not os.path.exists(f"/dev/shm/{name}")
    code = "from nexus_pool import shared; import sys; print(shared.SharedBufferPool(1, 10).name)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not os.path.exists(f"/dev/shm/{done.stdout.strip()}"), "a normal exit removes the block"


@pytest.mark.parametrize("worker_count", [1, 2, 4])
def test_fan_out_to_worker_processes(worker_count: int) -> None:
    """Every chunk is hashed from the bytes the producer wrote: no buffer lent twice."""
    with shared.SharedBufferPool(6, 16384) as pool:
        inbox, outbox = SPAWN.Queue(), SPAWN.Queue()
        processes = [SPAWN.Process(target=workers.hash_handles, args=(inbox, outbox)) for _ in range(worker_count)]
        for process in processes:
            process.start()
        expected = {}
        for tag in range(300):
            lease = pool.acquire(timeout=30)
            payload = tag.to_bytes(8, "little") + os.urandom(16384 - 8)
            lease.value.write(payload)
            expected[tag] = hashlib.sha256(payload).hexdigest()
            inbox.put(lease.send())
        results = [outbox.get(timeout=30) for _ in range(300)]
        for _ in processes:
            inbox.put(None)
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
        assert {tag: digest for tag, digest, _ in results} == expected
        assert len({pid for _, _, pid in results}) <= worker_count
        assert pool.available() == 6


def test_duplicate_receives_racing_at_a_barrier(pool: shared.SharedBufferPool) -> None:
    for _ in range(5):
        handle = pool.acquire().send()
        barrier, results = SPAWN.Barrier(3), SPAWN.Queue()
        racers = [SPAWN.Process(target=workers.race_to_receive, args=(handle, barrier, results)) for _ in range(3)]
        for racer in racers:
            racer.start()
        outcomes = sorted(results.get(timeout=30) for _ in racers)
        for racer in racers:
            racer.join(30)
        assert outcomes == ["refused", "refused", "won"]
    assert pool.available() == 4


def test_a_killed_holder_is_reclaimed_and_its_handles_refused(pool: shared.SharedBufferPool) -> None:
    inbox, ready = SPAWN.Queue(), SPAWN.Event()
    victim = SPAWN.Process(target=workers.hold_and_wait, args=(inbox, ready))
    victim.start()
    handles = [pool.acquire().send() for _ in range(3)]
    for handle in handles:
        inbox.put(handle)
    inbox.put(None)
    assert ready.wait(30)
    assert pool.available() == 1 and pool.reclaim() == 0, "a live holder is left alone"
    victim.kill()
    victim.join(30)
    assert pool.reclaim() == 3 and pool.available() == 4
    for handle in handles:
        with pytest.raises(ReleasedError):
            shared.receive(handle)
    slots = sorted(lease.slot for lease in [pool.acquire(0) for _ in range(4)])
    assert slots == [0, 1, 2, 3], "each slot lent again exactly once"


def test_handles_stuck_in_transit_come_back_after_an_age(pool: shared.SharedBufferPool) -> None:
    handle = pool.acquire().send()
    assert pool.reclaim() == 0 and pool.reclaim(transit_max_age=60) == 0
    assert pool.reclaim(transit_max_age=0) == 1 and pool.available() == 4
    with pytest.raises(ReleasedError):
        shared.receive(handle)


def test_a_dead_producer_is_noticed_and_its_block_removed() -> None:
    names = SPAWN.Queue()
    producer = SPAWN.Process(target=workers.produce_and_die, args=(names,))
    producer.start()
    name = names.get(timeout=30)
    handle = names.get(timeout=30)
    producer.join(30)
    assert producer.exitcode == -9
    assert not shared.producer_alive(name)
    with shared.receive(handle) as buffer:  # the block outlives its producer until removed
        assert buffer.size == 4096
    assert name in shared.remove_orphans()
    assert not os.path.exists(f"/dev/shm/{name}")
    assert not shared.producer_alive(name)


def test_an_unrelated_process_attaching_does_not_remove_the_block(pool: shared.SharedBufferPool) -> None:
    handle = pool.acquire().send()
    code = textwrap.dedent(f"""
        from nexus_pool import shared
        with shared.receive(shared.Handle({pool.name!r}, {handle.slot}, {handle.generation})) as buffer:
            buffer.write(b"ok")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert os.path.exists(f"/dev/shm/{pool.name}")
    assert pool.available() == 4 and shared.producer_alive(pool.name)


def test_process_pool_executor_cancellation_and_a_broken_pool(pool: shared.SharedBufferPool) -> None:
    with ProcessPoolExecutor(1, mp_context=SPAWN) as executor:
        handles = [pool.acquire().send() for _ in range(4)]
        futures = [executor.submit(workers.digest_of, handle) for handle in handles]
        cancelled = sum(future.cancel() for future in futures)
        done = [future.result(timeout=60) for future in futures if not future.cancelled()]
        assert len(done) + cancelled == 4
    assert pool.reclaim(transit_max_age=0) == cancelled, "cancelled tasks' buffers stayed in transit"
    assert pool.available() == 4
    with ProcessPoolExecutor(1, mp_context=SPAWN) as executor:
        future = executor.submit(workers.die, pool.acquire().send())
        with pytest.raises(BrokenProcessPool):
            future.result(timeout=60)
    assert pool.reclaim() == 1 and pool.available() == 4


@pytest.mark.slow
def test_sigkill_storm(record_property: Callable[[str, object], None]) -> None:
    """200 workers killed at random moments while holding buffers (see storm.py)."""
    seconds = float(os.environ.get("NEXUS_POOL_STORM_SECONDS", "2")) * 30
    done = subprocess.run(
        [sys.executable, "-m", "tests.shared.storm", "200", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record_property("stress", done.stdout.strip())
    assert "200 trials" in done.stdout


def test_a_waiting_worker_notices_its_producer_die() -> None:
    names, inbox, outcome = SPAWN.Queue(), SPAWN.Queue(), SPAWN.Queue()
    producer = SPAWN.Process(target=workers.make_pool_and_hang, args=(names,))
    producer.start()
    name = names.get(timeout=30)
    worker = SPAWN.Process(target=workers.wait_for_handles, args=(name, inbox, outcome))
    worker.start()
    producer.kill()
    producer.join(30)
    assert outcome.get(timeout=30).startswith("gone: the process that made shared block"), "the worker hung"
    worker.join(30)
    assert name in shared.remove_orphans()


def test_handles_end_at_none(pool: shared.SharedBufferPool) -> None:
    inbox: queue.SimpleQueue[shared.Handle | None] = queue.SimpleQueue()
    inbox.put(pool.acquire().send())
    inbox.put(None)
    got = list(shared.handles(inbox, pool.name, poll=0.05))
    assert len(got) == 1
    shared.receive(got[0]).release()


def test_a_reclaimed_lease_cannot_be_sent_or_released(pool: shared.SharedBufferPool) -> None:
    lease = pool.acquire()
    handle = lease.send()
    assert pool.reclaim(transit_max_age=0) == 1
    with pytest.raises(ReleasedError):
        shared.receive(handle)
    held = pool.acquire()
    assert pool.available() == 3
    with pytest.raises(TypeError, match=r"made by nexus_pool\.shared"):
        shared.SharedLease()  # a lease cannot be forged
    held.release()
    assert pool.available() == 4
