"""The dev tools stand apart from what they test: neither the stand-in nor the job checker
imports nomadgen, and the stand-in uses the checker through a hard import (a checker that
fails to import fails the stand-in, never silently stops checking)."""

from __future__ import annotations

from pathlib import Path

import nomad_jobcheck
import nomad_standin

PACKAGES = {
    "nomad_standin": Path(nomad_standin.__file__).parent,
    "nomad_jobcheck": Path(nomad_jobcheck.__file__).parent,
}


def imports(path: Path) -> set[str]:
    """The absolute imports of a module, anywhere in it (relative ones are its own package)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def _nomadgen_imports(folder: Path) -> dict[str, set[str]]:
    out = {}
    for path in sorted(folder.rglob("*.py")):  # subpackages too (nomad_jobcheck.rules)
        bad = {n for n in imports(path) if n.split(".")[0] == "nomadgen"}
        if bad:
            out[path.relative_to(folder).as_posix()] = bad
    return out


def test_dev_tools_do_not_import_nomadgen():
    for name, folder in PACKAGES.items():
        assert len(list(folder.rglob("*.py"))) > 1, f"{name}: no modules found in {folder}"
        assert _nomadgen_imports(folder) == {}, name


def test_the_jobcheck_does_not_import_the_standin():
    for path in PACKAGES["nomad_jobcheck"].rglob("*.py"):
        assert not {n for n in imports(path) if n.split(".")[0] == "nomad_standin"}, path.name


def test_the_standin_imports_the_checker_at_module_level():
    import ast

    tree = ast.parse((PACKAGES["nomad_standin"] / "nomad.py").read_text())
    top = set()
    for node in tree.body:  # module level only: not inside a function or a try
        if isinstance(node, ast.Import):
            top |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
    assert "nomad_jobcheck" in top


def test_the_check_catches_a_violation(tmp_path):
    (tmp_path / "a.py").write_text("from nomadgen.render import render\n")
    (tmp_path / "b.py").write_text("import json\nfrom . import nomadgen\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("def f():\n    import nomadgen.names\n")
    assert _nomadgen_imports(tmp_path) == {
        "a.py": {"nomadgen.render"},
        "sub/c.py": {"nomadgen.names"},
    }
