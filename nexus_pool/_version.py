"""The package's version, one place for it: ``pyproject.toml`` reads it at build time, and
CHANGELOG.md has an entry for it (a test checks both)."""

__version__ = "0.1.0"
