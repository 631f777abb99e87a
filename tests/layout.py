"""Where the suite runs: against the checkout, or against an installed copy.

The same suite runs from the checkout (the README's test command: an editable install)
and from outside it against a built wheel or sdist (``.ci/artifacts``). A few checks
differ: an installed package must carry its stubs beside its compiled modules, while the
checkout keeps them in ``stubs/`` (mypy_path).
"""

from __future__ import annotations

from pathlib import Path

import nexus_pool

ROOT = Path(__file__).resolve().parents[1]
"""The directory holding ``tests/``: the checkout, or the copy of the sdist's tests."""

PACKAGE_DIR = Path(nexus_pool.__file__).resolve().parent
"""Where ``import nexus_pool`` found the package under test."""

FROM_CHECKOUT = PACKAGE_DIR == ROOT / "nexus_pool"
"""True when the package under test is the checkout's own source tree."""


def stub_of(module: str) -> Path:
    """The ``.pyi`` that types compiled ``module`` (``nexus_pool.x``) for the package under test."""
    relative = Path(*module.split(".")).with_suffix(".pyi")
    if FROM_CHECKOUT:
        return ROOT / "stubs" / relative
    return PACKAGE_DIR.parent / relative
