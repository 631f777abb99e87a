"""What a user installs: the version, the compiled modules and their types, the report.

From the checkout these check the source tree; against an installed wheel or sdist
(``.ci/artifacts``) they check what the installer put in site-packages.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import nexus_pool
from nexus_pool._backends import BACKENDS
from nexus_pool._report import NATIVE_MODULES

from .conformance.support import IN_CI
from .layout import FROM_CHECKOUT, PACKAGE_DIR, ROOT, stub_of

DISTRIBUTION = "nexus-pool"


def run_report(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport sys\nfrom nexus_pool.__main__ import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_the_version_is_written_once() -> None:
    assert importlib.metadata.version(DISTRIBUTION) == nexus_pool.__version__


def test_the_package_is_typed() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()


@pytest.mark.parametrize("module", NATIVE_MODULES)
def test_every_compiled_module_has_a_stub(module: str) -> None:
    assert stub_of(module).is_file(), f"no stub for {module} at {stub_of(module)}"


def test_every_stub_types_a_compiled_module() -> None:
    stubs = sorted((ROOT / "stubs").rglob("*.pyi"))
    assert stubs, "stubs/ is empty"
    typed = {".".join(stub.relative_to(ROOT / "stubs").with_suffix("").parts) for stub in stubs}
    assert typed == set(NATIVE_MODULES)


@pytest.mark.skipif(FROM_CHECKOUT, reason="checks an installed wheel or sdist (.ci/artifacts runs it)")
def test_the_installed_files_are_complete() -> None:
    files = {str(path) for path in importlib.metadata.files(DISTRIBUTION) or []}
    for module in NATIVE_MODULES:
        stem = module.replace(".", "/")
        assert any(name.startswith(stem + ".") and name.endswith((".so", ".pyd")) for name in files), module
        assert f"{stem}.pyi" in files
    assert "nexus_pool/py.typed" in files
    assert any(name.endswith("licenses/LICENSE") for name in files)
    assert not any("/tests/" in name or name.startswith(("tests/", "backends/", "stubs/")) for name in files)


def test_the_report_lists_compiled_modules_and_backends() -> None:
    result = run_report()
    assert result.returncode == 0, result.stderr
    assert f"nexus_pool {nexus_pool.__version__} in {PACKAGE_DIR}" in result.stdout
    for name in (*NATIVE_MODULES, *BACKENDS):
        assert f"  {name}: " in result.stdout


def test_check_passes_when_everything_loads() -> None:
    result = run_report("--check")
    if IN_CI:  # CI builds with NEXUS_POOL_EXTENSIONS=require: everything must load
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode in (0, 1)
        assert ("MISSING" in result.stdout or "UNAVAILABLE" in result.stdout) == (result.returncode == 1)


def test_check_fails_and_says_why_when_a_compiled_module_is_missing() -> None:
    # A None entry in sys.modules makes the import fail as if the file were not there.
    hide_both = "import sys; sys.modules['nexus_pool._freelist_native'] = sys.modules['nexus_pool._native'] = None"
    result = run_report("--check", prelude=hide_both)
    assert result.returncode == 1
    assert "nexus_pool._freelist_native: MISSING" in result.stdout
    assert "atomic: UNAVAILABLE: backend 'atomic' cannot load on this interpreter" in result.stdout
    assert "locked: available" in result.stdout
    assert "--check failed" in result.stderr


def test_atomic_serves_native_pools_where_only_the_native_module_loads() -> None:
    """As in an isolated subinterpreter, which cannot load cffi's single-phase modules."""
    result = run_report("--check", prelude="import sys; sys.modules['nexus_pool._freelist_native'] = None")
    assert result.returncode == 1
    assert "nexus_pool._freelist_native: MISSING" in result.stdout
    assert "atomic: available (nexus_pool._backends.atomic); for native pools only" in result.stdout
