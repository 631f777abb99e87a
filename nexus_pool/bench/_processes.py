"""Process fan-out: a producer fills chunks, worker *processes* take them.

The contenders, each written the way its users write it:

* ``nexus_pool.shared``: the producer acquires a shared buffer, writes the chunk and puts
  the lease in the block's own work queue; the workers take from it
  (``shared.receiver(name)``) and release (no pipe, no pickle, no return queue);
* ``nexus_pool.shared, handles by Queue``: the same, but each lease's handle travels
  through a ``multiprocessing.Queue`` (``lease.send()``, ``shared.receive(handle)``);
* ``multiprocessing.Queue of bytes``: the chunk itself is pickled through the queue;
* ``multiprocessing.Pool.imap``: the chunks as the iterable of ``imap(chunksize=1)``;
* ``hand-rolled shared memory``: one ``SharedMemory`` of capacity x size, slot indices
  out through one queue and back through a second;
* ``iceoryx2`` (when installed; one worker only: it broadcasts every sample to every
  subscriber): publish-subscribe with loaned slices, the subscriber woken by the event
  service, the publisher held back by the subscriber's buffer (``RetryUntilDelivered``).

With ``work``, each worker sha256es its chunk and sends the digest back (one small result
per chunk), which the producer checks against the chunks'. Without it (the no-work
scenario), workers only release, and the run ends when every worker has seen its stop
and reported how many chunks it took: the per-chunk machinery alone.

The wake-up scenario times a producer asleep until a worker process gives the one buffer
back, against the limit (a raw futex wait/wake on one shared word, through ctypes), a
``multiprocessing.Queue`` and iceoryx2's event service. Workers are started (spawn) and
warmed up before any clock starts.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import multiprocessing.pool
import os
import platform
import time
from collections.abc import Callable, Sequence
from functools import partial
from itertools import count
from multiprocessing import shared_memory
from typing import Any, Final

from nexus_pool import shared

__all__ = [
    "FUTEX",
    "HANDROLLED",
    "KINDS",
    "MP_QUEUE",
    "NO_WORK_KINDS",
    "ONE_WORKER_KINDS",
    "WAKING_KINDS",
    "futex_unavailable",
    "iceoryx2_unavailable",
    "process_fan_out",
    "process_wakeup",
]

KINDS: Final = ("shared", "shared-handles", "queue", "imap", "handrolled", "iceoryx2")
"""The contenders of the sha256 fan-out scenarios."""

NO_WORK_KINDS: Final = ("shared", "shared-handles", "queue", "handrolled", "iceoryx2")
"""The contenders of the no-work scenario."""

ONE_WORKER_KINDS: Final = frozenset({"iceoryx2"})
"""Broadcasts (every subscriber gets every sample): no fan-out to two workers."""

WAKING_KINDS: Final = ("shared", "futex", "queue", "iceoryx2")
"""The contenders of the wake-up scenario: a producer blocked until a worker's return."""

MP_QUEUE: Final = "multiprocessing.Queue: bytes"
"""The sha256 scenarios' reference contender."""

HANDROLLED: Final = "hand-rolled shared memory"
"""The no-work scenario's reference contender."""

FUTEX: Final = "raw futex (the limit)"
"""The wake-up scenario's reference contender."""

NO_WORK_CHUNK: Final = 8
"""Bytes the producer writes into each buffer in the no-work scenario (a sequence number)."""

_SPAWN = multiprocessing.get_context("spawn")
_names = count()


def _no_connection() -> None:
    """Contenders whose worker needs no hand-shake before the timing starts."""


_FUTEX_SYSCALL: Final = {"x86_64": 202, "aarch64": 98, "riscv64": 98, "ppc64le": 221, "s390x": 238}
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1  # shared across processes (not the _PRIVATE forms)


def futex_unavailable() -> str:
    """Why the raw futex contender cannot run here; empty if it can."""
    if platform.system() != "Linux":
        return f"futexes are Linux's; this is {platform.system()}"
    if platform.machine() not in _FUTEX_SYSCALL:
        return f"no futex syscall number known for {platform.machine()}"
    return ""


def iceoryx2_unavailable() -> str:
    """Why the iceoryx2 contender cannot run here; empty if it can."""
    try:
        import iceoryx2  # noqa: F401
    except ImportError as exc:
        free_threaded = not getattr(__import__("sys"), "_is_gil_enabled", lambda: True)()
        why = (
            "its abi3 wheels do not load on free-threaded builds"
            if free_threaded
            else "pip install 'nexus-pool[bench]'"
        )
        return f"iceoryx2 is not installed ({exc}; {why})"
    return ""


def _digest(data: Any) -> bytes:
    return hashlib.sha256(data).digest()


# ---- workers (run in spawned processes) -------------------------------------------------


def _shared_worker(name: str, outbox: Any, work: bool) -> None:
    leases = shared.receiver(name)
    outbox.put(b"ready")
    cpu = time.process_time_ns()
    taken = 0
    if work:
        for lease in leases:  # up to a stop marker
            with lease as buffer:
                outbox.put(_digest(buffer.filled))
            taken += 1
    else:
        for lease in leases:
            lease.release()
            taken += 1
    outbox.put((taken, time.process_time_ns() - cpu))


def _shared_handles_worker(inbox: Any, outbox: Any, work: bool) -> None:
    outbox.put(b"ready")
    cpu = time.process_time_ns()
    taken = 0
    while (handle := inbox.get()) is not None:
        with shared.receive(handle) as buffer:
            if work:
                outbox.put(_digest(buffer.filled))
        taken += 1
    outbox.put((taken, time.process_time_ns() - cpu))


def _queue_worker(inbox: Any, outbox: Any, work: bool) -> None:
    outbox.put(b"ready")
    cpu = time.process_time_ns()
    taken = 0
    while (chunk := inbox.get()) is not None:
        if work:
            outbox.put(_digest(chunk))
        taken += 1
    outbox.put((taken, time.process_time_ns() - cpu))


def _handrolled_worker(name: str, size: int, inbox: Any, outbox: Any, returns: Any, work: bool) -> None:
    memory = shared_memory.SharedMemory(name)
    buffer = memory.buf
    assert buffer is not None
    taken = 0
    try:
        outbox.put(b"ready")
        cpu = time.process_time_ns()
        while (slot := inbox.get()) is not None:
            if work:
                with buffer[slot * size : (slot + 1) * size] as view:
                    outbox.put(_digest(view))
            returns.put(slot)
            taken += 1
    finally:
        del buffer
        memory.close()
    outbox.put((taken, time.process_time_ns() - cpu))


def _iceoryx2_ports(service_name: str, capacity: int, size: int, create: bool) -> tuple[Any, Any, Any]:
    """The node, the publish-subscribe service and the event service of one run."""
    import iceoryx2 as iox

    iox.set_log_level(iox.LogLevel.Error)
    node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
    builder = node.service_builder(iox.ServiceName.new(service_name)).publish_subscribe(iox.Slice[ctypes.c_uint8])
    if create:
        # No overflow: a full subscriber buffer holds the publisher back (as our pool's
        # capacity does) instead of dropping the oldest sample.
        builder = (
            builder.subscriber_max_buffer_size(capacity)
            .subscriber_max_borrowed_samples(capacity)
            .history_size(0)
            .enable_safe_overflow(False)
        )
    samples = builder.create() if create else builder.open()
    events = node.service_builder(iox.ServiceName.new(service_name + "-events")).event()
    return node, samples, events.create() if create else events.open()


def _iceoryx2_worker(service_name: str, capacity: int, size: int, outbox: Any, work: bool) -> None:
    node, samples, events = _iceoryx2_ports(service_name, capacity, size, create=False)
    subscriber = samples.subscriber_builder().create()
    listener = events.listener_builder().create()
    outbox.put(b"ready")
    cpu = time.process_time_ns()
    taken = 0
    while True:
        sample = subscriber.receive()
        if sample is None:
            listener.blocking_wait()
            continue
        payload = sample.payload()
        if payload.len() == 0:  # the stop
            sample.delete()
            break
        if work:
            outbox.put(_digest(payload.as_memory_view()))
        sample.delete()
        taken += 1
    del payload, sample, subscriber, listener, samples, events, node
    outbox.put((taken, time.process_time_ns() - cpu))


# ---- the fan-out ------------------------------------------------------------------------


def process_fan_out(
    kind: str, chunks: Sequence[bytes | memoryview], size: int, workers: int, work: bool
) -> tuple[float, float | None]:
    """Seconds to hand ``chunks`` (each at most ``size`` bytes) to ``workers`` processes,
    until every one was hashed (``work``) and every worker has stopped taking; and the
    CPU seconds all the processes spent meanwhile (None for imap: its workers say not)."""
    expected = sorted(_digest(chunk) for chunk in chunks) if work else []
    capacity = 2 * workers + 2
    if kind == "imap":
        if not work:
            raise ValueError("imap has no no-work form: its results are its only return path")
        with _SPAWN.Pool(workers) as pool:
            pool.map(_digest, [b"warm"] * workers)
            started = time.perf_counter()
            got = list(pool.imap(_digest, (bytes(chunk) for chunk in chunks), chunksize=1))
            elapsed = time.perf_counter() - started
        _check(kind, got, expected)
        return elapsed, None
    if kind in ONE_WORKER_KINDS and workers != 1:
        raise ValueError(f"{kind} broadcasts to every subscriber: one worker only")
    outbox = _SPAWN.Queue()
    inbox = _SPAWN.Queue()
    cleanups: list[Callable[[], None]] = []
    produce: Callable[[bytes | memoryview], None]
    stop: Callable[[], None]
    target: Callable[..., None]
    args: tuple[Any, ...]
    connect: Callable[[], None] = _no_connection
    if kind in ("shared", "shared-handles"):
        shared_pool = shared.SharedBufferPool(capacity, size)
        cleanups.append(shared_pool.close)
        acquire = shared_pool.acquire
        if kind == "shared":
            work_queue = shared_pool.queue
            put = work_queue.put

            def produce(chunk: bytes | memoryview) -> None:
                lease = acquire()
                lease.value.write(chunk)
                put(lease)

            def stop() -> None:
                for _ in range(workers):
                    put(None)

            target, args = _shared_worker, (shared_pool.name, outbox, work)
        else:

            def produce(chunk: bytes | memoryview) -> None:
                lease = acquire()
                lease.value.write(chunk)
                inbox.put(lease.send())

            stop = _stopper(inbox, workers)
            target, args = _shared_handles_worker, (inbox, outbox, work)
    elif kind == "queue":

        def produce(chunk: bytes | memoryview) -> None:
            inbox.put(bytes(chunk))

        stop = _stopper(inbox, workers)
        target, args = _queue_worker, (inbox, outbox, work)
    elif kind == "handrolled":
        memory = shared_memory.SharedMemory(create=True, size=capacity * size)
        cleanups += [memory.unlink, memory.close]
        returns = _SPAWN.Queue()
        for slot in range(capacity):
            returns.put(slot)
        buffer = memory.buf
        assert buffer is not None

        def produce(chunk: bytes | memoryview) -> None:
            slot = returns.get()
            buffer[slot * size : slot * size + len(chunk)] = chunk
            inbox.put(slot)

        stop = _stopper(inbox, workers)
        target, args = _handrolled_worker, (memory.name, size, inbox, outbox, returns, work)
        cleanups.append(buffer.release)
    elif kind == "iceoryx2":
        import iceoryx2 as iox

        service_name = f"nexus_pool-bench-{os.getpid()}-{next(_names)}"
        _node, samples, events = _iceoryx2_ports(service_name, capacity, size, create=True)
        publisher = (
            samples.publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(iox.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        notifier = events.notifier_builder().create()
        connect = publisher.update_connections  # the subscriber appeared after the publisher

        def produce(chunk: bytes | memoryview) -> None:
            sample = publisher.loan_slice_uninit(len(chunk))
            sample.payload().as_memory_view().cast("B")[:] = chunk
            sample.assume_init().send()
            notifier.notify()

        def stop() -> None:
            publisher.loan_slice_uninit(0).assume_init().send()
            notifier.notify()

        target, args = _iceoryx2_worker, (service_name, capacity, size, outbox, work)
        cleanups += [publisher.delete, notifier.delete]
    else:
        raise ValueError(f"unknown process contender {kind!r}")
    processes = [_SPAWN.Process(target=target, args=args, daemon=True) for _ in range(workers)]
    try:
        for process in processes:
            process.start()
        for _ in processes:
            if outbox.get(timeout=120) != b"ready":
                raise AssertionError(f"{kind}: a worker did not start")
        connect()
        started, cpu = time.perf_counter(), time.process_time()
        for chunk in chunks:
            produce(chunk)
        got = [outbox.get(timeout=120) for _ in chunks] if work else []
        stop()
        reports = [outbox.get(timeout=120) for _ in processes]
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        taken = sum(taken for taken, _ in reports)
        cpu += sum(worker_cpu for _, worker_cpu in reports) / 1e9
        for process in processes:
            process.join(60)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        for cleanup in reversed(cleanups):
            cleanup()
    if taken != len(chunks):
        raise AssertionError(f"{kind}: the workers took {taken} chunks of {len(chunks)}")
    _check(kind, got, expected)
    return elapsed, cpu


def _stopper(inbox: Any, workers: int) -> Callable[[], None]:
    def stop() -> None:
        for _ in range(workers):
            inbox.put(None)

    return stop


def _check(kind: str, got: list[bytes], expected: list[bytes]) -> None:
    if sorted(got) != expected:
        raise AssertionError(f"{kind}: the chunks' digests do not match: a buffer was overwritten in use")


# ---- wake-ups ---------------------------------------------------------------------------


class _Futex:
    """Two 32-bit words (go, back), a stop flag and a timestamp in shared memory, waited on
    and woken through the futex syscall by ctypes: the floor under any cross-process
    wake-up, with nothing else in the way (no queue, no feeder thread)."""

    def __init__(self, name: str | None = None) -> None:
        self.memory = shared_memory.SharedMemory(name, create=name is None, size=24)
        buffer = self.memory.buf
        assert buffer is not None
        self.go = ctypes.c_uint32.from_buffer(buffer, 0)
        self.back = ctypes.c_uint32.from_buffer(buffer, 4)
        self.stop = ctypes.c_uint32.from_buffer(buffer, 8)
        self.stamp = ctypes.c_uint64.from_buffer(buffer, 16)
        self.syscall = ctypes.CDLL(None, use_errno=True).syscall
        self.number = _FUTEX_SYSCALL[platform.machine()]

    def wait_while(self, word: ctypes.c_uint32, seen: int) -> None:
        address = ctypes.c_void_p(ctypes.addressof(word))
        while word.value == seen:
            self.syscall(self.number, address, _FUTEX_WAIT, ctypes.c_long(seen), None, None, 0)

    def bump(self, word: ctypes.c_uint32) -> None:
        word.value += 1  # one writer per word: no compare-and-swap needed
        self.syscall(self.number, ctypes.c_void_p(ctypes.addressof(word)), _FUTEX_WAKE, 1, None, None, 0)

    def close(self, unlink: bool) -> None:
        del self.go, self.back, self.stop, self.stamp
        self.memory.close()
        if unlink:
            self.memory.unlink()


def _shared_waker(name: str, started: Any) -> None:
    leases = shared.receiver(name)
    started.put(b"ready")
    cpu = time.process_time_ns()
    for lease in leases:
        data = lease.value.data
        time.sleep(0.0005)  # the producer is asleep in acquire() by now
        data[:8] = time.monotonic_ns().to_bytes(8, "little")
        del data
        lease.release()
    started.put(time.process_time_ns() - cpu)


def _futex_waker(name: str, started: Any) -> None:
    futex = _Futex(name)
    seen = futex.go.value
    started.put(b"ready")
    cpu = time.process_time_ns()
    while True:
        futex.wait_while(futex.go, seen)
        seen = futex.go.value
        if futex.stop.value:
            break
        time.sleep(0.0005)
        futex.stamp.value = time.monotonic_ns()
        futex.bump(futex.back)
    started.put(time.process_time_ns() - cpu)
    futex.close(unlink=False)


def _queue_waker(inbox: Any, returns: Any) -> None:
    returns.put(b"ready")
    cpu = time.process_time_ns()
    while inbox.get() is not None:
        time.sleep(0.0005)
        returns.put(time.monotonic_ns())
    returns.put(time.process_time_ns() - cpu)


def _iceoryx2_events(service_name: str, create: bool) -> tuple[Any, Any, Any]:
    """The node and the two event services (go, back) of one wake-up run."""
    import iceoryx2 as iox

    iox.set_log_level(iox.LogLevel.Error)
    node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
    services = []
    for direction in ("go", "back"):
        builder = node.service_builder(iox.ServiceName.new(f"{service_name}-{direction}")).event()
        services.append(builder.create() if create else builder.open())
    return node, services[0], services[1]


def _iceoryx2_waker(service_name: str, stamp_name: str, started: Any) -> None:
    node, go, back = _iceoryx2_events(service_name, create=False)
    listener = go.listener_builder().create()
    notifier = back.notifier_builder().create()
    stamp = _Futex(stamp_name)  # only its stop flag and timestamp
    started.put(b"ready")
    cpu = time.process_time_ns()
    while True:
        while not listener.blocking_wait():
            pass
        if stamp.stop.value:
            break
        time.sleep(0.0005)
        stamp.stamp.value = time.monotonic_ns()
        notifier.notify()
    started.put(time.process_time_ns() - cpu)
    for port in (notifier, listener):
        port.delete()
    stamp.close(unlink=False)
    del node, go, back


def process_wakeup(kind: str, rounds: int) -> tuple[list[int], float]:
    """Nanoseconds from a worker process's return to the blocked producer's wake-up,
    ``rounds`` times (the worker stamps the time just before it returns): the shared
    buffer's release (``shared``), a raw futex wake (``futex``), a
    ``multiprocessing.Queue`` put (``queue``), an iceoryx2 event (``iceoryx2``); and the CPU
    seconds both processes spent per wake-up (the producer's include its own Python)."""
    inbox, back = _SPAWN.Queue(), _SPAWN.Queue()
    cleanups: list[Callable[[], None]] = []
    wait_for_return: Callable[[], int]  # how long the worker's return took to wake us
    stop: Callable[[], None] = partial(inbox.put, None)
    connect: Callable[[], None] = _no_connection
    if kind == "shared":
        pool = shared.SharedBufferPool(1, 4096)
        cleanups.append(pool.close)
        work_queue = pool.queue
        process = _SPAWN.Process(target=_shared_waker, args=(pool.name, back), daemon=True)

        def wait_for_return() -> int:
            work_queue.put(pool.acquire())
            with pool.acquire(timeout=60) as buffer:  # asleep until the worker releases
                woke = time.monotonic_ns()
                return woke - int.from_bytes(buffer.data[:8], "little")

        stop = lambda: work_queue.put(None)  # noqa: E731
    elif kind == "futex":
        futex = _Futex()
        cleanups.append(lambda: futex.close(unlink=True))
        process = _SPAWN.Process(target=_futex_waker, args=(futex.memory.name, back), daemon=True)

        def wait_for_return() -> int:
            seen = futex.back.value
            futex.bump(futex.go)
            futex.wait_while(futex.back, seen)
            return time.monotonic_ns() - futex.stamp.value

        def stop() -> None:
            futex.stop.value = 1
            futex.bump(futex.go)

    elif kind == "queue":
        process = _SPAWN.Process(target=_queue_waker, args=(inbox, back), daemon=True)

        def wait_for_return() -> int:
            inbox.put(True)
            returned: int = back.get(timeout=60)
            return time.monotonic_ns() - returned

    elif kind == "iceoryx2":
        service_name = f"nexus_pool-bench-wake-{os.getpid()}-{next(_names)}"
        _node, go, back_events = _iceoryx2_events(service_name, create=True)
        notifier = go.notifier_builder().create()
        listener = back_events.listener_builder().create()
        stamp = _Futex()
        cleanups += [lambda: stamp.close(unlink=True), notifier.delete, listener.delete]
        process = _SPAWN.Process(target=_iceoryx2_waker, args=(service_name, stamp.memory.name, back), daemon=True)

        def wait_for_return() -> int:
            notifier.notify()
            while not listener.blocking_wait():
                pass
            return time.monotonic_ns() - stamp.stamp.value

        def stop() -> None:
            stamp.stop.value = 1
            notifier.notify()

    else:
        raise ValueError(f"unknown waking contender {kind!r}")
    latencies = []
    try:
        process.start()
        back.get(timeout=120)
        connect()
        cpu = time.process_time()
        for _ in range(rounds):
            latencies.append(wait_for_return())
        cpu = time.process_time() - cpu
        stop()
        cpu += back.get(timeout=60) / 1e9  # the worker's
        process.join(60)
    finally:
        if process.is_alive():
            process.kill()
        for cleanup in reversed(cleanups):
            cleanup()
    return latencies, cpu / rounds
