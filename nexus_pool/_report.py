"""What this installation of nexus_pool is made of: ``python -m nexus_pool`` prints it.

A wheel built without a C compiler still installs (see setup.py); this report is where
a user sees that, and why, at run time.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Final

from ._backends import BACKENDS, ENV_VAR, backend_class, unavailable_backends
from ._facade import default_backend
from ._shared import shared_unavailable
from ._version import __version__

__all__ = ["NATIVE_MODULES", "missing_native_modules", "report"]

NATIVE_MODULES: Final = ("nexus_pool._freelist_native", "nexus_pool._native", "nexus_pool._shared_native")
"""The compiled modules a full build has (sources in ``backends/``, types in ``stubs/``)."""


def missing_native_modules() -> dict[str, str]:
    """The compiled modules that do not import here, each with the reason."""
    missing = {}
    for name in NATIVE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing[name] = str(exc)
    return missing


def report() -> str:
    """A few lines on the version, the interpreter, the compiled modules and the backends."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    package_dir = os.path.dirname(os.path.abspath(__file__))
    lines = [
        f"nexus_pool {__version__} in {package_dir}",
        f"{sys.implementation.name} {sys.version.split()[0]}, GIL {'enabled' if gil else 'disabled'}",
        "compiled modules:",
    ]
    missing = missing_native_modules()
    for name in NATIVE_MODULES:
        if name in missing:
            lines.append(f"  {name}: MISSING ({missing[name]})")
        else:
            lines.append(f"  {name}: {getattr(sys.modules[name], '__file__', None) or 'loaded'}")
    why = shared_unavailable()
    lines.append(
        f"nexus_pool.shared (buffers shared with worker processes): {'UNAVAILABLE: ' + why if why else 'available'}"
    )
    unavailable = unavailable_backends()
    chosen = os.environ.get(ENV_VAR)
    default = default_backend() if len(unavailable) < len(BACKENDS) else "none"
    source = f"{ENV_VAR}={chosen}" if chosen else f"default; {ENV_VAR} is not set"
    lines.append(f"backends (pools without backend= use: {chosen or default}, {source}):")
    for name in BACKENDS:
        if name in unavailable:
            lines.append(f"  {name}: UNAVAILABLE: {unavailable[name]}")
        else:
            freelist_class = backend_class(name)
            note = getattr(freelist_class, "pure_unavailable", "")
            lines.append(
                f"  {name}: available ({freelist_class.__module__})"
                + (f"; for native pools only, pure-Python ones cannot use it: {note}" if note else "")
            )
    return "\n".join(lines)
