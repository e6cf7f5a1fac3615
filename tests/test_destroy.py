"""destroy and what it owns (issue 8.4): the credentials it generated stay by default and it
says where, `--delete-credentials` removes them (and only them), and a manifest that owns
nothing is said to and exits 16. Against the stand-in."""

from __future__ import annotations

from nomadgen.names import CREDENTIALS_OWNER_ITEM
from tests.test_e2e import SEED, backends, cli

CREDS = ["nomad/jobs/psql-app", "nomad/jobs/psql-blog"]


def _variables(nomad):
    return {v["Path"]: nomad.variable(v["Path"])["Items"] for v in nomad.variables("")}


def test_destroy_keeps_the_generated_credentials_and_says_where(cluster):
    assert cli(cluster, "submit", str(SEED)).exit_code == 0
    nomad, consul = backends(cluster)
    before = _variables(nomad)
    assert sorted(before) == CREDS
    assert all(v[CREDENTIALS_OWNER_ITEM] == "dockland" and v["password"] for v in before.values())

    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0, res.output
    assert (
        "kept 2 generated credential(s) in Nomad Variables (namespace default): "
        "nomad/jobs/psql-app, nomad/jobs/psql-blog" in res.stdout
    )
    assert "--delete-credentials` removes them" in res.stdout
    assert nomad.jobs() == {} and consul.kv_tree("nomadgen") == {}
    assert _variables(nomad) == before  # the same passwords: kept data still opens

    # A new deployment finds them and generates nothing: the kept data still opens.
    assert cli(cluster, "submit", str(SEED)).exit_code == 0
    assert _variables(nomad) == before


def test_delete_credentials_removes_only_what_nomadgen_generated(cluster):
    assert cli(cluster, "submit", str(SEED)).exit_code == 0
    nomad, _ = backends(cluster)
    # A variable put by hand at a path like nomadgen's, and one of another manifest's.
    nomad.create_variable("nomad/jobs/psql-app-by-hand", {"password": "mine"})
    nomad.create_variable("nomad/jobs/other", {"password": "x", CREDENTIALS_OWNER_ITEM: "other"})

    res = cli(cluster, "destroy", "dockland", "--yes", "--delete-credentials")
    assert res.exit_code == 0, res.output
    assert "deleted 2 generated credential(s)" in res.stdout and "kept" not in res.stdout
    assert sorted(_variables(nomad)) == ["nomad/jobs/other", "nomad/jobs/psql-app-by-hand"]


def test_destroy_after_keeping_credentials_can_still_delete_them(cluster):
    assert cli(cluster, "submit", str(SEED)).exit_code == 0
    nomad, _ = backends(cluster)
    assert cli(cluster, "destroy", "dockland", "--yes").exit_code == 0
    # The jobs and the push record are gone; the kept credentials are still the manifest's.
    res = cli(cluster, "destroy", "dockland", "--yes", "--delete-credentials")
    assert res.exit_code == 0, res.output
    assert "deleted 2 generated credential(s)" in res.stdout
    assert _variables(nomad) == {}


def test_destroy_of_a_manifest_that_owns_nothing_says_so_and_exits_16(cluster):
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 16, res.output
    assert "manifest dockland owns nothing on this cluster" in res.stderr
    assert "nothing was done" in res.stderr and "hint:" in res.stderr
    _, consul = backends(cluster)
    assert consul.kv_tree("nomadgen") == {}  # not even the lock was taken

    # Another manifest's deployment is not this one's.
    assert cli(cluster, "submit", str(SEED)).exit_code == 0
    res = cli(cluster, "destroy", "shop", "--yes")
    assert res.exit_code == 16 and "manifest shop owns nothing" in res.stderr
    # Once destroyed with its credentials, dockland owns nothing either.
    assert cli(cluster, "destroy", "dockland", "--yes", "--delete-credentials").exit_code == 0
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 16, res.output


def test_a_stale_lock_alone_owns_nothing_and_is_tidied(cluster):
    from nomadgen.operations import ManifestLock

    _, consul = backends(cluster)
    with ManifestLock(consul, "nomadgen/dockland", "dockland", "submit"):
        pass  # released: the key stays, as a crashed run's would once its session ended
    assert list(consul.kv_tree("nomadgen")) == ["nomadgen/dockland/lock"]
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 16, res.output
    assert "owns nothing" in res.stderr
    assert consul.kv_tree("nomadgen") == {}
