"""Data of stateful sets through changes and node events, for each storage mode, on the stand-in
(whose allocations carry data as Nomad's clients do: dev/standin/nomad_standin/data.py). A marker is written into
every instance's data first; afterwards the plan's prediction (kept / lost / new per instance) and
`status`' account (continued / started empty) must both equal what the stand-in shows."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from nomadgen import data
from nomadgen.backends import connect
from nomadgen.cli import app
from nomadgen.converge import apply
from nomadgen.errors import DataLoss, Unplaceable
from nomadgen.operations import prepare, refuse_data_loss, status
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

JOB = "psql-app"
ZONES = ("zone-a", "zone-b", "zone-c")
FIRST = "psql-app.psql-zone-a[0]"  # instance 0 of zone-a: a stateful set has a group per zone
SECOND = "psql-app.psql-zone-b[0]"


def manifest(tmp_path, mode: str, **psql) -> str:
    doc = {
        "app": {"depends": ["psql"], "overrides": {"psql": {"state": {"storage": mode}, **psql}}}
    }
    path = tmp_path / "dockland.json"
    path.write_text(json.dumps(doc, indent=2))
    return str(path)


class Cluster:
    def __init__(self, standin_factory, mode: str) -> None:
        self.s = standin_factory(nodes_per_zone=2)
        if mode == "host":
            for node in self.s.nomad.nodes:
                self.s.nomad.add_host_volume(node["Name"], JOB)
        if mode == "csi":
            for zone in ZONES:  # per_alloc, one source per zone's group: psql-app-zone-a[N]
                for i in range(2):
                    self.s.nomad.create_csi_volume(f"{JOB}-{zone}[{i}]")
        self.cfg = load_config(env={})
        self.nomad, self.consul = connect(
            nomad_endpoint(address=self.s.nomad_addr, env={}),
            consul_endpoint(address=self.s.consul_addr, env={}),
        )

    def prepare(self, path: str):
        return prepare(path, self.cfg, self.nomad, self.consul, name="dockland")

    def push(self, path: str, allow_data_loss: bool = False):
        prep = self.prepare(path)
        if not allow_data_loss:
            refuse_data_loss(prep)
        apply(prep.changes, self.nomad, self.consul, self.cfg.render, timeout=60)
        return prep

    def running(self) -> dict[str, dict]:
        """Name -> the stand-in's account of each running instance's data."""
        out = {}
        for a in self.nomad.allocations(JOB):
            if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running":
                out[a["Name"]] = self.s.nomad.data_read(a["ID"])
        return out

    def mark(self) -> dict[str, str]:
        marks = {}
        for name, d in self.running().items():
            self.s.nomad.data_write(d["AllocID"], "marker", f"written-in-{d['AllocID']}")
            marks[name] = f"written-in-{d['AllocID']}"
        return marks

    def settle(self, count: int) -> dict[str, dict]:
        """Wait until `count` instances run and none is pending."""

        def done():
            allocs = [a for a in self.nomad.allocations(JOB) if a["DesiredStatus"] == "run"]
            return len(allocs) == count and all(a["ClientStatus"] == "running" for a in allocs)

        self.s.wait_for(done, timeout=30)
        return self.running()

    def status_of_instances(self) -> dict[str, str]:
        rows, _ = status("dockland", self.cfg, self.nomad, self.consul)
        (row,) = [r for r in rows if r.job == JOB]
        return {d.name: d.outcome for d in row.data}, row.drift


def truth(before: dict[str, str], after: dict[str, dict]) -> Counter:
    """kept / lost / new per instance, from the markers the stand-in carried (or not)."""
    out = Counter()
    for name, d in after.items():
        if name not in before:
            out[data.NEW] += 1
        elif d["Markers"].get("marker") == before[name]:
            out[data.KEPT] += 1
        else:
            out[data.LOST] += 1
    return out


def predicted(prep) -> Counter:
    out = Counter()
    for d in prep.data:
        out[d.outcome] += d.instances
    return out


def status_matches_truth(c: Cluster, before: dict[str, str], after: dict[str, dict]) -> None:
    """continued: a replacement carried the data; new: the instance's own first allocation;
    started empty: a replacement without the data."""
    outcomes, drift = c.status_of_instances()
    for name, d in after.items():
        if name not in before or before[name] == f"written-in-{d['AllocID']}":
            expect = data.FRESH  # scaled up, or never replaced
        elif d["Markers"].get("marker") == before[name]:
            expect = data.CONTINUED
        else:
            expect = data.STARTED_EMPTY
        assert outcomes[name] == expect, (name, outcomes, d)
    if data.STARTED_EMPTY in outcomes.values():
        assert drift.startswith("data lost"), drift
    else:
        assert drift == "in sync", drift


MODES = ["ephemeral", "host", "csi"]
CHANGES = {
    "image": {"image": "postgres:16.4-alpine"},
    "resources": {"resources": {"cpu": 500, "memory": 1024}},
    "scale": {"per_zone": 2},
}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("mode", MODES)
def test_a_change_keeps_data_as_planned(standin_factory, tmp_path, mode, change):
    c = Cluster(standin_factory, mode)
    c.push(manifest(tmp_path, mode))
    before = c.mark()
    assert len(before) == 3
    path = manifest(tmp_path, mode, **CHANGES[change])
    prep = c.push(path)  # refuses (DataLoss) if it predicted a loss: none here
    after = c.settle(6 if change == "scale" else 3)
    got = truth(before, after)
    assert predicted(prep) == got, (prep.data, got)
    assert got[data.KEPT] == 3 and not got[data.LOST]
    if change == "scale":
        # One group per zone: the count change updates each group in place (the same
        # allocations keep running, markers and all) and places one new instance per zone,
        # reported as new, never as lost.
        assert got[data.NEW] == 3
        assert all(before[n] == f"written-in-{after[n]['AllocID']}" for n in before)
        assert sorted(after) == sorted(f"{JOB}.psql-{z}[{i}]" for z in ZONES for i in (0, 1))
        assert {after[f"{JOB}.psql-{z}[1]"]["NodeName"] for z in ZONES}.isdisjoint(
            {after[f"{JOB}.psql-{z}[0]"]["NodeName"] for z in ZONES}
        )  # distinct_hosts inside each zone
    status_matches_truth(c, before, after)


@pytest.mark.parametrize("mode", MODES)
def test_node_drain(standin_factory, tmp_path, mode):
    c = Cluster(standin_factory, mode)
    c.push(manifest(tmp_path, mode))
    before = c.mark()
    victim = c.running()[FIRST]["NodeName"]
    c.s.nomad.drain_node(victim)
    after = c.s.wait_for(
        lambda: (lambda r: r if len(r) == 3 and r[FIRST]["NodeName"] != victim else None)(
            c.running()
        ),
        timeout=30,
    )
    got = truth(before, after)
    # A drained instance's ephemeral disk migrates; a CSI volume follows it; a host volume does not.
    assert got == Counter({data.KEPT: 3} if mode != "host" else {data.KEPT: 2, data.LOST: 1})
    status_matches_truth(c, before, after)


@pytest.mark.parametrize("mode", MODES)
def test_node_loss(standin_factory, tmp_path, mode):
    c = Cluster(standin_factory, mode)
    c.push(manifest(tmp_path, mode))
    before = c.mark()
    victim = c.running()[SECOND]["NodeName"]
    c.s.nomad.drop_node(victim)
    after = c.s.wait_for(
        lambda: (lambda r: r if len(r) == 3 and r[SECOND]["NodeName"] != victim else None)(
            c.running()
        ),
        timeout=30,
    )
    got = truth(before, after)
    # A sticky disk does not survive its node; a host volume stays on it; a CSI volume follows.
    assert got == Counter({data.KEPT: 3} if mode == "csi" else {data.KEPT: 2, data.LOST: 1})
    status_matches_truth(c, before, after)


def fill_node(c: Cluster, node: str) -> None:
    """Another job's allocation that leaves 200 MB free on `node`: with psql's 512 MB freed,
    less than the 1024 MB of BIGGER."""
    node_id = next(n["ID"] for n in c.s.nomad.nodes if n["Name"] == node)
    room = c.nomad.node_room(node_id)
    assert room is not None
    memory_mb = room[1] - 200
    job = {
        "ID": f"filler-{node}",
        "Name": f"filler-{node}",
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [
            {
                "Name": "filler",
                "Count": 1,
                "Constraints": [
                    {"LTarget": "${attr.unique.hostname}", "Operand": "=", "RTarget": node}
                ],
                "Tasks": [
                    {
                        "Name": "filler",
                        "Driver": "docker",
                        "Config": {"image": "busybox:1.36"},
                        "Resources": {"CPU": 100, "MemoryMB": memory_mb},
                    }
                ],
            }
        ],
    }
    c.nomad.register(job, 0)
    c.s.wait_for(
        lambda: any(a["ClientStatus"] == "running" for a in c.nomad.allocations(job["ID"])),
        timeout=30,
    )


BIGGER = {"resources": {"cpu": 500, "memory": 1024}}


def test_a_host_volume_replacement_that_no_longer_fits_its_node_is_predicted_lost(
    standin_factory, tmp_path
):
    """More memory for psql, but zone-a's node has no room left for it: Nomad tries the previous
    node first, then places the replacement on the zone's other node, whose host volume does not
    hold this instance's data. Plan says lost for that instance, submit refuses, and with the
    flag the stand-in loses exactly that."""
    c = Cluster(standin_factory, "host")
    c.push(manifest(tmp_path, "host"))
    before = c.mark()
    node = c.running()[FIRST]["NodeName"]
    fill_node(c, node)
    path = manifest(tmp_path, "host", **BIGGER)
    prep = c.prepare(path)
    assert predicted(prep) == Counter({data.KEPT: 2, data.LOST: 1}), prep.data
    (lost,) = data.losses(prep.data)
    assert f"does not fit on {node}" in lost.how and "another node" in lost.how
    with pytest.raises(DataLoss):
        c.push(path)
    assert c.running().keys() == before.keys() and all(d["Markers"] for d in c.running().values())
    prep = c.push(path, allow_data_loss=True)
    after = c.s.wait_for(
        lambda: (lambda r: r if len(r) == 3 and r[FIRST]["NodeName"] != node else None)(
            c.running()
        ),
        timeout=60,
    )
    after = c.s.wait_for(  # the rolling update reaches the other zones too
        lambda: (
            lambda r: (
                r if all(r[n]["AllocID"] not in before[n] for n in before) and len(r) == 3 else None
            )
        )(c.running()),
        timeout=60,
    )
    got = truth(before, after)
    assert predicted(prep) == got == Counter({data.KEPT: 2, data.LOST: 1}), (prep.data, got)
    status_matches_truth(c, before, after)


def test_a_host_volume_replacement_with_no_room_anywhere_is_not_placed(standin_factory, tmp_path):
    """Both zone-a nodes full: the replacement fits nowhere that has the volume. Nomad keeps the
    old allocation (generic_sched.go backs the stop out of the plan) and reports the placement
    failure; submit writes nothing, even with the flag, and the data stays where it is."""
    c = Cluster(standin_factory, "host")
    c.push(manifest(tmp_path, "host"))
    before = c.mark()
    node = c.running()[FIRST]["NodeName"]
    fill_node(c, node)
    other = next(
        n["Name"] for n in c.s.nomad.nodes if n["Datacenter"] == "zone-a" and n["Name"] != node
    )
    fill_node(c, other)
    path = manifest(tmp_path, "host", **BIGGER)
    prep = c.prepare(path)
    (lost,) = data.losses(prep.data)
    assert "cannot place it" in lost.how
    with pytest.raises(Unplaceable, match="cannot place") as e:
        c.push(path, allow_data_loss=True)
    assert e.value.exit_code == 15
    after = c.running()
    assert truth(before, after) == Counter({data.KEPT: 3})
    assert after[FIRST]["NodeName"] == node


def test_started_empty_stays_flagged_until_a_submit_records_it(standin_factory, tmp_path):
    """The rule: an instance whose data started empty keeps its set out of sync until a
    successful submit records it (plan says it will); a later loss is flagged anew."""
    c = Cluster(standin_factory, "ephemeral")
    path = manifest(tmp_path, "ephemeral")
    c.push(path)
    victim = c.running()[SECOND]["NodeName"]
    c.s.nomad.drop_node(victim)
    c.s.wait_for(
        lambda: (lambda r: r if len(r) == 3 and r[SECOND]["NodeName"] != victim else None)(
            c.running()
        ),
        timeout=30,
    )
    outcomes, drift = c.status_of_instances()
    assert outcomes[SECOND] == data.STARTED_EMPTY and drift == f"data lost: {SECOND} started empty"
    again, _ = c.status_of_instances()
    assert again == outcomes  # reading status records nothing
    prep = c.prepare(path)
    (rec,) = [d for d in prep.data if d.outcome == data.RECORDED]
    assert rec.instances == 1 and SECOND in rec.how and not data.losses(prep.data)
    assert c.status_of_instances()[1].startswith("data lost")  # plan wrote nothing either
    c.push(path)  # no job changes: only the record is written
    rows, _ = status("dockland", c.cfg, c.nomad, c.consul)
    (row,) = [r for r in rows if r.job == JOB]
    (d,) = [d for d in row.data if d.name == SECOND]
    assert d.outcome == data.STARTED_EMPTY and d.acknowledged and row.drift == "in sync"
    assert not [d for d in c.prepare(path).data if d.outcome == data.RECORDED]
    # A second loss, of another instance, is flagged again: it started empty somewhere else.
    victim = c.running()[FIRST]["NodeName"]
    c.s.nomad.drop_node(victim)
    c.s.wait_for(
        lambda: (lambda r: r if len(r) == 3 and r[FIRST]["NodeName"] != victim else None)(
            c.running()
        ),
        timeout=30,
    )
    outcomes, drift = c.status_of_instances()
    assert drift == f"data lost: {FIRST} started empty", drift


def test_a_storage_change_is_refused_then_loses_exactly_what_plan_said(standin_factory, tmp_path):
    c = Cluster(standin_factory, "host")
    c.push(manifest(tmp_path, "ephemeral"))
    before = c.mark()
    path = manifest(tmp_path, "host")
    with pytest.raises(DataLoss) as e:
        c.push(path)
    assert e.value.exit_code == 14 and "psql:app" in e.value.subject
    assert "storage changes from ephemeral" in e.value.problems[0].message
    assert c.running().keys() == before.keys()  # nothing was written
    assert all(d["Markers"] for d in c.running().values())
    prep = c.push(path, allow_data_loss=True)
    after = c.settle(3)
    assert predicted(prep) == truth(before, after) == Counter({data.LOST: 3})
    status_matches_truth(c, before, after)


def one_group_job(c: Cluster, path: str) -> dict:
    """The job as nomadgen rendered a stateful set before it had one group per zone: one group,
    the zones enforced by distinct_property, a spread, CSI volumes psql-app[N]."""
    (job,) = [copy.deepcopy(j.api) for j in c.prepare(path).rendered.jobs if j.id == JOB]
    g = job["TaskGroups"][0]
    g.update(
        Name="psql",
        Count=3,
        Constraints=[
            {"LTarget": "${node.datacenter}", "Operand": "distinct_property", "RTarget": "1"}
        ],
        Spreads=[
            {
                "Attribute": "${node.datacenter}",
                "Weight": 100,
                "SpreadTarget": [{"Value": z, "Percent": 33} for z in ZONES],
            }
        ],
    )
    if "Volumes" in g and g["Volumes"]["data"].get("PerAlloc"):
        g["Volumes"] = {"data": {**g["Volumes"]["data"], "Source": JOB}}
    job["TaskGroups"] = [g]
    return job


@pytest.mark.parametrize("mode", ["ephemeral", "csi"])
def test_moving_to_one_group_per_zone_is_a_data_loss_plan_reports(standin_factory, tmp_path, mode):
    """A job still in the one-group form: its group goes away, so its instances stop and the
    new zone groups start empty. Plan says so, submit refuses without --allow-data-loss, and
    with it loses exactly what plan said."""
    c = Cluster(standin_factory, mode)
    for i in range(3):
        c.s.nomad.create_csi_volume(f"{JOB}[{i}]")
    path = manifest(tmp_path, mode)
    c.nomad.create_variable(f"nomad/jobs/{JOB}", {"password": "kept-secret"})
    c.nomad.register(one_group_job(c, path), 0)
    c.settle(3)
    before = c.mark()
    assert sorted(before) == [f"{JOB}.psql[{i}]" for i in range(3)]
    with pytest.raises(DataLoss) as e:
        c.push(path)
    assert e.value.exit_code == 14 and "group psql is removed" in e.value.problems[0].message
    assert c.running().keys() == before.keys()  # nothing was written
    prep = c.push(path, allow_data_loss=True)
    after = c.s.wait_for(
        lambda: (lambda r: r if sorted(r) == sorted(f"{JOB}.psql-{z}[0]" for z in ZONES) else None)(
            c.running()
        ),
        timeout=30,
    )
    assert not any(d["Markers"] for d in after.values())  # every new instance started empty
    assert predicted(prep) == Counter({data.LOST: 3})


def test_scaling_down_an_ephemeral_set_is_a_loss_but_not_for_csi(standin_factory, tmp_path):
    for mode in ("ephemeral", "csi"):
        c = Cluster(standin_factory, mode)
        c.push(manifest(tmp_path, mode, per_zone=2))
        c.mark()
        prep = c.prepare(manifest(tmp_path, mode))
        stops = [d for d in prep.data if "stopped" in d.how]
        assert sum(d.instances for d in stops) == 3
        assert {d.outcome for d in stops} == ({data.LOST} if mode == "ephemeral" else {data.KEPT})


def test_plan_and_submit_cli_show_the_data_and_the_flag(standin_factory, tmp_path):
    c = Cluster(standin_factory, "host")
    c.push(manifest(tmp_path, "ephemeral"))
    env = c.s.env()
    safe = manifest(tmp_path, "ephemeral", image="postgres:16.4-alpine")
    res = CliRunner().invoke(app, ["plan", safe], env=env)
    assert res.exit_code == 1, res.output
    assert "psql:app (ephemeral): kept, 3 instance(s)" in res.output
    res = CliRunner().invoke(app, ["plan", safe, "--json"], env=env)
    doc = json.loads(res.stdout)
    assert [(d["set"], d["outcome"], d["instances"]) for d in doc["data"]] == [
        ("psql:app", "kept", 3)
    ]
    risky = manifest(tmp_path, "host")
    res = CliRunner().invoke(app, ["plan", risky], env=env)
    assert (
        "psql:app (host): LOST, 3 instance(s)" in res.output and "--allow-data-loss" in res.output
    )
    res = CliRunner().invoke(app, ["submit", risky], env=env)
    assert res.exit_code == 14 and "psql:app" in res.output and "--allow-data-loss" in res.output
    res = CliRunner().invoke(app, ["status", risky, "--json"], env=env)
    rows = {r["set"]: r for r in json.loads(res.stdout)}
    assert [d["outcome"] for d in rows["psql:app"]["data"]] == ["new"] * 3
    # submit refused the risky manifest: the live job differs from it, and status says so
    assert rows["psql:app"]["drift"].startswith("differs from the manifest"), rows["psql:app"]
    assert res.exit_code == 17


def test_missing_volumes_are_placement_failures_nothing_written(standin_factory, tmp_path):
    """Known-bad for the volume modes: without the operator's volumes nothing can be placed."""
    c = Cluster(standin_factory, "ephemeral")  # no host volumes, no CSI volumes
    for mode, reason in (
        ("host", "missing compatible host volumes"),
        ("csi", "missing CSI Volume psql-app-zone-"),
    ):
        prep = c.prepare(manifest(tmp_path, mode))
        with pytest.raises(Unplaceable) as e:
            apply(prep.changes, c.nomad, c.consul, c.cfg.render, timeout=60)
        assert reason in str(e.value.problems[0]), e.value.problems
        assert JOB not in c.nomad.jobs()
