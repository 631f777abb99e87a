"""``BufferPool``: fixed-size buffers whose filled length travels with them."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import queue
import socket
import threading
from pathlib import Path

import pytest

from nexus_pool import Buffer, BufferPool, Pool, Pooled, PoolShutDown

from .support import WAIT, running, spawn


class Trickle(io.RawIOBase):
    """A source whose reads return at most ``step`` bytes: short reads mid-stream."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._step, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def test_buffers_are_made_up_front_and_never_resized(backend: str) -> None:
    pool = BufferPool(3, 1024, backend=backend)
    assert isinstance(pool, Pool) and pool.capacity == 3 and pool.backend == backend
    with pool.acquire() as buffer:
        assert isinstance(buffer, Buffer)
        assert (buffer.size, buffer.length, len(buffer), buffer.filled.nbytes) == (1024, 0, 0, 0)
        with pytest.raises(BufferError):
            buffer.data.clear()
        with pytest.raises(BufferError):
            buffer.data += b"x"
        assert len(buffer.data) == 1024


def test_readinto_fills_across_short_reads_and_reports_the_end(backend: str) -> None:
    data = os.urandom(2500)
    source = Trickle(data, step=300)
    pool = BufferPool(2, 1000, backend=backend)
    pieces = []
    while True:
        guard = pool.acquire()
        if not guard.value.readinto(source):
            guard.release()
            break
        pieces.append(bytes(guard.value.filled))
        assert guard.value.length in (1000, 500)
        guard.release()
    assert [len(piece) for piece in pieces] == [1000, 1000, 500], "a short read is not an end of file"
    assert b"".join(pieces) == data
    with pool.acquire() as buffer:
        assert buffer.readinto(Trickle(data, step=300), fill=False) == 300


def test_recv_into_takes_what_arrived_or_fills(backend: str) -> None:
    pool = BufferPool(2, 64, backend=backend)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"abc")
        with pool.acquire() as buffer:
            assert buffer.recv_into(right) == 3 and bytes(buffer.filled) == b"abc"
        left.sendall(b"x" * 100)
        with pool.acquire() as buffer:
            assert buffer.recv_into(right, fill=True) == 64
        left.close()
        with pool.acquire() as buffer:
            assert buffer.recv_into(right, fill=True) == 36
            assert buffer.recv_into(right) == 0, "0 once the peer has closed"


def test_release_forgets_the_length_and_zeroes_on_request(backend: str) -> None:
    for zero in (False, True):
        pool = BufferPool(1, 16, zero=zero, backend=backend)
        with pool.acquire() as buffer:
            assert buffer.write(b"secret") == 6
            assert bytes(buffer.filled) == b"secret"
        with pool.acquire() as again:
            assert again is buffer and again.length == 0
            assert bytes(again.data[:6]) == (bytes(6) if zero else b"secret")


def test_write_and_length_check_their_bounds(backend: str) -> None:
    with BufferPool(1, 8, backend=backend).acquire() as buffer:
        buffer.write(b"12345")
        buffer.write(memoryview(b"678"))
        with pytest.raises(ValueError, match="1 bytes do not fit: 8 of the buffer's 8 are filled"):
            buffer.write(b"9")
        buffer.length = 2
        assert bytes(buffer.filled) == b"12"
        with pytest.raises(ValueError, match="length must be between 0 and the buffer's size 8, got 9"):
            buffer.length = 9
        with pytest.raises(TypeError):
            buffer.length = 1.5  # type: ignore[assignment]
        with pytest.raises(TypeError, match="belong to their pool"):
            pickle.dumps(buffer)
        assert repr(buffer) == "<Buffer 2 of 8 bytes filled>"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="size must be >= 1 byte, got 0"):
        BufferPool(2, 0)
    with pytest.raises(TypeError, match="size must be an int, not float"):
        BufferPool(2, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="size must be an int, not bool"):
        BufferPool(2, True)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        BufferPool(0, 10)


def _pipeline(pool: Pool[Buffer], fill: object, workers: int = 3) -> list[bytes]:
    """A reader thread (this one) fills buffers; workers hash the filled part and release."""
    filled: queue.SimpleQueue[Pooled[Buffer] | None] = queue.SimpleQueue()
    digests: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def work() -> None:
        while (guard := filled.get()) is not None:
            with guard as buffer:
                number = int.from_bytes(buffer.filled[:4], "big")
                digest = hashlib.sha256(buffer.filled).digest()
            with lock:
                digests.append((number, digest))

    with running(*(spawn(work) for _ in range(workers))):
        try:
            while True:
                guard = pool.acquire(timeout=WAIT)
                if not fill(guard.value):  # type: ignore[operator]
                    guard.release()
                    break
                filled.put(guard)
        finally:
            for _ in range(workers):
                filled.put(None)
    return [digest for _, digest in sorted(digests)]


def _chunks(count: int, size: int) -> list[bytes]:
    return [number.to_bytes(4, "big") + os.urandom(size - 4 - number % 7) for number in range(count)]


def test_a_file_pipeline_needs_no_hand_carried_lengths(backend: str, tmp_path: Path) -> None:
    chunks = _chunks(200, 4096)
    path = tmp_path / "input"
    path.write_bytes(b"".join(chunk.ljust(4096, b"\0") for chunk in chunks))
    pool = BufferPool(8, 4096, backend=backend)
    with open(path, "rb", buffering=0) as source:
        digests = _pipeline(pool, lambda buffer: buffer.readinto(source))
    assert digests == [hashlib.sha256(chunk.ljust(4096, b"\0")).digest() for chunk in chunks]
    assert pool.available() == 8


def test_a_socket_pipeline(backend: str) -> None:
    chunks = _chunks(150, 1024)
    left, right = socket.socketpair()

    def send() -> None:
        with left:
            for chunk in chunks:
                left.sendall(len(chunk).to_bytes(2, "big") + chunk)

    def receive(buffer: Buffer) -> int:
        header = right.recv(2, socket.MSG_WAITALL)
        if not header:
            return 0
        size = int.from_bytes(header, "big")
        with memoryview(buffer.data) as whole:
            got = right.recv_into(whole[:size], size, socket.MSG_WAITALL)
        buffer.length = got
        return got

    pool = BufferPool(8, 1024, backend=backend)
    with right, running(spawn(send)):
        digests = _pipeline(pool, receive)
    assert digests == [hashlib.sha256(chunk).digest() for chunk in chunks]
    assert pool.available() == 8


def test_a_pipeline_whose_workers_die_shuts_down_cleanly(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(os.urandom(64 * 1024))
    pool = BufferPool(4, 1024, backend=backend)
    filled: queue.SimpleQueue[Pooled[Buffer] | None] = queue.SimpleQueue()
    alive = [2]
    lock = threading.Lock()

    deaths: list[BaseException] = []

    def doomed_worker() -> None:
        try:
            with filled.get() as buffer:  # type: ignore[union-attr]
                raise RuntimeError(f"worker died holding {buffer!r}")  # the with block releases
        except RuntimeError as death:
            deaths.append(death)  # the thread ends here, as a crashed worker's would
        finally:
            with lock:
                alive[0] -= 1
                if alive[0] == 0:
                    pool.shutdown()  # the last one out stops the producer

    threads = [threading.Thread(target=doomed_worker, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    sent = 0
    with open(path, "rb", buffering=0) as source, pytest.raises(PoolShutDown):
        while True:
            guard = pool.acquire(timeout=WAIT)
            guard.value.readinto(source)
            filled.put(guard)
            sent += 1
    for thread in threads:
        thread.join(WAIT)
    while not filled.empty():  # the buffers nobody took: the producer gives them back
        leftover = filled.get()
        assert leftover is not None
        leftover.release()
    assert len(deaths) == 2
    assert sent >= 2 and pool.available() == 4 and pool.stats().in_use == 0
