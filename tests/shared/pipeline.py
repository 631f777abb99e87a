"""One pipeline, written once, run over worker threads and over worker processes.

The producer fills a buffer per chunk and hands it to the workers through a queue; each
worker hashes the filled part and releases the buffer. Nothing here knows whether the pool
is a thread ``BufferPool`` with a ``queue.SimpleQueue`` or a ``SharedBufferPool`` with its
block's work queue: moving the pipeline to processes changes the pool and the queue only.
The protocols below say what the two have in common (and mypy checks that both fit).
"""

from __future__ import annotations

import hashlib
from types import TracebackType
from typing import Any, Protocol, TypeVar

from nexus_pool import shared

G = TypeVar("G", bound="Guard")
G_out = TypeVar("G_out", bound="Guard", covariant=True)
G_in = TypeVar("G_in", bound="Guard", contravariant=True)


class Filled(Protocol):
    """A buffer: what the producer writes, what the worker reads."""

    @property
    def filled(self) -> memoryview: ...

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


class Guard(Protocol):
    """A lease on one buffer: its value, and a ``with`` block that releases it."""

    @property
    def value(self) -> Filled: ...

    def __enter__(self) -> Filled: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None, /
    ) -> None: ...


class Acquires(Protocol[G_out]):
    def acquire(self, timeout: float | None = None) -> G_out: ...


class Outbox(Protocol[G_in]):
    def put(self, item: G_in | None, /) -> None: ...


class Inbox(Protocol[G_out]):
    def get(self) -> G_out | None: ...


def produce(pool: Acquires[G], outbox: Outbox[G], chunks: list[bytes], workers: int) -> None:
    """Fill a buffer per chunk and hand it on; then one stop (None) per worker."""
    for chunk in chunks:
        guard = pool.acquire(timeout=30)
        guard.value.write(chunk)
        outbox.put(guard)
    for _ in range(workers):
        outbox.put(None)


def work(inbox: Inbox[G], results: Any) -> None:
    """Hash each buffer's filled part and release it, up to a stop."""
    while (guard := inbox.get()) is not None:
        with guard as buffer:
            results.put(hashlib.sha256(buffer.filled).hexdigest())


def work_in_a_process(name: str, results: Any) -> None:
    """A worker process: the same work, on the shared block's work queue."""
    work(shared.receiver(name), results)
