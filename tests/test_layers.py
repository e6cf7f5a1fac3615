"""The one-way data flow, checked by reading the imports (as Nomad Pack checks its SDK layering)."""

from __future__ import annotations

import ast
import re
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
PURE |= {"refs", "data", "stateful", "groups", "fields", "envplan", "diff", "hcl_fast"}
IO_MODULES = {"backends", "converge", "operations", "cli", "discovery", "observe"}
# Between the two: they read files or format output, but talk to no cluster themselves.
EDGE = {"files", "manifest", "catalog", "environments", "settings", "pipeline", "console", "entry"}


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
    for mod in PURE:  # type hints may name an I/O layer's record (diff: Observed)
        ours = {n.split(".")[1] for n in runtime_imports(PKG / f"{mod}.py") if n.count(".") == 1}
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


# -- README's data-flow section is the layering, checked against the tree ----------------------
README = PKG.parent / "README.md"


def _ours_at_run_time(mod: str) -> set[str]:
    return {n.split(".")[1] for n in runtime_imports(PKG / f"{mod}.py") if n.count(".") == 1}


def readme_layers(text: str) -> list[list[str]]:
    """The modules of the data-flow block, top to bottom: one list per line naming any."""
    block = text.split("Data flows one way", 1)[1].split("```", 2)[1]
    layers = []
    for line in block.splitlines():
        if line[:1].strip():  # a module's own line, not a continuation
            head = re.split(r"\s{2,}", line, maxsplit=1)[0]
            layers.append(re.findall(r"(\w+)\.py", head))
    return [layer for layer in layers if layer]


def layering_problems(layers: list[list[str]], imports_of, modules: set[str]) -> list[str]:
    listed = [m for layer in layers for m in layer]
    problems = [f"{m}.py is not in README's data flow" for m in sorted(modules - set(listed))]
    problems += [
        f"README names {m}.py, which does not exist" for m in sorted(set(listed) - modules)
    ]
    problems += [
        f"README names {m}.py twice" for m in sorted({m for m in listed if listed.count(m) > 1})
    ]
    above: set[str] = set()
    for layer in layers:  # modules on one line may import each other (cli and entry do)
        for mod in layer:
            below = sorted((imports_of(mod) & modules) - above - set(layer))
            if below:
                problems.append(f"{mod}.py imports {', '.join(below)}, listed below it")
        above |= set(layer)
    return problems


def _modules() -> set[str]:
    return {p.stem for p in PKG.glob("*.py")} - {"__init__", "__main__"}


def test_readme_data_flow_lists_every_module_in_import_order():
    layers = readme_layers(README.read_text())
    assert layering_problems(layers, _ours_at_run_time, _modules()) == []


def test_every_module_is_placed_in_the_layering():
    """A new module is pure, an I/O layer or in between: it goes in exactly one of the sets."""
    placed = PURE | IO_MODULES | EDGE
    assert _modules() - placed == set(), "put the new module in PURE, IO_MODULES or EDGE"
    assert placed - _modules() == set()
    assert not (PURE & IO_MODULES or PURE & EDGE or IO_MODULES & EDGE)


def test_the_data_flow_check_catches_violations(tmp_path):
    text = "Data flows one way.\n\n```\nb.py   x\na.py   y\n  c.py continuation\nd.py, e.py\n```\n"
    layers = readme_layers(text)
    assert layers == [["b"], ["a"], ["d", "e"]]
    imports_of = {"a": {"b"}, "b": {"a"}, "d": {"e", "g"}, "e": {"d", "b"}}.__getitem__
    assert layering_problems(layers, imports_of, {"a", "b", "d", "e", "f", "g"}) == [
        "f.py is not in README's data flow",
        "g.py is not in README's data flow",
        "b.py imports a, listed below it",
        "d.py imports g, listed below it",  # d and e import each other: one line, one layer
    ]
    assert layering_problems([["a"], ["a", "b"]], lambda m: set(), {"a", "b"}) == [
        "README names a.py twice"
    ]
    mod = tmp_path / "m.py"
    mod.write_text(
        "from typing import TYPE_CHECKING\nfrom . import a\nfrom .b import f\n"
        "if TYPE_CHECKING:\n    from .c import C\ndef g():\n    from .d import h\n"
    )
    assert {n for n in runtime_imports(mod) if n.count(".") == 1} == {
        "nomadgen.a",
        "nomadgen.b",
        "nomadgen.d",
    }
