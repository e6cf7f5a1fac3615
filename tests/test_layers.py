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
    tree = ast.parse(path.read_text())
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
