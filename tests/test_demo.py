"""`make demo` tells the data story: plan's data line, and every marker kept through the change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _processes_naming(text: str) -> list[int]:
    """Live (not zombie) processes whose command line holds `text`."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if proc.name.isdigit() and text in cmdline and stat != "Z":
            out.append(int(proc.name))
    return out


def _run_demo(script: str) -> str:
    """Run a demo as `make` does (no cluster of the caller's), asserting exit 0; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    res = subprocess.run(
        [sys.executable, str(ROOT / "dev" / script)],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=600,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    return out


def _assert_cluster_stopped(out: str) -> None:
    """The demo stops the cluster it started: nothing of its state dir is left running."""
    (state,) = re.findall(r"dev cluster up \(standin\); state in (\S+)", out)
    assert _processes_naming(state) == []


def test_demo_change_keeps_each_instances_data():
    out = _run_demo("demo.py")
    assert "psql:app (ephemeral): kept, 3 instance(s)" in out
    table = out[out.index("each one's data came along") :]
    rows = [line for line in table.splitlines() if line.startswith("psql-app.psql-zone-")]
    assert len(rows) == 3 and all(line.endswith("(kept)") for line in rows), table[:1500]
    assert "continued, carried over" in out
    _assert_cluster_stopped(out)


def test_demo_envs_changes_dev_and_leaves_prod_where_it_was():
    out = _run_demo("demo_envs.py")
    # The demo checks itself (exit 1 if prod moved or dev did not); the table is what it shows.
    table = out[out.index("PROD JOB") :].splitlines()[1:6]
    assert [row.split()[1] for row in table] == ["kept"] * 5, table
    assert "no changes" in out[out.index("7. prod") :]
    _assert_cluster_stopped(out)
