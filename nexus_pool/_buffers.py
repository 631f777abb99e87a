"""Fixed-size byte buffers for ``readinto`` / ``recv_into`` pipelines: :class:`BufferPool`.

A pool of :class:`Buffer` values, each a ``bytearray`` of a fixed size made up front and
never resized (a memoryview held by the buffer pins its size: ``bytearray`` refuses to
resize while exported), plus the filled length, which travels with the buffer through a
queue, so nobody carries ``(guard, n)`` by hand. ``readinto`` and ``recv_into`` fill it,
looping over short reads, and report the end of input by returning 0.

The pool is an ordinary :class:`nexus_pool.Pool` of buffers, a subclass each facade
implements beside its ``Pool``: the same guards, backends, guarantees and native facade;
releasing a guard resets its buffer (length 0, and with ``zero=True`` every byte zeroed by
one memoryview assignment, memory speed).

Why not ``Pool(64, bytearray, bytearray.clear)``: after its first release that buffer is
empty, and ``f.readinto(empty)`` returns 0, which reads as end of file.
"""

from __future__ import annotations

import operator
from functools import partial
from typing import TYPE_CHECKING, Literal, NoReturn, Protocol, SupportsIndex, final

from ._base import Pool, make_pool
from ._checks import check_capacity
from ._errors import PoolShutDown

__all__ = ["Buffer", "BufferPool", "BufferReset"]


class _ReadsInto(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class _ReceivesInto(Protocol):
    def recv_into(self, buffer: memoryview, nbytes: int = ..., flags: int = ..., /) -> int: ...


@final
class Buffer:
    """A fixed-size ``bytearray`` and how much of it is filled.

    ``data`` is the whole buffer (its size never changes); ``filled`` the memoryview of
    its first ``length`` bytes. Fill it with :meth:`readinto`, :meth:`recv_into` or
    :meth:`write`, or write into ``data`` yourself and set ``length``.
    """

    __slots__ = ("_length", "_view", "data")

    data: bytearray
    _view: memoryview
    _length: int

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self._view = memoryview(self.data)  # pins the size: a resize raises BufferError
        self._length = 0

    @property
    def size(self) -> int:
        """The fixed size in bytes."""
        return len(self.data)

    @property
    def length(self) -> int:
        """How many bytes, from the start, hold data (0 after a release)."""
        return self._length

    @length.setter
    def length(self, length: SupportsIndex) -> None:
        number = operator.index(length)
        if not 0 <= number <= len(self.data):
            raise ValueError(f"length must be between 0 and the buffer's size {len(self.data)}, got {number}")
        self._length = number

    @property
    def filled(self) -> memoryview:
        """The filled part, ``data[:length]``, without copying."""
        return self._view[: self._length]

    def readinto(self, source: _ReadsInto, *, fill: bool = True) -> int:
        """Read from ``source`` (a binary file, ``io.BufferedReader``, ``socket.SocketIO``...)
        into the buffer, from its start; the byte count, 0 at end of input.

        With ``fill`` (the default) it reads until the buffer is full or the input ends,
        so a short read in the middle of a file is never mistaken for its end; with
        ``fill=False`` it returns after one successful read. A non-blocking source that
        has nothing yet (``readinto`` gives ``None``) ends the fill early.
        """
        view = self._view
        got = source.readinto(view) or 0  # the whole buffer first: no slice in the common case
        if fill and got:
            size = len(view)
            while got < size:
                count = source.readinto(view[got:])
                if not count:  # 0: end of input; None: nothing yet (non-blocking)
                    break
                got += count
        self._length = got
        return got

    def recv_into(self, sock: _ReceivesInto, *, fill: bool = False) -> int:
        """Receive from a socket into the buffer, from its start; the byte count, 0 when
        the peer has closed the connection.

        By default one ``recv_into`` (whatever arrived, up to the buffer's size); with
        ``fill=True`` it receives until the buffer is full or the peer closes.
        """
        view, size = self._view, len(self.data)
        got = 0
        while got < size:
            count = sock.recv_into(view[got:], size - got)
            if not count:
                break
            got += count
            if not fill:
                break
        self._length = got
        return got

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data`` after the filled part; ``ValueError`` if it does not fit."""
        start = self._length
        end = start + len(data) if not isinstance(data, memoryview) else start + data.nbytes
        if end > len(self.data):
            raise ValueError(f"{end - start} bytes do not fit: {start} of the buffer's {len(self.data)} are filled")
        self._view[start:end] = data
        self._length = end
        return end - start

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"<Buffer {self._length} of {len(self.data)} bytes filled>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Buffer objects belong to their pool: send the guard, or bytes(buffer.filled)")


@final
class BufferReset:
    """A buffer pool's reset: forget the length; with ``zero``, clear every byte. The pool
    keeps it, and reads its buffers' size and ``zero`` from it."""

    __slots__ = ("_zeros", "size", "zero")

    def __init__(self, size: int, zero: bool) -> None:
        self.size = size
        self.zero = zero
        self._zeros = bytes(size) if zero else None

    def __call__(self, buffer: Buffer) -> None:
        buffer._length = 0
        if self._zeros is not None:
            buffer._view[:] = self._zeros  # a memoryview assignment: one memcpy


class BufferPool(Pool[Buffer]):  # type: ignore[misc]  # Pool is final for users, not for the package
    """A pool of ``capacity`` :class:`Buffer` objects of ``size`` bytes, all made now.

    An ordinary :class:`~nexus_pool.Pool` of buffers (``isinstance(pool, Pool)`` holds):
    the same guards, backends, guarantees and native facade. ``zero=True`` zeroes a
    buffer's bytes at every release (data from one lease never reaches the next).
    ``backend``, ``track`` and ``warn_after`` as for :class:`nexus_pool.Pool`.
    """

    __slots__ = ()

    def __new__(
        cls,
        capacity: SupportsIndex,
        size: SupportsIndex,
        *,
        zero: bool = False,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
        warn_after: float | None = None,
    ) -> BufferPool:
        checked = check_capacity(capacity)  # named before size: the pool's own argument order
        if isinstance(size, bool):
            raise TypeError("size must be an int, not bool")
        try:
            nbytes = operator.index(size)
        except TypeError:
            raise TypeError(f"size must be an int, not {type(size).__name__}") from None
        if nbytes < 1:
            raise ValueError(f"size must be >= 1 byte, got {nbytes}")
        if not isinstance(zero, bool):
            raise TypeError(f"zero must be a bool, not {type(zero).__name__}")
        made = make_pool(
            "buffers", checked, partial(Buffer, nbytes), BufferReset(nbytes, zero), backend, track, warn_after
        )
        assert isinstance(made, BufferPool)
        return made

    def __init__(
        self,
        capacity: SupportsIndex,
        size: SupportsIndex,
        *,
        zero: bool = False,
        backend: str | None = None,
        track: Literal["off", "sampled", "every"] | None = None,
        warn_after: float | None = None,
    ) -> None:
        """Everything happened in ``__new__``, which returned a facade's pool."""

    if TYPE_CHECKING:
        # Declared for the type checker only: this class comes before the facade's pool
        # class in a buffer pool's MRO, so a body here would hide the facade's.

        @property
        def _reset(self) -> BufferReset:
            """The reset the pool was made with."""

    def __enter__(self) -> BufferPool:
        """``with BufferPool(...) as pool:`` shuts the pool down when the block ends."""
        return self

    @property
    def size(self) -> int:
        """Every buffer's size in bytes."""
        return self._geometry().size

    @property
    def zero(self) -> bool:
        """Whether releasing a buffer zeroes its bytes."""
        return self._geometry().zero

    def _geometry(self) -> BufferReset:
        reset = self._reset
        if not isinstance(reset, BufferReset):  # the collector broke a cycle through the pool
            raise PoolShutDown(
                "this buffer pool was taken apart by the garbage collector (it was in a reference cycle)"
            )
        return reset

    def __repr__(self) -> str:
        reset = self._reset
        size, zero = (reset.size, reset.zero) if isinstance(reset, BufferReset) else ("?", "?")
        return (
            f"<nexus_pool.BufferPool capacity={self.capacity} size={size} zero={zero} "
            f"available={self.available()} backend={self.backend!r} facade={self.facade!r}>"
        )
