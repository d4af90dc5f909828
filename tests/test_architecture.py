"""The package's shape: every module reachable by its dotted path, no import cycles, a base layer at the bottom."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import weightinfo

ROOT = Path(weightinfo.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(weightinfo.__path__, "weightinfo."))


def _path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    pkg = ROOT / rel / "__init__.py"
    return pkg if pkg.exists() else (ROOT / rel).with_suffix(".py")


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> set[str]:
    """weightinfo modules that ``name`` imports anywhere in its file (function-level imports included,
    ``if TYPE_CHECKING:`` blocks excluded); ``from pkg import sub`` counts as an import of ``pkg.sub``."""
    path = _path(name)
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for n in ast.walk(node)}  # fmt: skip
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("weightinfo")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("weightinfo"):
                continue
            subs = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES}
            if subs:
                out |= subs
            if len(subs) < len(node.names):
                out.add(mod)
    out.discard(name)
    return {m for m in out if m in MODULES or m == "weightinfo"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


GRAPH = {m: _imports(m) for m in ["weightinfo", *MODULES]}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_is_reachable_by_its_dotted_path(name):
    """``import weightinfo.a.b as m`` gives the module: no function or class shadows it."""
    importlib.import_module(name)
    parent, _, leaf = name.rpartition(".")
    assert isinstance(getattr(importlib.import_module(parent), leaf), types.ModuleType), name


def test_root_functions_keep_their_names():
    for fn in (
        "information",
        "information_curve",
        "fisher",
        "hessian",
        "train",
        "certify",
        "lagrangian",
    ):
        assert callable(getattr(weightinfo, fn)) and not isinstance(
            getattr(weightinfo, fn), types.ModuleType
        )


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_base_layer_imports_only_itself():
    for name, deps in GRAPH.items():
        if name.startswith("weightinfo._base"):
            assert all(d.startswith("weightinfo._base") for d in deps), (name, deps)


def test_private_modules_are_imported_only_within_their_package():
    """``pkg._x`` is imported by modules of ``pkg`` (or below) only; ``weightinfo._base`` by anyone."""
    for name, deps in GRAPH.items():
        for d in deps:
            parts = d.split(".")
            for i, p in enumerate(parts):
                if (
                    p.startswith("_")
                    and not p.startswith("__")
                    and ".".join(parts[:i]) != "weightinfo"
                ):
                    owner = ".".join(parts[:i])
                    assert name == owner or name.startswith(owner + "."), f"{name} imports {d}"
