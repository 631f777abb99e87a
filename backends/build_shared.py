"""cffi build script for ``nexus_pool._shared_native``: the shared-memory pool's core.

Declarations from ``nexus_pool_shared.h`` verbatim, the body from ``nexus_pool_shared.c``.
cffi's default wrappers release the GIL around each call: ``nxs_wait`` sleeps in the
kernel, and the others are short.
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def make_ffibuilder(module_name: str = "nexus_pool._shared_native", build_dir: Path | None = None) -> FFI:
    base = Path.cwd() if build_dir is None else build_dir
    builder = FFI()
    builder.cdef((HERE / "nexus_pool_shared.h").read_text())
    builder.set_source(
        module_name,
        '#include <stdint.h>\n#include "nexus_pool_shared.h"\n',
        sources=[os.path.relpath(HERE / "nexus_pool_shared.c", base)],
        include_dirs=[os.path.relpath(HERE, base)],
        extra_compile_args=["-std=c11", "-O2"],
        py_limited_api=False,
        optional=True,
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
