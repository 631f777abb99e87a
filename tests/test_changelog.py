"""CHANGELOG.md and the package's version agree."""

from __future__ import annotations

import re
from pathlib import Path

import nexus_pool

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+(?:[a-z]+\d+)?) - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def test_the_latest_release_in_the_changelog_is_the_packages_version() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    releases = RELEASE.findall(text)
    assert releases, "CHANGELOG.md has no release heading (## X.Y.Z - YYYY-MM-DD)"
    assert releases[0][0] == nexus_pool.__version__


def test_unreleased_changes_come_first_and_releases_run_newest_first() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings[0] == "Unreleased"
    dates = [date for _, date in RELEASE.findall(text)]
    assert dates == sorted(dates, reverse=True)
