"""What a user sees: output, files, exit codes, messages, and what the process imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen import cli
from nomadgen.cli import app
from nomadgen.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples/dockland.json")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("NOMAD", "CONSUL")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no stray nomadgen.toml


def run(*args):
    return CliRunner().invoke(app, list(args))


def test_render_prints_hcl_for_every_job():
    res = run("render", EXAMPLE)
    assert res.exit_code == 0, res.output
    for job in ("app", "blog", "psql-app", "psql-blog", "worker"):
        assert f'job "{job}" {{' in res.stdout
        assert f"# --- {job}.nomad.hcl" in res.stdout


def test_render_json_single_job_is_a_registrable_body():
    res = run("render", EXAMPLE, "--format", "json", "--job", "psql-app")
    body = json.loads(res.stdout)
    assert body["Job"]["ID"] == "psql-app"


def test_render_out_writes_jobs_and_interfaces(tmp_path):
    out = tmp_path / "out"
    res = run("render", EXAMPLE, "--out", str(out), "--format", "json")
    assert res.exit_code == 0, res.output
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "psql-app.nomad.json" in names and "interfaces/psql-app.json" in names
    assert "interfaces/memcache-app.json" in names
    assert not [
        n for n in names if n.startswith(".") and n != ".nomadgen-render"
    ]  # no temporary files left


def test_same_input_same_bytes(tmp_path):
    a = run("render", EXAMPLE).stdout
    b = run("render", EXAMPLE).stdout
    assert a == b


def test_zones_flag_and_env(monkeypatch):
    res = run("resolve", EXAMPLE, "--json", "--zones", "x,y")
    assert json.loads(res.stdout)["zones"] == ["x", "y"]
    monkeypatch.setenv("NOMADGEN_ZONES", "p,q,r,s")
    res = run("resolve", EXAMPLE, "--json")
    assert json.loads(res.stdout)["zones"] == ["p", "q", "r", "s"]
    res = run("resolve", EXAMPLE, "--json", "--zones", "x")  # the flag wins over env
    assert json.loads(res.stdout)["zones"] == ["x"]


def test_zones_from_config_file(tmp_path):
    (tmp_path / "nomadgen.toml").write_text('zones = ["east", "west"]\n')
    res = run("resolve", EXAMPLE, "--json")
    assert json.loads(res.stdout)["zones"] == ["east", "west"]
    (tmp_path / "nomadgen.toml").write_text('zonez = ["east"]\n')
    res = run("resolve", EXAMPLE)
    assert res.exit_code == 6 and "unknown key(s) zonez" in res.stderr


def test_resolve_table_shows_instances_per_zone_and_users():
    res = run("resolve", EXAMPLE)
    line = next(x for x in res.stdout.splitlines() if x.startswith("psql:app"))
    assert line.split()[:6] == ["psql:app", "per-zone", "3", "1", "1", "1"]
    assert "app, worker" in line


def test_graph_dot_and_mermaid(tmp_path):
    dot = run("graph", EXAMPLE).stdout
    assert dot.startswith('digraph "dockland"') and "n_worker -> n_psql__app;" in dot
    mm = run("graph", EXAMPLE, "--format", "mermaid").stdout
    assert mm.startswith("flowchart LR") and "n_worker --> n_psql__app" in mm
    run("graph", EXAMPLE, "--out", str(tmp_path / "g"))
    assert (tmp_path / "g/graph.dot").read_text() == dot


@pytest.mark.parametrize(
    "args,code,text",
    [
        (("render", "nope.json"), 3, "manifest not found: nope.json"),
        (("render", EXAMPLE, "--zones", "a,a"), 6, "invalid zone list"),
        (("render", EXAMPLE, "--job", "nope"), 1, "no job 'nope'"),
        (("render", EXAMPLE, "--templates", "/no/such/dir"), 3, "templates folder not found"),
    ],
)
def test_user_errors_are_one_message_with_a_code(args, code, text):
    res = run(*args)
    assert res.exit_code == code
    assert text in res.stderr
    assert res.stdout == ""
    assert "Traceback" not in res.output


def test_internal_error_is_not_a_traceback_unless_debug(monkeypatch):
    import nomadgen.pipeline

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(nomadgen.pipeline, "build_resolution", boom)
    res = run("render", EXAMPLE)
    assert res.exit_code == 70
    assert "internal error: RuntimeError: kaboom" in res.stderr and "Traceback" not in res.output
    res = run("--debug", "render", EXAMPLE)
    cli._state["debug"] = False
    # --debug shows the traceback and keeps the exit code.
    assert res.exit_code == 70 and "Traceback" in res.stderr and "kaboom" in res.stderr


def test_exit_codes_are_documented():
    readme = (ROOT / "README.md").read_text()
    for code in set(EXIT_CODES.values()):
        assert f"| {code} |" in readme, f"exit code {code} missing from README"


def test_render_does_not_import_clients_or_parsers():
    code = (
        "import sys, runpy, io, contextlib\n"
        f"sys.argv = ['nomadgen', 'render', {EXAMPLE!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: runpy.run_module('nomadgen', run_name='__main__')\n"
        "    except SystemExit as e: assert not e.code, e.code\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "nomadgen" in loaded
    for heavy in (
        "nomad",
        "consul",
        "requests",
        "urllib3",
        "hcl2",
        "lark",
        "dns",
        "yaml",
        "jsonschema",
        "pydantic",
    ):
        assert heavy not in loaded, f"render imported {heavy}"


def test_schema_command_prints_the_manifest_schema():
    res = run("schema")
    assert json.loads(res.stdout)["title"] == "nomadgen manifest"


def test_version_is_the_distribution_version():
    import tomllib

    want = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = subprocess.run(
        [sys.executable, "-m", "nomadgen", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )  # this checkout's nomadgen
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"nomadgen {want}\n", "")
    res = run("--version", "render", "no-such-manifest.json")  # eager: nothing else runs
    assert (res.exit_code, res.stdout) == (0, f"nomadgen {want}\n")
