"""Convergence against the stand-in (issue "plan, submit and status tell the truth"): health is
judged on the version just registered, placement failures stop at once, unchanged sets are
judged too, and only nomadgen's own agent services are touched."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nomadgen.converge import ApplyError, apply
from nomadgen.errors import NotHealthy, Unplaceable
from nomadgen.operations import prepare
from nomadgen.settings import load_config
from tests.test_e2e import SEED, backends, cli, manifest_copy, push

HOG = {"ID": "hog", "Name": "hog", "Type": "service", "Datacenters": ["*"],
       "TaskGroups": [{"Name": "g", "Count": 3,
                       "Constraints": [{"Operand": "distinct_hosts", "RTarget": "true"}],
                       "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x:1"},
                                  "Resources": {"CPU": 3950, "MemoryMB": 64}}]}]}


def settled(cluster, nomad, reg):
    cluster.standin.wait_for(lambda: (nomad.evaluation(reg["EvalID"]) or {}).get("Status") == "complete")


def test_submit_waits_for_the_deployment_of_the_version_it_registered(cluster, tmp_path):
    push(cluster)
    nomad, _ = backends(cluster)
    doc = json.loads(SEED.read_text())
    doc["app"]["overrides"] = {"psql": {"image": "postgres:17-alpine"}}
    _, report = push(cluster, manifest_copy(tmp_path, doc))
    assert report.ok
    job = nomad.job("psql-app")
    dep = nomad.deployment("psql-app")
    # The old version's deployment was successful too: only this one may count.
    assert dep["JobVersion"] == job["Version"] == 1 and dep["Status"] == "successful"
    live = [a for a in nomad.allocations("psql-app") if a["DesiredStatus"] == "run"]
    assert {a["JobVersion"] for a in live} == {1} and len(live) == 3
    registered = next(s for s in report.steps if s.what == "register")
    assert registered.detail == "update, version 1"


def test_a_job_nomad_cannot_place_stops_submit_at_once_with_nomads_reasons(cluster, tmp_path):
    manifest = manifest_copy(tmp_path, {"app": {}})
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest), cfg, nomad, consul, name="dockland")  # plan: everything fits
    settled(cluster, nomad, nomad.register(HOG, 0))  # then someone takes the CPU
    with pytest.raises(ApplyError) as e:
        apply(prep.changes, nomad, consul, cfg.render, timeout=120)
    assert isinstance(e.value.__cause__, Unplaceable) and e.value.exit_code == 15
    text = str(e.value)
    assert "Nomad cannot place job app" in text and "cpu" in text

    # Submit again with nothing changed: the set it skips is judged too, never a false green.
    res = cli(cluster, "submit", str(manifest))
    assert res.exit_code == 15, res.output
    assert "Nomad cannot place job app" in res.stderr and "submitted" not in res.stdout


def test_unchanged_set_whose_deployment_failed_is_not_healthy(standin_factory, tmp_path):
    s = standin_factory(time_scale=0.002)  # app's 5m healthy deadline: 0.6 s
    cluster = SimpleNamespace(nomad_addr=s.nomad_addr, consul_addr=s.consul_addr)
    manifest = manifest_copy(tmp_path, {"app": {}})
    s.nomad.never_healthy("app")
    with pytest.raises(ApplyError):
        push(cluster, manifest, timeout=0.5)
    nomad, _ = backends(cluster)
    s.wait_for(lambda: nomad.deployment("app")["Status"] == "failed", timeout=30)
    with pytest.raises(ApplyError) as e:
        push(cluster, manifest, timeout=60)
    assert isinstance(e.value.__cause__, NotHealthy)
    assert [c.action for c in e.value.report.steps if c.what == "register"] == []
    text = str(e.value)
    assert "deployment" in text and "failed" in text
    assert "check 'app tcp' of app on zone-" in text and ": critical" in text


def test_progress_is_shown_as_it_happens(cluster):
    res = cli(cluster, "submit", str(SEED))
    assert res.exit_code == 0, res.output
    progress = [line for line in res.stderr.splitlines() if " progress " in line]
    assert any("deployment" in line and "healthy" in line and "psql-app" in line for line in progress)
    assert "nothing is known" not in res.stdout

    res = cli(cluster, "submit", str(SEED), "--json")
    assert res.exit_code == 0
    json.loads(res.stdout)  # one document on stdout
    events = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert events and all({"what", "target", "ok"} <= set(e) for e in events)
    assert any(e["what"] == "healthy" for e in events)


def test_no_wait_says_health_is_not_known(cluster):
    res = cli(cluster, "submit", str(SEED), "--no-wait")
    assert res.exit_code == 0
    assert "health is not known yet" in res.stdout


def test_external_services_never_touch_what_nomad_registered(cluster, tmp_path):
    doc = {"billing": {"depends": ["legacy-db"]},
           "legacy-db": {"external": {"address": "10.20.30.40", "port": 5432}, "protocol": "postgresql"}}
    push(cluster, manifest_copy(tmp_path, doc))
    _, consul = backends(cluster)
    agent = consul.services()
    # The agent lists billing's instances that Nomad registered through it, with its meta.
    nomad_owned = [sid for sid, s in agent.items() if (s.get("Meta") or {}).get("external-source") == "nomad"]
    assert nomad_owned and all(sid.startswith("_nomad-task-") for sid in nomad_owned)
    assert [sid for sid in agent if sid.startswith("nomadgen:")] == ["nomadgen:dockland:legacy-db"]
    del doc["legacy-db"]
    doc["billing"] = {}
    cluster.faults.reset_calls()
    prep, report = push(cluster, manifest_copy(tmp_path, doc), prune=True)
    assert [(s.id, s.action) for s in prep.changes.services] == [("nomadgen:dockland:legacy-db", "deregister")]
    deregistered = [x[2] for x in cluster.faults.log if "/v1/agent/service/deregister/" in x[2]]
    assert deregistered == ["/v1/agent/service/deregister/nomadgen:dockland:legacy-db"]
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0
    assert not [x for x in cluster.faults.log if "/v1/agent/service/deregister/_nomad" in x[2]]
