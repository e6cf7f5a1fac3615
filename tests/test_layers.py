"""The one-way data flow, checked by reading the imports (as Nomad Pack checks its SDK layering)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "nomadgen"

# Which of our modules may import which third-party packages.
ALLOWED = {
    "nomad": {"backends"},
    "consul": {"backends"},
    "requests": {"backends"},
    "dns": {"discovery"},
    "typer": {"cli"},
    "rich": {"cli", "console"},
    "hcl2": set(),  # only the tests parse HCL
}
# The pure core never reaches for I/O layers.
PURE = {"names", "model", "kinds", "errors", "resolve", "render", "hcl", "graph", "preflight"}
IO_MODULES = {"backends", "converge", "operations", "cli", "discovery"}


def imports(path: Path) -> set[str]:
    return imports_in(ast.parse(path.read_text()))


def imports_in(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: ours
                out |= {f"nomadgen.{node.module or ''}".rstrip(".")} | {
                    f"nomadgen.{a.name}" for a in node.names if not node.module
                }
            elif node.module:
                out.add(node.module)
    return out


def test_third_party_clients_stay_behind_their_adapters():
    for path in sorted(PKG.glob("*.py")):
        mod = path.stem
        for name in imports(path):
            top = name.split(".")[0]
            if top in ALLOWED:
                assert mod in ALLOWED[top], f"nomadgen/{path.name} imports {name}"


def test_pure_core_imports_no_io_layer():
    for mod in PURE:
        ours = {n.split(".")[1] for n in imports(PKG / f"{mod}.py") if n.startswith("nomadgen.")}
        assert not ours & IO_MODULES, f"{mod} imports {ours & IO_MODULES}"


def _ours(mod: str) -> set[str]:
    return {n.split(".")[1] for n in imports(PKG / f"{mod}.py") if n.startswith("nomadgen.")}


def test_names_is_the_top_of_the_layering():
    """names.py owns every name and layout; it imports nothing of ours and no third party."""
    names = imports(PKG / "names.py")
    assert not {n for n in names if n.startswith("nomadgen")}, names
    assert all(n.split(".")[0] in {"re", "collections", "typing", "__future__"} for n in names), (
        names
    )  # stdlib only


def test_settings_does_not_import_resolve():
    assert "resolve" not in _ours("settings")


def test_the_check_catches_a_violation(tmp_path):
    bad = tmp_path / "render.py"
    bad.write_text("import requests\nfrom .backends import NomadBackend\n")
    names = imports(bad)
    assert "requests" in names and "nomadgen.backends" in names


def runtime_imports(path: Path) -> set[str]:
    """Imports that run: those under `if TYPE_CHECKING:` only name types."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = [ast.Pass()]
    return imports_in(tree)


# What the pure diff may use of the standard library: nothing that reaches a file, a socket,
# a clock or a thread.
DIFF_STDLIB = {"__future__", "json", "collections", "enum", "typing"}


def check_pure_diff(path: Path) -> list[str]:
    bad = []
    for name in runtime_imports(path) - {"nomadgen"}:  # `from . import names` also names "nomadgen"
        if name.startswith("nomadgen."):
            if name.split(".")[1] not in PURE:
                bad.append(name)
        elif name.split(".")[0] not in DIFF_STDLIB:
            bad.append(name)
    return sorted(bad)


def test_the_diff_imports_no_backend_and_does_no_io():
    """diff.py (observed state in, change set out) uses only the pure core and pure stdlib
    modules: no backend, no observe, no converge. (tests/test_diff_cases.py also runs every
    golden case with files and sockets refused.)"""
    assert check_pure_diff(PKG / "diff.py") == []


def test_the_diff_check_catches_a_violation(tmp_path):
    bad = tmp_path / "diff.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\nimport time\nfrom .observe import observe\n"
        "from .backends import NomadBackend\nif TYPE_CHECKING:\n    from .converge import apply\n"
    )
    assert check_pure_diff(bad) == ["nomadgen.backends", "nomadgen.observe", "time"]
