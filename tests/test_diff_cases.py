"""Golden cases for the pure diff: tests/diff_cases/<name>/ holds `manifest.json` (what is wanted),
`observed.json` (what is: an observe.Observed record), optional `case.json` (name, zones, prune,
env, config) and what the diff must give: `changes.txt` (as `nomadgen plan` prints it) and
`changes.json` (as `plan --json`), or `error.txt` for a diff that refuses. No server: each rule of
the diff is tested on its own. Rewrite the expectations after a meant change with
NOMADGEN_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomadgen.console import changeset_text
from nomadgen.diff import diff
from nomadgen.errors import NomadgenError
from nomadgen.observe import Observed
from nomadgen.pipeline import build_resolution
from nomadgen.render import interfaces, render
from nomadgen.settings import load_config

CASES = Path(__file__).parent / "diff_cases"
UPDATE = os.environ.get("NOMADGEN_UPDATE_GOLDEN") == "1"


def _cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "observed.json").is_file())


def run_case(case: Path) -> tuple[str, str]:
    """The diff of one case, as (text, json); a refusal as (its message and exit code, "")."""
    opts = json.loads((case / "case.json").read_text()) if (case / "case.json").is_file() else {}
    cfg = load_config(
        zones=",".join(opts.get("zones", ["zone-a", "zone-b", "zone-c"])),
        config=str(case / opts["config"]) if "config" in opts else None,
        environment=opts.get("env"),
        env={},
    )
    _, plan = build_resolution(
        str(case / "manifest.json"), cfg, opts.get("name", "shop"), cfg.zones
    )
    jobs = render(plan, cfg.render)
    ifaces = interfaces(plan, cfg.render)
    observed = Observed.from_json(json.loads((case / "observed.json").read_text()))
    text = (case / "manifest.json").read_text()
    with _no_io():
        try:
            cs = diff(
                plan,
                jobs,
                ifaces,
                observed,
                cfg.render,
                manifest_text=text,
                prune=opts.get("prune", False),
            )
        except NomadgenError as exc:
            return f"{exc}\nexit code {exc.exit_code}\n", ""
        return changeset_text(cs) + "\n", json.dumps(cs.to_json(), indent=2) + "\n"


@contextlib.contextmanager
def _no_io() -> Iterator[None]:
    """The diff is pure: opening a file or a socket while it runs fails the case."""

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the diff did I/O")

    saved = builtins.open, socket.socket, socket.create_connection
    builtins.open = socket.socket = socket.create_connection = refuse  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        builtins.open, socket.socket, socket.create_connection = saved


def expect(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with NOMADGEN_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{path} differs"


@pytest.mark.parametrize("name", _cases())
def test_diff_case(name: str, monkeypatch) -> None:
    monkeypatch.delenv("NOMADGEN_ZONES", raising=False)
    case = CASES / name
    text, doc = run_case(case)
    if doc == "":
        expect(case / "error.txt", text)
        return
    assert not (case / "error.txt").is_file(), "the diff was expected to refuse"
    expect(case / "changes.txt", text)
    expect(case / "changes.json", doc)


def test_the_io_guard_catches_io():
    """Known bad: a diff that opened a file would fail its case."""
    with pytest.raises(AssertionError, match="did I/O"), _no_io():
        open(__file__)  # noqa: SIM115


def test_a_changed_result_fails_the_golden_check(tmp_path, monkeypatch):
    """Known bad: the golden check fails when the diff's output differs from the file."""
    monkeypatch.setattr(sys.modules[__name__], "UPDATE", False)
    text, _ = run_case(CASES / "drift")
    bad = tmp_path / "changes.txt"
    bad.write_text(text.replace("~ job", "= job", 1))
    with pytest.raises(AssertionError, match="differs"):
        expect(bad, text)


def test_observed_round_trips_through_json():
    for name in _cases():
        doc = json.loads((CASES / name / "observed.json").read_text())
        seen = Observed.from_json(doc)
        assert Observed.from_json(json.loads(json.dumps(seen.to_json()))) == seen
