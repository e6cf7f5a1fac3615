"""The console entry point's fast path (nomadgen/entry.py): the offline commands with plain
arguments run without Typer, and must do exactly what the Typer app does with the same
arguments (output, messages, exit code, files); anything else goes to Typer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import nomadgen.pipeline
from nomadgen import cli, entry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples/dockland.json")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("NOMAD", "CONSUL")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def _streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    # Like a pipe: UTF-8, not a terminal.
    return tuple(io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(2))  # type: ignore[return-value]


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode()  # type: ignore[attr-defined]


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(argv: list[str], where: Path, fast: bool) -> tuple[int, str, str, dict[str, str]]:
    where.mkdir()
    os.chdir(where)
    out, err = _streams()
    with redirect_stdout(out), redirect_stderr(err):
        if fast:
            code = entry.run(argv)
            assert code is not None, f"{argv} did not take the fast path"
        else:
            old = sys.argv
            sys.argv = ["nomadgen", *argv]
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.argv = old
                cli._state["debug"] = False
    return code, _text(out), _text(err), _files(where)


def _write_inputs(tmp_path: Path) -> None:
    (tmp_path / "vars.json").write_text(json.dumps({"psql:app": {"image": "postgres:16.4"}}))
    (tmp_path / "more.json").write_text(json.dumps({"psql:blog": {"count": 2}}))
    (tmp_path / "bad.json").write_text('{"app": {"depends": ["nosuch"]}}')


SAME = [
    ["render", EXAMPLE],
    ["render", EXAMPLE, "-f", "json"],
    ["render", "-f", "json", EXAMPLE, "--job", "psql-app"],
    ["render", EXAMPLE, "--format", "hcl", "--job", "blog"],
    ["render", EXAMPLE, "--out", "out"],
    ["render", EXAMPLE, "-o", "out", "-f", "json", "--force", "--name", "shop"],
    ["render", EXAMPLE, "--job", "psql-app", "--out", "out"],
    ["render", EXAMPLE, "--zones", "zone-a,zone-b", "--set", "psql:app.resources.memory=2048"],
    ["render", EXAMPLE, "--var-file", "../vars.json", "--var-file", "../more.json"],
    ["render", EXAMPLE, "--job", "nosuch"],
    ["render", "missing.json"],
    ["render", "../bad.json"],
    ["render", EXAMPLE, "--config", "nosuch.toml"],
    ["render", EXAMPLE, "--env", "prod"],
    ["render", EXAMPLE, "--templates", "nosuch-folder"],
    ["--debug", "render", EXAMPLE, "-f", "json"],
    ["resolve", EXAMPLE],
    ["resolve", "--json", EXAMPLE, "--zones", "zone-a"],
    ["graph", EXAMPLE],
    ["graph", EXAMPLE, "-f", "mermaid"],
    ["graph", EXAMPLE, "--format", "dot", "--out", "g"],
]


@pytest.mark.parametrize("argv", SAME, ids=[" ".join(a).replace(EXAMPLE, "EX") for a in SAME])
def test_the_fast_path_does_what_typer_does(tmp_path, argv):
    _write_inputs(tmp_path)
    fast = _run(argv, tmp_path / "fast", fast=True)
    slow = _run(argv, tmp_path / "typer", fast=False)
    assert fast == slow


def test_an_internal_error_is_reported_the_same(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(nomadgen.pipeline, "build_resolution", boom)
    argv = ["render", EXAMPLE]
    fast = _run(argv, tmp_path / "fast", fast=True)
    assert fast[0] == 70 and "internal error: RuntimeError: kaboom" in fast[2]
    assert fast == _run(argv, tmp_path / "typer", fast=False)
    # --debug: the traceback (its frames differ by path) and the same exit code.
    fast = _run(["--debug", *argv], tmp_path / "fast-debug", fast=True)
    slow = _run(["--debug", *argv], tmp_path / "typer-debug", fast=False)
    assert fast[0] == slow[0] == 70
    for res in (fast, slow):
        assert res[2].startswith("Traceback") and "RuntimeError: kaboom" in res[2]


TYPER_PARSES = [
    ["render", EXAMPLE, "--help"],
    ["render", "-h"],
    ["--version", "render", EXAMPLE],
    ["render", "--format=json", EXAMPLE],
    ["render", "-fjson", EXAMPLE],
    ["render", EXAMPLE, "-f", "yaml"],
    ["render", EXAMPLE, "-f", "JSON"],
    ["graph", EXAMPLE, "-f", "json"],
    ["render", EXAMPLE, "--job", "a", "--job", "b"],
    ["render", EXAMPLE, "--force", "--force"],
    ["render", EXAMPLE, "--nope"],
    ["render", EXAMPLE, "--json"],
    ["resolve", EXAMPLE, "--out", "x"],
    ["render"],
    ["render", EXAMPLE, EXAMPLE],
    ["render", ""],
    ["render", EXAMPLE, "--out"],
    ["render", EXAMPLE, "--out", ""],
    ["render", EXAMPLE, "--job", "-x"],
    ["render", EXAMPLE, "--debug"],
    ["render", "--", EXAMPLE],
    ["render", "-", EXAMPLE],
    ["submit", EXAMPLE],
    ["--debug", "--debug", "render", EXAMPLE],
    [],
]


@pytest.mark.parametrize("argv", TYPER_PARSES, ids=[" ".join(a) for a in TYPER_PARSES])
def test_anything_but_plain_arguments_goes_to_typer(argv):
    assert entry.parse(argv) is None


def test_echo_is_typer_echo():
    """Colour codes are removed on a stream that is not a terminal, by both."""
    import typer

    text = "plain \033[31mred\033[0m and a lone \033 escape"
    mine, theirs = _streams()
    with redirect_stdout(mine):
        entry.echo(text)
        entry.echo(text, nl=False)
        entry.echo("")
    with redirect_stdout(theirs):
        typer.echo(text)
        typer.echo(text, nl=False)
        typer.echo("")
    assert _text(mine) == _text(theirs) and "\033[31m" not in _text(mine)


def _loaded(argv: list[str], tmp_path: Path) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['nomadgen', *{argv!r}]\n"
        "from nomadgen.entry import main\n"
        "try: main()\n"
        "except SystemExit as e: assert not e.code, e.code\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONUTF8": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    return set(out.stderr.split("\n")[-2].split())


def test_the_console_script_runs_offline_commands_without_typer(tmp_path):
    assert "typer" not in _loaded(["render", EXAMPLE, "-f", "json", "--job", "app"], tmp_path)
    assert "typer" not in _loaded(["resolve", EXAMPLE], tmp_path)
    # Known-bad: what the fast path does not take still runs, through Typer.
    assert {"typer", "nomadgen"} <= _loaded(["render", "--format=json", EXAMPLE], tmp_path)
