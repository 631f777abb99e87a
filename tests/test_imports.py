"""The package's module map: every import arrow points down, and every module imports first.

Two checks, as multidict's ``test_circular_imports.py`` and then some:

* each module of the package, and each compiled one, imports in a fresh interpreter as the
  first thing it does (a circle held together by import order shows up as an ImportError
  or an AttributeError on a half-made module);
* the import graph read from the sources has no cycle, so an order exists in which every
  arrow points down. It counts every ``import`` of a package module (at the top, under
  ``TYPE_CHECKING`` or inside a function) and the modules the C extensions import by
  name; a compiled module named for typing only is its stub, not the C code. An import
  inside a function either sits in a ``try`` that handles ImportError (a compiled module
  that may be missing) or says why on its line or the line above: never to dodge a circle.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .layout import PACKAGE_DIR, ROOT

C_SOURCES = ROOT / "backends"
COMPILED = ("nexus_pool._freelist_native", "nexus_pool._native", "nexus_pool._shared_native")
C_MODULE_OF = {
    "nexus_pool._native": ("nexus_pool_native.c", "nexus_pool_local.c"),
    "nexus_pool._shared_native": ("nexus_pool_shared_module.c",),
    "nexus_pool._freelist_native": ("nexus_pool_freelist.c",),
}


def python_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = python_modules()
KNOWN = set(MODULES) | set(COMPILED)


def _target(importer: str, is_package: bool, node: ast.ImportFrom, alias: str) -> str | None:
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    if not module.startswith("nexus_pool"):
        return None
    candidate = f"{module}.{alias}"
    return candidate if candidate in KNOWN else module


def imports_of(name: str, path: Path) -> Iterator[tuple[str, str, int]]:
    """(imported module, where, line) for each import of ours; where is "top", "typing"
    (under ``TYPE_CHECKING``), "optional" (in a ``try`` that handles ImportError) or
    "function" (any other import inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets = [_target(name, path.name == "__init__.py", node, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        where = "top"
        up: ast.AST = node
        while up in parents:
            up = parents[up]
            if isinstance(up, ast.Try) and any("ImportError" in ast.unparse(h.type or h) for h in up.handlers):
                where = "optional"  # a compiled module that may be missing: the handler says so
                break
            if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = "function"
                break
            if isinstance(up, ast.If) and "TYPE_CHECKING" in ast.unparse(up.test):
                where = "typing"
                break
        for target in targets:
            if target is None or not target.startswith("nexus_pool"):
                continue
            while target not in KNOWN and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                yield target, where, node.lineno


IMPORTED_IN_C = re.compile(
    r'(?:import_attribute\(|PyImport_ImportModule\(|make_type\(module, &\w+, )"(nexus_pool[.\w]*)"'
)
"""A module the C code imports: for an attribute, by name, or for a base class."""


def c_imports(module: str) -> set[str]:
    found = set()
    for source in C_MODULE_OF[module]:
        text = (C_SOURCES / source).read_text(encoding="utf-8")
        for name in re.findall(IMPORTED_IN_C, text):
            while name not in KNOWN and "." in name:
                name = name.rsplit(".", 1)[0]
            found.add(name)
    return found - {module, "nexus_pool"}


def import_graph() -> dict[str, set[str]]:
    """Who imports whom. A compiled module named under ``TYPE_CHECKING`` is its stub
    (``stubs/``), which no interpreter imports: that is no arrow into the C code."""
    graph: dict[str, set[str]] = {name: set() for name in KNOWN}
    for name, path in MODULES.items():
        graph[name] |= {
            target for target, where, _ in imports_of(name, path) if not (where == "typing" and target in COMPILED)
        }
    for module in COMPILED:
        graph[module] |= c_imports(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph()
    assert cycles(graph) == []
    # The check sees real arrows: the facade imports the base, the C module the guard.
    assert "nexus_pool._base" in graph["nexus_pool._facade"]
    assert {"nexus_pool._base", "nexus_pool._guard"} <= graph["nexus_pool._native"]


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_an_import_inside_a_function_says_why() -> None:
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for _, where, line in imports_of(name, path):
            if where == "function" and "#" not in lines[line - 1] and not lines[line - 2].strip().startswith("#"):
                silent.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {lines[line - 1].strip()}")
    assert silent == []


@pytest.mark.parametrize("module", sorted(KNOWN - {"nexus_pool.bench.__main__", "nexus_pool.__main__"}))
def test_every_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_the_package_imports_without_its_test_dependencies() -> None:
    """Only cffi is a run-time dependency: typing-extensions, numpy and the rest are not."""
    blocked = ("typing_extensions", "numpy", "hypothesis", "pytest", "mypy")
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"
        "import nexus_pool, nexus_pool.local, nexus_pool.shared, nexus_pool.sync, nexus_pool._report\n"
        "with nexus_pool.Pool(2, bytearray).acquire() as value: pass\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
