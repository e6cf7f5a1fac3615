"""Tests that read ../shared honour NOMADGEN_SHARED (best through nomad_jobcheck.jobspec.shared_dir)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir

ROOT = Path(__file__).resolve().parents[1]

# A path built from the repository's parent, or a literal ../shared.
_BY_HAND = re.compile(r"""(\.parent\s*/\s*["']shared["'])|(["']\.\./shared)""")


def _offenders(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "test_shared_paths.py":
            continue
        text = path.read_text()
        if "NOMADGEN_SHARED" in text or "shared_dir" in text:
            continue  # it honours the variable (by hand or through the helper)
        for n, line in enumerate(text.splitlines(), 1):
            if _BY_HAND.search(line):
                out.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    return out


def test_every_test_that_reads_shared_honours_nomadgen_shared():
    assert _offenders(ROOT / "tests") == []


def test_the_check_catches_a_path_built_by_hand(tmp_path):
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_x.py").write_text('X = ROOT.parent / "shared" / "seed"\n')
    assert _offenders(tests) == ['tests/test_x.py:1: X = ROOT.parent / "shared" / "seed"']


@pytest.mark.parametrize("value", ["/somewhere/else"])
def test_nomadgen_shared_wins(monkeypatch, value):
    monkeypatch.setenv("NOMADGEN_SHARED", value)
    assert shared_dir() == Path(value)
    monkeypatch.delenv("NOMADGEN_SHARED")
    assert shared_dir() == ROOT.parent / "shared"
