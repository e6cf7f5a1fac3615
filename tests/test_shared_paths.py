"""Tests that read ../shared honour NOMADGEN_SHARED (best through nomad_jobcheck.jobspec.shared_dir)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir

ROOT = Path(__file__).resolve().parents[1]

# A path built from the repository's parent (`.parent / "shared"`, `parents[2] / "shared"`,
# `"..", "shared"`), or a literal "../shared". Every test finds it through shared_dir() instead,
# the one place that reads NOMADGEN_SHARED: a line is judged, not its file (a file that also
# names the variable somewhere could still build a path by hand elsewhere).
_BY_HAND = re.compile(
    r"""(\.parents?(\[\d+\])?\s*/\s*["']shared["'])|(["']\.\.["']\s*,\s*["']shared["'])"""
    r"""|(["']\.\./shared)"""
)


def _offenders(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "test_shared_paths.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _BY_HAND.search(line):
                out.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    return out


def test_every_test_that_reads_shared_honours_nomadgen_shared():
    assert _offenders(ROOT / "tests") == []


@pytest.mark.parametrize(
    "line",
    [
        'X = ROOT.parent / "shared" / "seed"',
        'X = Path(__file__).parents[2] / "shared"',
        'X = os.path.join(ROOT, "..", "shared")',
        'X = Path("../shared/tools")',
        # Naming the variable elsewhere in the file does not excuse a path built by hand.
        'X = Path(os.environ["NOMADGEN_SHARED"]) if 0 else ROOT.parent / "shared"',
    ],
)
def test_the_check_catches_a_path_built_by_hand(tmp_path, line):
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_x.py").write_text(f"import os\n{line}\n")
    assert _offenders(tests) == [f"tests/test_x.py:2: {line}"]
    (tests / "test_x.py").write_text('X = shared_dir() / "seed"  # ../shared or $NOMADGEN_SHARED\n')
    assert _offenders(tests) == []


@pytest.mark.parametrize("value", ["/somewhere/else"])
def test_nomadgen_shared_wins(monkeypatch, value):
    monkeypatch.setenv("NOMADGEN_SHARED", value)
    assert shared_dir() == Path(value)
    monkeypatch.delenv("NOMADGEN_SHARED")
    assert shared_dir() == ROOT.parent / "shared"
