"""Writers that meet: another owner, another nomadgen, a refused token. Each case ends in a
documented state, with nothing of another owner touched."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nomadgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "dockland.json"


def test_permission_denied_inside_a_transaction_is_exit_8(standin_factory):
    s = standin_factory(consul_acl_tokens={"consul-secret"})
    res = CliRunner().invoke(app, ["submit", str(SEED)], env=s.env())  # no Consul token
    assert res.exit_code == 8, res.output
    assert "another push ran at the same time" not in res.output
    assert "Permission denied" in res.stderr


# --- the manifest lock, ownership re-checks, destroy's own keys -------------------------------

import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from nomadgen import operations  # noqa: E402
from nomadgen.backends import connect  # noqa: E402
from nomadgen.converge import ApplyError, apply  # noqa: E402
from nomadgen.operations import ManifestLock, destroy, prepare  # noqa: E402
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint  # noqa: E402

FOREIGN = {
    "Type": "service",
    "Datacenters": ["*"],
    "Meta": {"nomadgen_manifest": "other"},
    "TaskGroups": [
        {
            "Name": "g",
            "Count": 1,
            "Tasks": [
                {
                    "Name": "t",
                    "Driver": "docker",
                    "Config": {"image": "x:1"},
                    "Resources": {"CPU": 100, "MemoryMB": 64},
                }
            ],
        }
    ],
}


def backends(cluster):
    return connect(
        nomad_endpoint(address=cluster.nomad_addr, env={}),
        consul_endpoint(address=cluster.consul_addr, env={}),
    )


def cli(cluster, *args):
    return CliRunner().invoke(app, list(args), env=cluster.env())


def foreign(job_id: str) -> dict:
    return {**FOREIGN, "ID": job_id, "Name": job_id}


def submit(cluster, path=SEED, **kw):
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(path), cfg, nomad, consul, name="dockland", **kw)
    return prep, apply(prep.changes, nomad, consul, cfg.render, timeout=30)


def test_a_held_lock_stops_submit_and_destroy_with_exit_13(cluster):
    _, consul = backends(cluster)
    with ManifestLock(consul, "nomadgen/dockland", "dockland", "destroy"):
        res = cli(cluster, "submit", str(SEED))
        assert res.exit_code == 13, res.output
        assert "manifest dockland is locked by another nomadgen run (destroy on " in res.stderr
        res = cli(cluster, "destroy", "dockland", "--yes")
        assert res.exit_code == 13
    nomad, _ = backends(cluster)
    assert nomad.jobs() == {}  # the loser wrote nothing
    assert cli(cluster, "submit", str(SEED)).exit_code == 0  # released on exit


def test_a_crashed_holder_frees_the_lock_when_its_session_expires(cluster, monkeypatch):
    if cluster.standin is None:
        pytest.skip("needs the stand-in's session clock")
    cluster.standin.consul.time_scale = (
        0.01  # TTL 15 s -> the session ends 0.3 s after renewals stop
    )
    monkeypatch.setattr(operations, "LOCK_RENEW_S", 0.02)
    _, consul = backends(cluster)
    crashed = ManifestLock(consul, "nomadgen/dockland", "dockland", "submit").__enter__()
    crashed._stop.set()  # "kill -9": no more renewals, no release
    session = crashed.session
    deadline = time.monotonic() + 20
    while consul.session_info(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert consul.session_info(session) is None
    deadline = time.monotonic() + 20
    while (
        res := cli(cluster, "submit", str(SEED))
    ).exit_code == 13 and time.monotonic() < deadline:
        time.sleep(0.05)  # the lock-delay after the session ended
    assert res.exit_code == 0, res.output


def test_prune_rechecks_ownership_right_before_stopping(cluster, tmp_path):
    submit(cluster)
    doc = {"app": {"depends": ["psql", "memcache"]}, "worker": {"depends": ["psql:app"]}}
    path = tmp_path / "dockland.json"
    path.write_text(json.dumps(doc))
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(path), cfg, nomad, consul, name="dockland", prune=True)
    assert sorted(c.id for c in prep.changes.jobs if c.action == "stop") == ["blog", "psql-blog"]
    nomad.register(foreign("blog"), int(nomad.job("blog")["JobModifyIndex"]))  # taken over
    with pytest.raises(ApplyError) as exc:
        apply(prep.changes, nomad, consul, cfg.render, timeout=30)
    assert exc.value.exit_code == 10
    assert "job blog is no longer owned by manifest 'dockland' (now 'other')" in str(exc.value)
    assert not nomad.job("blog").get("Stop")  # the other owner's job runs on


def test_destroy_rechecks_ownership_and_leaves_the_new_owners_job(cluster, monkeypatch):
    submit(cluster)
    nomad, consul = backends(cluster)
    stale = operations.owned_jobs("dockland", nomad)  # read before the takeover
    nomad.register(foreign("worker"), int(nomad.job("worker")["JobModifyIndex"]))
    monkeypatch.setattr(operations, "owned_jobs", lambda *a: stale)
    with pytest.raises(Exception) as exc:
        destroy("dockland", load_config(env={}), nomad, consul)
    assert getattr(exc.value, "exit_code", None) == 10
    assert "job worker is no longer owned by manifest 'dockland' (now 'other')" in str(exc.value)
    assert nomad.job("worker") is not None and not nomad.job("worker").get("Stop")
    assert nomad.job("app") is None  # its own jobs were purged


def test_destroy_deletes_only_the_keys_nomadgen_wrote(cluster):
    submit(cluster)
    _, consul = backends(cluster)
    consul.txn(
        [
            {"Verb": "set", "Key": "nomadgen/dockland/notes", "Value": b"mine"},
            {"Verb": "set", "Key": "nomadgen/dockland/interfaces/hand-made", "Value": b"{}"},
        ]
    )
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0, res.output
    assert sorted(consul.kv_tree("nomadgen/dockland")) == [
        "nomadgen/dockland/interfaces/hand-made",
        "nomadgen/dockland/notes",
    ]
    assert "kept 2 key(s)" in res.stderr


@pytest.mark.parametrize("name", ["dockland/interfaces", "dockland\n", "../x", ""])
def test_manifest_names_are_checked_everywhere(cluster, name):
    for args in (
        ["destroy", name, "--yes"],
        ["status", name],
        ["interface", "get", "a", "--manifest", name],
    ):
        res = cli(cluster, *args)
        assert res.exit_code == 3, (args, res.output)
        assert "invalid manifest name" in res.stderr


def test_destroy_with_a_refused_consul_token_touches_nothing(standin_factory):
    s = standin_factory(consul_acl_tokens={"consul-secret"})
    env = {**s.env(), "CONSUL_HTTP_TOKEN": "consul-secret"}
    assert CliRunner().invoke(app, ["submit", str(SEED)], env=env).exit_code == 0
    res = CliRunner().invoke(app, ["destroy", "dockland", "--yes"], env=s.env())  # no token
    assert res.exit_code == 8, res.output
    nomad, _ = connect(
        nomad_endpoint(address=s.nomad_addr, env={}), consul_endpoint(address=s.consul_addr, env={})
    )
    assert len(operations.owned_jobs("dockland", nomad)) == 5  # nothing purged


def test_a_job_purged_while_submit_waits_is_said(cluster):
    cluster.standin.nomad.never_healthy("psql-app") if cluster.standin else pytest.skip(
        "stand-in lever"
    )
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(SEED), cfg, nomad, consul, name="dockland")
    out = {}

    def run():
        try:
            apply(prep.changes, nomad, consul, cfg.render, timeout=60)
        except ApplyError as exc:
            out["err"] = exc

    t = threading.Thread(target=run)
    t.start()
    # Purge once submit has registered the job (it then waits on it: never healthy). A condition,
    # not a time: a bound that ran out must fail here, never purge a job that is not there yet.
    cluster.standin.wait_for(lambda: not t.is_alive() or nomad.job("psql-app"), timeout=600)
    assert t.is_alive(), f"submit ended before it registered psql-app: {out}"
    nomad.stop("psql-app", purge=True)
    t.join(600)
    assert not t.is_alive(), "submit still waits for a purged job"
    assert "err" in out and out["err"].exit_code == 10
    assert "job psql-app was purged by someone else while submit waited for it" in str(out["err"])


def test_external_service_ids_cannot_collide_across_manifests(cluster, tmp_path):
    """Manifest `a` service `b-c` and manifest `a-b` service `c` were both `nomadgen-a-b-c`, and
    the second replaced the first. A colon (never in a name) keeps the pair apart."""
    from nomadgen import names

    assert names.external_id("a", "b-c") != names.external_id("a-b", "c")
    assert "-".join(("nomadgen", "a", "b-c")) == "-".join(("nomadgen", "a-b", "c"))  # old IDs
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"b-c": {"external": {"address": "10.0.0.1", "port": 1}}}))
    ab = tmp_path / "a-b.json"
    ab.write_text(json.dumps({"c": {"external": {"address": "10.0.0.2", "port": 2}}}))
    assert cli(cluster, "submit", str(a)).exit_code == 0
    res = cli(cluster, "submit", str(ab))
    assert res.exit_code == 0, res.output
    _, consul = backends(cluster)
    got = {
        sid: (s["Address"], (s.get("Meta") or {}).get("nomadgen_manifest"))
        for sid, s in consul.services().items()
        if sid.startswith("nomadgen:")
    }
    assert got == {"nomadgen:a:b-c": ("10.0.0.1", "a"), "nomadgen:a-b:c": ("10.0.0.2", "a-b")}
    # Each manifest's destroy takes only its own.
    assert cli(cluster, "destroy", "a", "--yes").exit_code == 0
    assert [sid for sid in consul.services() if sid.startswith("nomadgen:")] == ["nomadgen:a-b:c"]


@pytest.mark.parametrize("meta", [{"nomadgen_manifest": "other"}, {}])
def test_an_external_service_id_held_by_someone_else_is_never_replaced(cluster, tmp_path, meta):
    """The ID nomadgen would use, registered by another manifest or by hand: refused (exit 10),
    nothing of it changed, nothing else written."""
    _, consul = backends(cluster)
    consul.register_service("c", "nomadgen:a-b:c", "10.9.9.9", 9, ["theirs"], meta)
    ab = tmp_path / "a-b.json"
    ab.write_text(json.dumps({"c": {"external": {"address": "10.0.0.2", "port": 2}}}))
    for args in (["submit", str(ab)], ["submit", str(ab), "--prune"]):
        res = cli(cluster, *args)
        assert res.exit_code == 10, res.output
        owner = "manifest 'other'" if meta else "someone other than nomadgen"
        assert f"service ID for c is registered by {owner}" in res.stderr
    theirs = consul.services()["nomadgen:a-b:c"]
    assert (theirs["Address"], theirs["Port"], theirs["Tags"]) == ("10.9.9.9", 9, ["theirs"])
    assert (theirs.get("Meta") or {}) == meta
    assert consul.kv_tree("nomadgen") == {}  # refused before any write
    # destroy of a-b does not take it either: it owns nothing.
    res = cli(cluster, "destroy", "a-b", "--yes")
    assert res.exit_code == 16 and "nomadgen:a-b:c" in consul.services()


def test_a_missing_consul_token_is_said(standin_factory):
    s = standin_factory(consul_acl_tokens={"consul-secret"})
    env = {**s.env(), "CONSUL_HTTP_TOKEN": "consul-secret"}
    assert CliRunner().invoke(app, ["submit", str(SEED)], env=env).exit_code == 0
    res = CliRunner().invoke(app, ["status", "dockland"], env=s.env())  # no token
    assert res.exit_code == 1 and "no Consul token is set" in res.stderr
    assert "nothing was pushed" not in res.stderr
    # plan without a token sees none of the keys under the prefix (Consul filters the listing
    # and says so): permission denied, naming the token, rather than everything shown as new.
    res = CliRunner().invoke(app, ["plan", str(SEED)], env=s.env())
    assert res.exit_code == 255, res.output
    assert "cannot list every key under nomadgen/" in res.stderr
    assert "set CONSUL_HTTP_TOKEN" in res.stderr
    res = CliRunner().invoke(app, ["status", "dockland"], env=env)
    assert res.exit_code == 0, res.output


# --- real races: two nomadgen runs at once ------------------------------------------------------


def _snapshot(cluster) -> dict:
    """What a writer can change: each job's modify index and stop flag, each key's modify index
    (the lock key's holder aside), the agent services."""
    nomad, consul = backends(cluster)
    return {
        "jobs": {
            j: (int(d.get("JobModifyIndex") or 0), bool(d.get("Stop")))
            for j in sorted(nomad.jobs())
            if (d := nomad.job(j)) is not None
        },
        "kv": {k: i for k, (_, i) in consul.kv_tree("nomadgen").items() if not k.endswith("/lock")},
        "services": sorted(sid for sid in consul.services() if sid.startswith("nomadgen:")),
    }


def test_a_submit_and_a_destroy_meet_a_submit_in_flight(cluster):
    """A real `nomadgen submit` (another process) holds the lock while it waits for psql-app; a
    second submit and a destroy of the same manifest exit 13 and change nothing; the first then
    finishes with exit 0, converged."""
    import os
    import subprocess
    import sys

    if cluster.standin is None:
        pytest.skip("needs the stand-in's health lever")
    s = cluster.standin
    s.nomad.never_healthy("psql-app")
    first = subprocess.Popen(
        [sys.executable, "-m", "nomadgen", "submit", str(SEED), "--timeout", "600"],
        env={**os.environ, **cluster.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        nomad, _ = backends(cluster)
        # A condition, not a time: psql-app registered means the first run holds the lock.
        s.wait_for(lambda: first.poll() is not None or nomad.job("psql-app"), timeout=600)
        assert first.poll() is None, first.communicate()
        before = _snapshot(cluster)
        for args in (["submit", str(SEED)], ["destroy", "dockland", "--yes"]):
            res = cli(cluster, *args)
            assert res.exit_code == 13, (args, res.output)
            assert "manifest dockland is locked by another nomadgen run (submit on " in res.stderr
        assert _snapshot(cluster) == before  # the losers wrote nothing
        s.nomad.never_healthy("psql-app", on=False)
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert cli(cluster, "plan", str(SEED)).exit_code == 0  # converged, the lock released


def test_a_submit_meets_a_destroy_in_flight(cluster, monkeypatch):
    """destroy holds the lock from before its first purge to after its last key: a submit that
    arrives in between exits 13 and writes nothing; destroy ends with nothing of the manifest
    left, and the next submit deploys it again."""
    submit(cluster)
    nomad, consul = backends(cluster)
    purging, go_on = threading.Event(), threading.Event()
    real_stop = nomad.stop

    def held_stop(job_id, purge=False):
        purging.set()  # destroy holds the lock and is about to purge its first job
        assert go_on.wait(600)
        return real_stop(job_id, purge=purge)

    monkeypatch.setattr(nomad, "stop", held_stop)
    out = {}

    def run():
        try:
            out["done"] = destroy("dockland", load_config(env={}), nomad, consul)
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            out["err"] = exc

    t = threading.Thread(target=run)
    t.start()
    try:
        assert purging.wait(600), out
        before = _snapshot(cluster)
        res = cli(cluster, "submit", str(SEED))
        assert res.exit_code == 13, res.output
        assert "manifest dockland is locked by another nomadgen run (destroy on " in res.stderr
        assert _snapshot(cluster) == before
    finally:
        go_on.set()
        t.join(600)
    assert "err" not in out, out
    assert _snapshot(cluster) == {"jobs": {}, "kv": {}, "services": []}
    assert consul.kv_tree("nomadgen") == {}  # the lock key too: destroy tidies it
    assert cli(cluster, "submit", str(SEED)).exit_code == 0


def test_destroy_stopped_part_way_says_what_was_and_was_not_done(cluster):
    """A failure after the first purge (the second purge's connection reset): destroy names
    what it did and what it did not, and running it again finishes the rest."""
    if cluster.faults is None:
        pytest.skip("needs the stand-in's faults")
    submit(cluster)
    nomad, consul = backends(cluster)
    jobs = operations.owned_jobs("dockland", nomad)
    keys = [k for k in consul.kv_tree("nomadgen/dockland") if not k.endswith("/lock")]
    cluster.faults.add(
        service="nomad", method="DELETE", path_prefix="/v1/job/", nth=2, kind="reset"
    )
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 7, res.output
    assert "destroy stopped: cannot reach Nomad" in res.stderr
    done = next(line for line in res.stderr.splitlines() if line.strip().startswith("done:"))
    not_done = next(line for line in res.stderr.splitlines() if "not done:" in line)
    assert done.strip() == f"done: purge {jobs[0]}"
    assert not_done.strip() == "not done: " + ", ".join(
        [f"purge {j}" for j in jobs[1:]] + [f"delete {len(keys)} key(s)"]
    )
    assert nomad.job(jobs[0]) is None and nomad.job(jobs[1]) is not None
    assert sorted(
        k for k in consul.kv_tree("nomadgen/dockland") if not k.endswith("/lock")
    ) == sorted(keys)  # every key is still there
    cluster.faults.clear()
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0, res.output
    assert nomad.jobs() == {} and consul.kv_tree("nomadgen") == {}
