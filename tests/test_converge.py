"""Convergence against the stand-in (issue "plan, submit and status tell the truth"): health is
judged on the version just registered, placement failures stop at once, unchanged sets are
judged too, and only nomadgen's own agent services are touched."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest

from nomadgen.converge import ApplyError, apply
from nomadgen.diff import diff, diff_summary
from nomadgen.errors import NotHealthy, Unplaceable
from nomadgen.observe import observe
from nomadgen.operations import prepare
from nomadgen.settings import load_config
from tests.test_e2e import SEED, backends, cli, manifest_copy, push

HOG = {
    "ID": "hog",
    "Name": "hog",
    "Type": "service",
    "Datacenters": ["*"],
    "TaskGroups": [
        {
            "Name": "g",
            "Count": 3,
            "Constraints": [{"Operand": "distinct_hosts", "RTarget": "true"}],
            "Tasks": [
                {
                    "Name": "t",
                    "Driver": "docker",
                    "Config": {"image": "x:1"},
                    "Resources": {"CPU": 3950, "MemoryMB": 64},
                }
            ],
        }
    ],
}


def settled(cluster, nomad, reg):
    cluster.standin.wait_for(
        lambda: (nomad.evaluation(reg["EvalID"]) or {}).get("Status") == "complete"
    )


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


def test_a_created_job_is_reported_at_the_version_nomad_gave_it(cluster):
    # A create is not read back (check-and-set index 0 only registers a new job, which Nomad
    # stores at version 0): the version said must still be Nomad's, after a purge too.
    nomad, _ = backends(cluster)
    for _ in range(2):
        _, report = push(cluster)
        created = [s for s in report.steps if s.what == "register"]
        assert created and all(s.detail == "create, version 0" for s in created)
        assert {nomad.job(s.target)["Version"] for s in created} == {0}
        for s in created:
            nomad.stop(s.target, purge=True)


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
    assert any(
        "deployment" in line and "healthy" in line and "psql-app" in line for line in progress
    )
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
    doc = {
        "billing": {"depends": ["legacy-db"]},
        "legacy-db": {
            "external": {"address": "10.20.30.40", "port": 5432},
            "protocol": "postgresql",
        },
    }
    push(cluster, manifest_copy(tmp_path, doc))
    _, consul = backends(cluster)
    agent = consul.services()
    # The agent lists billing's instances that Nomad registered through it, with its meta.
    nomad_owned = [
        sid for sid, s in agent.items() if (s.get("Meta") or {}).get("external-source") == "nomad"
    ]
    assert nomad_owned and all(sid.startswith("_nomad-task-") for sid in nomad_owned)
    assert [sid for sid in agent if sid.startswith("nomadgen:")] == ["nomadgen:dockland:legacy-db"]
    del doc["legacy-db"]
    doc["billing"] = {}
    cluster.faults.reset_calls()
    prep, report = push(cluster, manifest_copy(tmp_path, doc), prune=True)
    assert [(s.id, s.action) for s in prep.changes.services] == [
        ("nomadgen:dockland:legacy-db", "deregister")
    ]
    deregistered = [x[2] for x in cluster.faults.log if "/v1/agent/service/deregister/" in x[2]]
    assert deregistered == ["/v1/agent/service/deregister/nomadgen:dockland:legacy-db"]
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0
    assert not [x for x in cluster.faults.log if "/v1/agent/service/deregister/_nomad" in x[2]]


def _live_ids(nomad, job_id):
    return {a["ID"] for a in nomad.allocations(job_id) if a["DesiredStatus"] == "run"}


def _inplace(cluster, tmp_path, mutate):
    """Push {"app": {}}, then the same jobs with `mutate` applied to app's API job: returns
    the change set, the allocation IDs before and after."""
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest_copy(tmp_path, {"app": {}})), cfg, nomad, consul, name="dockland")
    apply(prep.changes, nomad, consul, cfg.render, timeout=60)
    before = _live_ids(nomad, "app")
    jobs = []
    for j in prep.rendered.jobs:
        api = copy.deepcopy(j.api)
        if j.id == "app":
            mutate(api)
        jobs.append(j._replace(api=api))
    plan = prep.rendered.plan
    seen = observe(plan, jobs, nomad, consul, cfg.render)
    cs = diff(plan, jobs, prep.rendered.interfaces, seen, cfg.render)
    apply(cs, nomad, consul, cfg.render, timeout=60)
    return cs, before, _live_ids(nomad, "app")


@pytest.mark.parametrize("kind", ["count", "service tags", "check", "constraint", "update block"])
def test_changes_nomad_can_apply_in_place_keep_every_allocation(cluster, tmp_path, kind):
    def mutate(api):
        # app is one group per zone: the change is made to each (the groups share blocks).
        api["TaskGroups"] = [copy.deepcopy(g) for g in api["TaskGroups"]]
        for group in api["TaskGroups"]:
            if kind == "count":
                group["Count"] += 1  # in place since no group has distinct_property
            elif kind == "service tags":
                group["Services"][0]["Tags"] = list(group["Services"][0].get("Tags") or ()) + ["v2"]
            elif kind == "check":
                group["Services"][0]["Checks"][0]["Interval"] *= 2
            elif kind == "constraint":
                group["Constraints"] = list(group.get("Constraints") or ()) + [
                    {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"}
                ]
            else:
                (group.get("Update") or api["Update"])["MinHealthyTime"] = 2 * 10**9

    cs, before, after = _inplace(cluster, tmp_path, mutate)
    (app,) = [c for c in cs.jobs if c.id == "app"]
    assert app.action == "update"
    updates = app.dry_run["Annotations"]["DesiredTGUpdates"]
    assert sorted(updates) == ["app-zone-a", "app-zone-b", "app-zone-c"]
    for u in updates.values():
        assert u["DestructiveUpdate"] == 0 and u["InPlaceUpdate"] == 1, updates
        assert u.get("Place", 0) == (1 if kind == "count" else 0), updates
    assert before and before <= after  # the same allocations keep running
    assert len(after) == len(before) + (3 if kind == "count" else 0)


def test_spread_and_affinity_changes_carry_nothing_of_nomadgens_own(cluster, tmp_path):
    """Nomad before 1.10 (the stand-in follows 1.5.8's scheduler) replaces allocations on a
    spread or affinity change: that is Nomad's rule. What nomadgen owns is that the diff holds
    the affinity alone, no meta of its own that would force a replacement on any Nomad."""

    def mutate(api):
        api["TaskGroups"][0]["Affinities"] = [
            {"LTarget": "${node.datacenter}", "Operand": "=", "RTarget": "zone-a", "Weight": 50}
        ]

    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest_copy(tmp_path, {"app": {}})), cfg, nomad, consul, name="dockland")
    apply(prep.changes, nomad, consul, cfg.render, timeout=60)
    api = copy.deepcopy(next(j.api for j in prep.rendered.jobs if j.id == "app"))
    mutate(api)
    diff = nomad.plan(api)["Diff"]
    assert not [f for f in diff.get("Fields") or () if f["Type"] != "None"]
    group, *others = diff["TaskGroups"]  # the first zone group's
    assert all(o["Type"] == "None" for o in others)
    assert [o["Name"] for o in group.get("Objects") or () if o["Type"] != "None"] == ["Affinity"]
    assert not [t for t in group.get("Tasks") or () if t["Type"] != "None"]


def test_a_change_made_by_hand_is_drift_that_submit_converges_back(cluster, tmp_path):
    manifest = manifest_copy(tmp_path, {"app": {}})
    assert cli(cluster, "submit", str(manifest)).exit_code == 0
    nomad, _ = backends(cluster)
    job = nomad.job("app")
    job["TaskGroups"][0]["Count"] = 2  # app-zone-a
    settled(cluster, nomad, nomad.register(job, job["JobModifyIndex"]))
    res = cli(cluster, "plan", str(manifest))
    assert res.exit_code == 1 and "~ job app" in res.stdout
    assert 'group app-zone-a / Count: "2" => "1"' in res.stdout, res.stdout
    res = cli(cluster, "submit", str(manifest))
    assert res.exit_code == 0, res.output
    assert [g["Count"] for g in nomad.job("app")["TaskGroups"]] == [1, 1, 1]
    assert len(_live_ids(nomad, "app")) == 3
    assert cli(cluster, "plan", str(manifest)).exit_code == 0


def test_plan_shows_what_a_job_level_change_does_to_an_unchanged_group():
    """Only job meta differs: the group's own diff is empty, yet Nomad replaces its allocations.
    The plan says so (as `nomad job plan` does); a group that only keeps its allocations
    stays quiet."""
    dry_run = {
        "Diff": {
            "Type": "Edited",
            "Fields": [{"Type": "Deleted", "Name": "Meta[x]", "Old": "1", "New": ""}],
            "TaskGroups": [
                {"Type": "None", "Name": "q", "Updates": {"create/destroy update": 1, "ignore": 3}},
                {"Type": "None", "Name": "r", "Updates": {"ignore": 2}},
            ],
        }
    }
    lines = diff_summary(dry_run)
    assert "  group q (1 create/destroy update, 3 ignore)" in lines
    assert not any("group r" in line for line in lines)


def test_a_blocked_evaluation_a_later_one_replaced_is_not_a_failure():
    """Nomad stops tracking a blocked evaluation once a later one placed everything, but leaves
    its status "blocked": only a blocked evaluation newer than that counts."""
    from nomadgen.converge import _blocked

    failed = {"web": {"ConstraintFiltered": {"distinct_property": 1}, "CoalescedFailures": 0}}
    evals = [
        {"ID": "a", "Status": "complete", "CreateIndex": 10, "FailedTGAllocs": failed},
        {"ID": "b", "Status": "blocked", "CreateIndex": 11, "PreviousEval": "a"},
        {"ID": "c", "Status": "complete", "CreateIndex": 14, "FailedTGAllocs": None},
    ]
    nomad = SimpleNamespace(evaluations=lambda job: evals)
    assert _blocked(nomad, "web") == []
    evals[2]["CreateIndex"] = 9  # known-bad: the placing evaluation came before the blocked one
    assert _blocked(nomad, "web") and "distinct_property" in _blocked(nomad, "web")[0]
