"""cffi build script for ``nexus_pool._freelist_native`` (out-of-line API mode).

Run by setuptools through ``cffi_modules`` in setup.py, at install time (``pip install .``
and editable installs alike); it sits outside the importable package. The declarations
come from ``nexus_pool_freelist.h`` verbatim, the body from ``nexus_pool_freelist.c``.

The glue makes every call keep the caller's Python thread state (the GIL, on GIL builds)
and skip cffi's errno save/restore, which cffi's generated wrappers otherwise do around
every call. These functions never block and run for nanoseconds; releasing the GIL for
them tripled the cost of a call and made returner threads convoy on the GIL (numbers:
README, "The GIL question", from ``python backends/gil_question.py``). It works by
redefining the macros the generated wrappers use, so a test checks that it took effect.
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "nexus_pool_freelist.h"
SOURCE = HERE / "nexus_pool_freelist.c"

INCLUDES = """
#include <stdint.h>
#include "nexus_pool_freelist.h"

#ifdef Py_LIMITED_API /* ffi.compile() builds, as in gil_question.py */
PyAPI_FUNC(int) PyGILState_Check(void);
#endif

int nxp_glue_keeps_thread_state(void)
{
    return PyGILState_Check();
}
"""

KEEP_THREAD_STATE = """
/* Keep the thread state attached across calls: nothing here blocks. */
#undef Py_BEGIN_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#undef Py_END_ALLOW_THREADS
#define Py_END_ALLOW_THREADS }
/* Nothing here reads or sets errno. */
#undef _cffi_restore_errno
#define _cffi_restore_errno() ((void)0)
#undef _cffi_save_errno
#define _cffi_save_errno() ((void)0)
"""


def make_ffibuilder(
    module_name: str = "nexus_pool._freelist_native",
    *,
    keep_thread_state: bool = True,
    build_dir: Path | None = None,
) -> FFI:
    """The builder for the free-list module.

    ``keep_thread_state=False`` gives cffi's default wrappers (for measuring them).
    ``build_dir`` is where the compiler will run (setuptools insists on paths relative
    to it); by default the current directory, where setup.py runs.
    """
    base = Path.cwd() if build_dir is None else build_dir
    builder = FFI()
    builder.cdef(HEADER.read_text())
    builder.set_source(
        module_name,
        INCLUDES + (KEEP_THREAD_STATE if keep_thread_state else ""),
        sources=[os.path.relpath(SOURCE, base)],
        include_dirs=[os.path.relpath(HERE, base)],
        extra_compile_args=["-std=c11", "-O2"],
        # pip compiles this per interpreter at install time anyway, and free-threaded
        # builds have no stable ABI: use the full C API.
        py_limited_api=False,
        # Without a working compiler, install anyway: the atomic backend then reports
        # BackendUnavailable and the others work (CI fails on that, users can go on).
        optional=True,
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
