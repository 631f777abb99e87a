"""``python -m nexus_pool``: which nexus_pool is installed, and which native parts loaded.

``--check`` exits with status 1 unless every compiled module and every backend loads: a
packager's or CI's test that the build did not fall back to pure Python.
"""

from __future__ import annotations

import argparse
import sys

from ._backends import unavailable_backends
from ._report import missing_native_modules, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nexus_pool",
        description="Show which nexus_pool is installed, and which compiled modules and backends load.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 unless every compiled module and backend loads"
    )
    args = parser.parse_args(argv)
    print(report())
    if args.check and (missing_native_modules() or unavailable_backends()):
        print("nexus_pool: --check failed: see the MISSING / UNAVAILABLE lines above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
