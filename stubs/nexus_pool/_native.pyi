# Types of the native facade (backends/nexus_pool_native.c); mypy reads this through
# mypy_path, and the wheel carries it beside the compiled module. Its classes are
# subclasses of the public classes (nexus_pool._base, _guard, _buffers,
# nexus_pool._local_base), which type them; users never name these.
from collections.abc import Callable
from typing import Any, final

from nexus_pool import _base, _buffers, _guard, _local_base

class Pool(_base.Pool[Any]):  # type: ignore[misc]  # the public class is final for users; BufferPool's base
    @property
    def _reset(self) -> Callable[[Any], object] | None: ...
    @classmethod
    def _create(
        cls,
        capacity: int,
        factory: Callable[[], Any],
        reset: Callable[[Any], object] | None,
        name: str,
        sample_period: int,
        warn_after: float,
        /,
    ) -> Any: ...

@final
class BufferPool(_buffers.BufferPool, Pool):  # type: ignore[misc]
    @property
    def _reset(self) -> _buffers.BufferReset: ...

@final
class Pooled(_guard.Pooled[Any]): ...  # type: ignore[misc]

@final
class LocalPool(_local_base.Pool[Any]):  # type: ignore[misc]
    @classmethod
    def _create(
        cls, capacity: int, factory: Callable[[], Any], reset: Callable[[Any], object] | None, sample_period: int, /
    ) -> Any: ...

@final
class LocalBoundedPool(_local_base.BoundedPool[Any]):  # type: ignore[misc]
    @classmethod
    def _create(
        cls, capacity: int, factory: Callable[[], Any], reset: Callable[[Any], object] | None, sample_period: int, /
    ) -> Any: ...

MAX_CAPACITY: int
