"""The public guard class :class:`Pooled`, the messages a dead guard raises, and the
bounded repr of pooled values.

Both facades subclass :class:`Pooled` (the native one in ``backends/nexus_pool_native.c``,
the pure one in ``_pool.py``), as do the local pools' guards; this module imports nothing
of the package but the errors, so the asyncio acquirer can name the guard type without
importing the pool classes.
"""

from __future__ import annotations

import reprlib
from typing import Final, Generic, NoReturn, SupportsIndex, TypeVar, final

from ._errors import ReleasedError

__all__ = ["COLLECTED_MESSAGE", "RELEASED_MESSAGE", "Pooled", "value_repr"]

T = TypeVar("T")

RELEASED_MESSAGE: Final = "this Pooled guard was already released (or never acquired); acquire again to get a value"

COLLECTED_MESSAGE: Final = (
    "this Pooled guard's slot was returned to its pool by garbage collection (the guard was "
    "unreachable, e.g. in a reference cycle, and a finalizer brought it back); acquire again"
)


class _ValueRepr(reprlib.Repr):
    """Bounded reprs of pooled values: a guard over a 64 KiB buffer prints one short line."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        return self._bytes_like(value)

    def repr_bytes(self, value: bytes, level: int) -> str:
        return self._bytes_like(value)

    def repr_memoryview(self, value: memoryview, level: int) -> str:
        return f"<memoryview of {value.nbytes} bytes>"

    def _bytes_like(self, value: bytes | bytearray) -> str:
        size = len(value)
        if size <= self.maxstring:
            return repr(value)
        shown = repr(bytes(value[: self.maxstring // 2]))
        return f"{type(value).__name__}({shown}...) of {size} bytes"


value_repr: Final = _ValueRepr().repr


@final
class Pooled(Generic[T]):
    """A lease on one pooled value; give it back with :meth:`release` or a ``with`` block.

    Each acquisition makes a new guard, so a guard that was released can never reach the
    value again, even after its slot has been lent to somebody else. A guard that is
    garbage collected while it still holds its value returns the slot itself.

    Guards come from :meth:`Pool.acquire` and :meth:`Pool.try_acquire` (instances of a
    facade's subclass); one made by calling ``Pooled()`` directly holds nothing.
    """

    __slots__ = ()

    @property
    def value(self) -> T:
        """The pooled value; :class:`~nexus_pool.ReleasedError` once the guard has been released."""
        raise ReleasedError(RELEASED_MESSAGE)

    def release(self, _exc_type: object = None, _exc: object = None, _traceback: object = None) -> None:
        """Reset the value on this thread and return its slot to the pool.

        Raises :class:`~nexus_pool.ReleasedError` if the guard was already released. If ``reset``
        raises, the slot still goes back (with a fresh ``factory()`` value) and the
        exception propagates from here. ``__exit__`` does the same.
        """
        raise ReleasedError(RELEASED_MESSAGE)

    def __enter__(self) -> T:
        """The pooled value; :class:`~nexus_pool.ReleasedError` once the guard has been released."""
        raise ReleasedError(RELEASED_MESSAGE)

    def __exit__(self, _exc_type: object, _exc: object, _traceback: object) -> None:
        """Release the guard (also when the ``with`` body raised)."""
        raise ReleasedError(RELEASED_MESSAGE)

    def __repr__(self) -> str:
        return "<Pooled (released)>"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Pooled guards cannot be copied or pickled: a copy would be a second lease on one slot")
