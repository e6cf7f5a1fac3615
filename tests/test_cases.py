"""Golden cases as data: tests/cases/<name>/manifest.json plus what the CLI must print for it.

For a manifest that resolves: `resolve.json` (nomadgen resolve --json) and `render.json`
(nomadgen render --format json). For one that must fail: `error.txt` (stderr) and `exit_code`.
Optional `args.txt` adds flags ({case} is the case folder). When a change is meant, rewrite the
expected files with NOMADGEN_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen.cli import app

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("NOMADGEN_UPDATE_GOLDEN") == "1"


def _cases():
    return sorted(p.name for p in CASES.iterdir() if (p / "manifest.json").is_file())


def _run(case: Path, *cmd: str):
    extra = []
    if (case / "args.txt").is_file():
        extra = shlex.split((case / "args.txt").read_text().replace("{case}", str(case)))
    manifest = str(case / "manifest.json")
    # The name is fixed so the output does not depend on the file name "manifest.json".
    result = CliRunner().invoke(app, [*cmd, manifest, "--name", case.name, *extra])
    return result


def _expect(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with NOMADGEN_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", _cases())
def test_case(name: str, monkeypatch) -> None:
    monkeypatch.delenv("NOMADGEN_ZONES", raising=False)
    case = CASES / name
    res = _run(case, "resolve", "--json")
    if (case / "error.txt").is_file() or (UPDATE and res.exit_code != 0):
        stderr = res.stderr.replace(str(case) + "/", "")
        _expect(case / "error.txt", stderr)
        _expect(case / "exit_code", f"{res.exit_code}\n")
        assert "Traceback" not in res.output
        # Nothing is rendered for a manifest that does not resolve.
        rendered = _run(case, "render", "--format", "json")
        assert rendered.exit_code == res.exit_code
        assert rendered.stdout == ""
        return
    assert res.exit_code == 0, res.output
    _expect(case / "resolve.json", res.stdout)
    rendered = _run(case, "render", "--format", "json")
    assert rendered.exit_code == 0, rendered.output
    _expect(case / "render.json", rendered.stdout)
