"""Every public name has a docstring and an entry in the API reference (docs/api.rst)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"^\.\. auto(?:class|function|exception|data):: ([\w.]+)", API, re.MULTILINE))
PUBLIC_MODULES = ("nexus_pool", "nexus_pool.local", "nexus_pool.shared")
ALIASES = {"nexus_pool.sync": "nexus_pool"}  # the same classes under the Rust crate's module name


def public_names() -> list[str]:
    names = []
    for module_name in (*PUBLIC_MODULES, *ALIASES):
        module = importlib.import_module(module_name)
        names += [f"{module_name}.{name}" for name in module.__all__]
    return names


def resolve(dotted: str) -> object:
    module_name, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


@pytest.mark.parametrize("dotted", public_names())
def test_every_public_name_has_a_reference_entry(dotted: str) -> None:
    module_name, _, name = dotted.rpartition(".")
    home = ALIASES.get(module_name, module_name)
    # A name two public modules export (SharedBlockCorrupted) has one entry, under either.
    entries = [entry for entry in DOCUMENTED if entry.rpartition(".")[2] == name and resolve(entry) is resolve(dotted)]
    assert entries, f"docs/api.rst has no entry for {home}.{name}"


@pytest.mark.parametrize("dotted", public_names())
def test_every_public_name_and_its_public_members_have_docstrings(dotted: str) -> None:
    value = resolve(dotted)
    assert inspect.getdoc(value), f"{dotted} has no docstring"
    if not inspect.isclass(value):
        return
    for member_name, member in vars(value).items():
        if member_name.startswith("_") or not (callable(member) or isinstance(member, property)):
            continue
        if isinstance(member, type):
            continue
        assert inspect.getdoc(getattr(value, member_name)), f"{dotted}.{member_name} has no docstring"


def test_the_reference_documents_nothing_that_is_not_public() -> None:
    assert set(public_names()) >= DOCUMENTED
