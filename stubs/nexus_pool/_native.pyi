# Types of the native facade (backends/nexus_pool_native.c); mypy reads this through
# mypy_path, and the wheel carries it beside the compiled module. The module defines no
# public names of its own: _setup makes its Pool and Pooled as subclasses of the public
# classes of nexus_pool/_facade.py, which type them.
from typing import Any

def _setup(
    pool_base: type[Any], pooled_base: type[Any], helpers: dict[str, object], /
) -> tuple[type[Any], type[Any]]: ...
def _setup_local(
    pool_base: type[Any], bounded_base: type[Any], exhausted_message: str, /
) -> tuple[type[Any], type[Any]]: ...
