"""What pyproject.toml cannot say: the compiled modules, and what happens when they fail.

The environment variable NEXUS_POOL_EXTENSIONS, read at build time, decides:

    auto      (default) build the C extensions; if that fails, say so loudly and make a
              pure-Python wheel whose *name* says so, ``nexus_pool-<version>-
              0_C_extension_build_failed-py3-none-any.whl``. pip prints that name
              ("Created wheel for nexus-pool: filename=...") even when it hides the build
              log, and its wheel cache can never take it for the compiled wheel.
    require   build them or fail the install (packagers, CI).
    skip      no C at all, on purpose: a plain ``py3-none-any`` wheel.

The installed package reports what loaded: ``python -m nexus_pool``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

MODES = ("auto", "require", "skip")
MODE = os.environ.get("NEXUS_POOL_EXTENSIONS", "").strip().lower() or "auto"
if MODE not in MODES:
    sys.exit(f"NEXUS_POOL_EXTENSIONS must be one of {', '.join(MODES)}; got {MODE!r}")

FALLBACK_BUILD_TAG = "0_C_extension_build_failed"
STUBS = Path(__file__).resolve().parent / "stubs"

built: list[str] = []
failed: dict[str, str] = {}


class BuildExtensions(build_ext):
    """Records each extension's outcome; ``require`` turns optional ones into mandatory."""

    def build_extension(self, ext: Any) -> None:
        if MODE == "require":
            ext.optional = False
        try:
            super().build_extension(ext)
        except Exception as exc:
            failed[ext.name] = f"{type(exc).__name__}: {exc}"
            if MODE == "auto":
                self._announce_fallback(ext.name, exc)
            raise  # build_ext lets an optional extension fail, a required one not
        built.append(ext.name)

    @staticmethod
    def _announce_fallback(name: str, exc: Exception) -> None:
        rule = "*" * 78
        print(
            f"\n{rule}\n"
            f"nexus_pool: the C extension {name} could NOT be built:\n    {exc}\n"
            "Installing WITHOUT it: the 'atomic' backend will be unavailable and pools use\n"
            "the pure-Python 'locked' backend. The wheel is tagged\n"
            f"    {FALLBACK_BUILD_TAG}\n"
            "so that pip's output and its cache show it. To fail instead, set\n"
            "NEXUS_POOL_EXTENSIONS=require; to build without C on purpose, =skip. Once a C\n"
            "compiler and the Python headers are installed:\n"
            "    pip install --no-cache-dir --force-reinstall nexus-pool\n"
            f"{rule}\n",
            file=sys.stderr,
            flush=True,
        )


class BuildPy(build_py):
    """Ships ``stubs/<package>/*.pyi`` inside the packages they type.

    The stubs of the compiled modules live in ``stubs/`` (the checkout's mypy_path); a
    user's mypy finds them only beside the modules, in the wheel.
    """

    def run(self) -> None:
        super().run()
        for stub in sorted(STUBS.rglob("*.pyi")):
            target = Path(self.build_lib) / stub.relative_to(STUBS)
            self.mkpath(str(target.parent))
            self.copy_file(str(stub), str(target))


class BdistWheel(bdist_wheel):
    """Names a fallback wheel after what it lacks (see the module docstring)."""

    def get_tag(self) -> tuple[str, str, str]:
        # Called once the build is done and before the wheel is named.
        if failed:
            self.build_number = FALLBACK_BUILD_TAG
            if not built:
                self.root_is_pure = True  # no compiled code inside: py3-none-any
        return super().get_tag()


# The native facade (Pool and Pooled as C types) compiles in the same C free list as the
# cffi module that backs the pure facade's `atomic` backend.
NATIVE_FACADE = Extension(
    "nexus_pool._native",
    # It #includes nexus_pool_freelist.c and nexus_pool_local.c (see there).
    sources=["backends/nexus_pool_native.c"],
    depends=["backends/nexus_pool_freelist.c", "backends/nexus_pool_freelist.h", "backends/nexus_pool_local.c"],
    include_dirs=["backends"],
    extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden"],
    optional=True,
)

# The shared-memory pool (nexus_pool.shared): its core and its Python types; Linux only
# (futexes, POSIX shared memory).
SHARED_POOL = Extension(
    "nexus_pool._shared_native",
    sources=["backends/nexus_pool_shared_module.c", "backends/nexus_pool_shared.c"],
    include_dirs=["backends"],
    extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden"],
    libraries=["rt"],
    optional=True,
)

EXTENSIONS = [NATIVE_FACADE, *([SHARED_POOL] if sys.platform.startswith("linux") else [])]

setup(
    cmdclass={"build_ext": BuildExtensions, "build_py": BuildPy, "bdist_wheel": BdistWheel},
    cffi_modules=[] if MODE == "skip" else ["backends/build_freelist.py:ffibuilder"],
    ext_modules=[] if MODE == "skip" else EXTENSIONS,
)
