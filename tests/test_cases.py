"""Golden cases as data: tests/cases/<name>/manifest.json plus what the CLI must print for it.

For a manifest that resolves: `resolve.json` (nomadgen resolve --json) and `render.json`
(nomadgen render --format json). For one that must fail: `error.txt` (stderr) and `exit_code`.
Optional `args.txt` adds flags ({case} is the case folder). When a change is meant, rewrite the
expected files with NOMADGEN_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from nomad_jobcheck import check_job
from typer.testing import CliRunner

from nomadgen.cli import app
from tests.hcl_parity import hcl_to_job
from tests.test_hcl import canon_configs, normalise

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
    hcl = _run(case, "render", "--format", "hcl")
    assert hcl.exit_code == 0, hcl.output
    _expect(case / "render.hcl", hcl.stdout)

    # Fidelity: every job passes the strict Nomad check, and its HCL says the same as its JSON.
    jobs = json.loads(rendered.stdout)
    texts = dict(re.findall(r"# --- (\S+)\.nomad\.hcl\n(.*?)(?=\n# --- |\Z)", hcl.stdout, re.S))
    assert sorted(texts) == sorted(jobs)
    for job_id, body in jobs.items():
        assert check_job(body["Job"]) == [], job_id
        assert canon_configs(hcl_to_job(texts[job_id])) == normalise(body["Job"]), job_id
