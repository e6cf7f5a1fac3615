"""`render --out`: the whole tree or nothing, tidy on re-render, ordinary file modes, and never
into / or someone else's folder unless asked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples/dockland.json")


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOMADGEN_ZONES", raising=False)


def run(*args):
    res = CliRunner().invoke(app, list(args))
    assert "Traceback" not in res.output
    return res


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_files_are_ordinary_output_0644(tmp_path):
    old = os.umask(0o022)
    try:
        assert run("render", EXAMPLE, "--out", str(tmp_path / "out")).exit_code == 0
    finally:
        os.umask(old)
    for f in (tmp_path / "out").rglob("*.hcl"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644


def test_whole_tree_or_nothing_when_a_path_is_in_the_way(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".nomadgen-render").write_text("")
    (out / "interfaces").write_text("a file where a folder must go")
    res = run("render", EXAMPLE, "--out", str(out))
    assert res.exit_code == 1 and "nothing was written" in res.stderr
    assert tree(out) == [".nomadgen-render", "interfaces"]


def test_a_re_render_removes_the_files_of_jobs_no_longer_rendered(tmp_path):
    out = tmp_path / "out"
    assert run("render", EXAMPLE, "--out", str(out)).exit_code == 0
    assert "blog.nomad.hcl" in tree(out)
    small = tmp_path / "dockland.json"
    small.write_text(json.dumps({"app": {"depends": ["psql", "memcache"]}}))
    (out / "notes.txt").write_text("mine")  # a file nomadgen did not write stays
    res = run("render", str(small), "--out", str(out))
    assert res.exit_code == 0 and "removed" in res.stderr
    assert tree(out) == sorted(
        [
            ".nomadgen-render",
            "app.nomad.hcl",
            "psql-app.nomad.hcl",
            "interfaces/app.json",
            "interfaces/psql-app.json",
            "interfaces/memcache-app.json",
            "notes.txt",
        ]
    )


def test_a_foreign_folder_is_refused_unless_forced(tmp_path):
    out = tmp_path / "src"
    out.mkdir()
    (out / "main.py").write_text("print('hi')\n")
    res = run("render", EXAMPLE, "--out", str(out))
    assert res.exit_code == 1 and "holds files nomadgen did not write (main.py)" in res.stderr
    assert tree(out) == ["main.py"]
    assert run("render", EXAMPLE, "--out", str(out), "--force").exit_code == 0
    assert "main.py" in tree(out) and "app.nomad.hcl" in tree(out)


def test_the_root_folder_is_refused():
    res = run("render", EXAMPLE, "--out", "/", "--force")
    assert res.exit_code == 1 and "file system root" in res.stderr


def test_a_marker_cannot_delete_outside_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / ".nomadgen-render").write_text("../victim.txt\n/etc/hostname\n")
    assert run("render", EXAMPLE, "--out", str(out)).exit_code == 0
    assert victim.read_text() == "keep me"


def test_what_a_manifest_value_may_reference(cluster, tmp_path):
    """In env, `${dep.field}` is a reference to a dependency and `$${` a literal `${`; in args,
    command and check paths `${...}` is text. Either way what reaches the job as `${...}` is
    filled in by Nomad when the task starts: ${NOMAD_*}, ${node.*}, ${attr.*}, ${meta.*}.
    Any other name stays as written."""
    if cluster.standin is None:
        pytest.skip("reads the task's environment through the stand-in")
    doc = {
        "app": {
            "env": {
                "SELF": "$${NOMAD_PORT_http}",
                "WHERE": "$${node.datacenter}",
                "ZONE": "$${meta.zone}",
                "OTHER": "$${not.a.thing}",
                "HOME_DIR": "$${HOME}",
            },
            "command": "/srv/${NOMAD_TASK_NAME}/run",
            "args": ["-p", "${NOMAD_PORT_http}"],
            "check": {"type": "http", "path": "/health?dc=${node.datacenter}"},
        }
    }
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(doc))
    res = run("render", str(path), "-f", "json")
    assert res.exit_code == 0, res.output
    group = json.loads(res.stdout)["app"]["Job"]["TaskGroups"][0]
    task = group["Tasks"][0]
    # Each reaches the job unchanged, for Nomad to fill in (env, args, command, check path).
    assert task["Env"]["SELF"] == "${NOMAD_PORT_http}"
    assert task["Env"]["OTHER"] == "${not.a.thing}"
    assert task["Config"]["args"] == ["-p", "${NOMAD_PORT_http}"]
    assert task["Config"]["command"] == "/srv/${NOMAD_TASK_NAME}/run"
    assert [c["Path"] for c in group["Services"][0]["Checks"]] == ["/health?dc=${node.datacenter}"]
    hcl = run("render", str(path)).stdout
    for escaped in (  # escaped for HCL: the same values as the JSON
        '"$${NOMAD_PORT_http}"',
        '"/srv/$${NOMAD_TASK_NAME}/run"',
        '"/health?dc=$${node.datacenter}"',
    ):
        assert escaped in hcl, escaped
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"app": {"env": {"X": "${NOMAD_PORT_http}"}}}))
    assert run("render", str(bad)).exit_code == 3  # in env, ${...} must name a dependency
    res = CliRunner().invoke(app, ["submit", str(path), "--timeout", "120"], env=cluster.env())
    assert res.exit_code == 0, res.output
    s = cluster.standin
    alloc = next(a for a in s.nomad.allocs.values() if a.job_id == "app")
    env = s.task_view(alloc.id, "app")["Env"]
    assert env["SELF"] == env["NOMAD_PORT_http"] and env["SELF"].isdigit()
    assert env["WHERE"] in ("zone-a", "zone-b", "zone-c") and env["ZONE"] == env["WHERE"]
    assert env["OTHER"] == "${not.a.thing}" and env["HOME_DIR"] == "${HOME}"


def _temps(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*.tmp"))


def test_files_are_staged_as_they_come_and_renamed_at_the_end(tmp_path):
    """render --out hands write_tree a generator: each file goes to its temporary name before the
    next one is rendered (the peak is one job, not the tree), and no final name appears until the
    last one is written."""
    from nomadgen.files import write_tree

    out = tmp_path / "out"
    seen = []

    def gen():
        for i in range(3):
            if i:  # the files so far are on disk, under their temporary names only
                seen.append((len(_temps(out)), len(tree(out))))
            yield f"sub/f{i}.txt", f"text {i}\n"

    write_tree(out, gen())
    assert seen == [(1, 1), (2, 2)]
    assert tree(out) == [".nomadgen-render", "sub/f0.txt", "sub/f1.txt", "sub/f2.txt"]
    assert (out / "sub/f2.txt").read_text() == "text 2\n"


def test_a_failure_while_rendering_leaves_nothing_half_written(tmp_path):
    from nomadgen.errors import NomadgenError
    from nomadgen.files import write_tree

    out = tmp_path / "out"
    assert run("render", EXAMPLE, "--out", str(out)).exit_code == 0
    before = {p: p.read_text() for p in out.rglob("*") if p.is_file()}

    def gen():
        yield "app.nomad.hcl", "changed\n"
        yield "new/deep/x.nomad.hcl", "new\n"
        raise NomadgenError("bad input found while rendering")

    with pytest.raises(NomadgenError):
        write_tree(out, gen())
    assert {p: p.read_text() for p in out.rglob("*") if p.is_file()} == before
    assert not (out / "new").exists()


def test_a_path_in_the_way_after_files_were_staged_leaves_nothing(tmp_path):
    """The problem is found only after earlier files went to their temporary names and a new
    folder was made: all of them are removed, and every problem is still listed."""
    from nomadgen.errors import NomadgenError
    from nomadgen.files import write_tree

    out = tmp_path / "out"
    out.mkdir()
    (out / "b").write_text("a file where a folder must go")
    (out / "d.txt").mkdir()
    files = iter([("a/one.txt", "1\n"), ("b/two.txt", "2\n"), ("c.txt", "3\n"), ("d.txt", "4\n")])
    with pytest.raises(NomadgenError) as err:
        write_tree(out, files, force=True)
    assert "nothing was written" in str(err.value)
    assert [p.message for p in err.value.problems] == [
        f"{out / 'b'} is a file, so b/two.txt cannot be written",
        f"{out / 'd.txt'} is a folder, so d.txt cannot be written",
    ]
    assert tree(out) == ["b"] and sorted(p.name for p in out.iterdir()) == ["b", "d.txt"]
