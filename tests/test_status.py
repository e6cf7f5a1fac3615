"""`nomadgen status` against the stand-in (issue 8.3): it works without a push record (from the
jobs the manifest owns), shows deployment and allocation IDs (short in text, full in --json),
judges sets without checks by their allocations as submit does, and exits 17 when a set is
degraded, pending or drifted."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from nomadgen.cli import app
from nomadgen.converge import ApplyError, apply
from nomadgen.operations import prepare
from nomadgen.settings import load_config
from tests.test_converge import HOG, settled
from tests.test_e2e import backends, manifest_copy, push

NOT_CONVERGED = 17


def status(s, *args):
    return CliRunner().invoke(app, ["status", *args], env=s.env())


def rows(res) -> dict[str, dict]:
    return {r["set"]: r for r in json.loads(res.stdout)}


def test_status_without_a_push_record_shows_deployment_and_allocation_ids(cluster, tmp_path):
    manifest = manifest_copy(tmp_path, {"app": {}, "worker": {"depends": ["app"]}})
    push(cluster, manifest)
    _, consul = backends(cluster)
    assert consul.kv_delete_cas(
        "nomadgen/dockland/push/plan", consul.kv_get("nomadgen/dockland/push/plan")[1]
    )
    res = status(cluster, "dockland", "--json")
    assert res.exit_code == 0, res.output
    got = rows(res)
    assert sorted(got) == ["app", "worker"]
    nomad, _ = backends(cluster)
    live = sorted(a["ID"] for a in nomad.allocations("app") if a["DesiredStatus"] == "run")
    assert got["app"]["deployment"] == nomad.deployment("app")["ID"]
    assert sorted(got["app"]["allocations"]) == live and len(live[0]) == 36
    assert got["app"]["health"] == "healthy" and got["app"]["healthy"] == 3
    res = status(cluster, "dockland")
    assert res.exit_code == 0, res.output
    assert f"deployment {got['app']['deployment'][:8]}," in res.stdout
    assert live[0][:8] in res.stdout and live[0] not in res.stdout


def test_a_set_without_checks_is_judged_by_its_allocations_as_submit_does(cluster, tmp_path):
    # worker has no port, so no Consul check: submit judged it by its allocations running.
    manifest = manifest_copy(tmp_path, {"app": {}, "worker": {"depends": ["app"]}})
    _, report = push(cluster, manifest)
    assert report.ok
    res = status(cluster, str(manifest), "--json")
    assert res.exit_code == 0, res.output
    worker = rows(res)["worker"]
    assert worker["health"] == "healthy" and worker["healthy"] == worker["expected"] == 3


def test_a_degraded_set_exits_17(standin_factory, tmp_path):
    s = standin_factory(time_scale=0.002)  # app's healthy deadline passes in under a second
    cluster = SimpleNamespace(nomad_addr=s.nomad_addr, consul_addr=s.consul_addr)
    manifest = manifest_copy(tmp_path, {"app": {}})
    s.nomad.never_healthy("app")
    with pytest.raises(ApplyError):
        push(cluster, manifest, timeout=0.5)
    nomad, _ = backends(cluster)
    s.wait_for(lambda: nomad.deployment("app")["Status"] == "failed", timeout=30)
    res = status(s, "dockland", "--json")
    assert res.exit_code == NOT_CONVERGED, res.output
    app_row = rows(res)["app"]
    assert app_row["health"] == "degraded" and "failed" in app_row["why"]
    res = status(s, str(manifest))
    assert res.exit_code == NOT_CONVERGED
    assert "not converged (exit 17):" in res.stdout and "app: degraded: deployment" in res.stdout


def test_a_pending_set_exits_17(cluster, tmp_path):
    manifest = manifest_copy(tmp_path, {"app": {}})
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest), cfg, nomad, consul, name="dockland")
    settled(cluster, nomad, nomad.register(HOG, 0))  # the CPU is taken: app is blocked
    with pytest.raises(ApplyError):
        apply(prep.changes, nomad, consul, cfg.render, timeout=120)
    res = status(cluster, "dockland", "--json")
    assert res.exit_code == NOT_CONVERGED, res.output
    assert rows(res)["app"]["health"] == "pending", res.stdout


def test_a_count_changed_by_hand_is_drift_and_exits_17(cluster, tmp_path):
    manifest = manifest_copy(tmp_path, {"app": {}})
    push(cluster, manifest)
    res = status(cluster, str(manifest))
    assert res.exit_code == 0, res.output
    nomad, _ = backends(cluster)
    job = nomad.job("app")
    job["TaskGroups"][0]["Count"] = 0  # app-zone-a, by hand
    settled(cluster, nomad, nomad.register(job, job["JobModifyIndex"]))
    cluster.standin.wait_for(
        lambda: len([a for a in nomad.allocations("app") if a["DesiredStatus"] == "run"]) == 2
    )
    res = status(cluster, str(manifest), "--json")
    assert res.exit_code == NOT_CONVERGED, res.output
    drift = rows(res)["app"]["drift"]
    assert drift.startswith("differs from the manifest") and "Count" in drift, drift
    # By name only, the push record's count is what it is compared with.
    res = status(cluster, "dockland", "--json")
    assert res.exit_code == NOT_CONVERGED, res.output
    assert rows(res)["app"]["drift"] == "count changed: 2 live, 3 pushed"


def test_what_observe_reads_from_a_cluster_round_trips_through_json(cluster, tmp_path):
    """The Observed record is plain data: read from the stand-in, through JSON and back, it is
    the same record and the pure diff gives the same change set."""
    from nomadgen.diff import diff
    from nomadgen.observe import Observed

    manifest = manifest_copy(tmp_path, {"app": {}, "worker": {"depends": ["app"]}})
    push(cluster, manifest)
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest), cfg, nomad, consul, name="dockland", health=True)
    seen = prep.observed
    again = Observed.from_json(json.loads(json.dumps(seen.to_json())))
    assert again == seen and seen.deployments and seen.allocations["app"]
    r = prep.rendered
    assert diff(r.plan, r.jobs, r.interfaces, again, cfg.render) == diff(
        r.plan, r.jobs, r.interfaces, seen, cfg.render
    )
