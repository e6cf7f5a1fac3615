"""Data of stateful sets through changes and node events, for each storage mode, on the stand-in
(whose allocations carry data as Nomad's clients do: dev/standin/nomad_standin/data.py). A marker is written into
every instance's data first; afterwards the plan's prediction (kept / lost / new per instance) and
`status`' account (continued / started empty) must both equal what the stand-in shows."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from nomadgen import data
from nomadgen.backends import connect
from nomadgen.cli import app
from nomadgen.converge import apply
from nomadgen.errors import DataLoss, ResolutionError
from nomadgen.operations import prepare, refuse_data_loss, status
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

JOB = "psql-app"


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
            for i in range(6):
                self.s.nomad.create_csi_volume(f"{JOB}[{i}]")
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
    if change == "scale":
        # A count change is an in-place update now (no per-change hash in job meta). Nomad's
        # scheduler (1.5.8's own via nomad-sched, and the stand-in's engine for CSI) then counts
        # each in-place updated allocation twice for distinct_property (state and plan,
        # scheduler/propertyset.go), so the new instances of a per-zone set cannot be placed:
        # plan says so and submit writes nothing; the data stays where it is.
        with pytest.raises(
            ResolutionError, match="cannot place this manifest; nothing was written"
        ):
            c.push(path)
        after = c.settle(3)
        assert truth(before, after)[data.KEPT] == 3
        return
    prep = c.push(path)  # refuses (DataLoss) if it predicted a loss: none here
    after = c.settle(3)
    got = truth(before, after)
    assert predicted(prep) == got, (prep.data, got)
    assert got[data.KEPT] == 3 and not got[data.LOST]
    status_matches_truth(c, before, after)


@pytest.mark.parametrize("mode", MODES)
def test_node_drain(standin_factory, tmp_path, mode):
    c = Cluster(standin_factory, mode)
    c.push(manifest(tmp_path, mode))
    before = c.mark()
    victim = c.running()["psql-app.psql[0]"]["NodeName"]
    c.s.nomad.drain_node(victim)
    after = c.s.wait_for(
        lambda: (
            lambda r: r if len(r) == 3 and r["psql-app.psql[0]"]["NodeName"] != victim else None
        )(c.running()),
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
    victim = c.running()["psql-app.psql[1]"]["NodeName"]
    c.s.nomad.drop_node(victim)
    after = c.s.wait_for(
        lambda: (
            lambda r: r if len(r) == 3 and r["psql-app.psql[1]"]["NodeName"] != victim else None
        )(c.running()),
        timeout=30,
    )
    got = truth(before, after)
    # A sticky disk does not survive its node; a host volume stays on it; a CSI volume follows.
    assert got == Counter({data.KEPT: 3} if mode == "csi" else {data.KEPT: 2, data.LOST: 1})
    status_matches_truth(c, before, after)


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
    assert rows["psql:app"]["drift"] == "in sync"


def test_missing_volumes_are_placement_failures_nothing_written(standin_factory, tmp_path):
    """Known-bad for the volume modes: without the operator's volumes nothing can be placed."""
    from nomadgen.errors import ResolutionError

    c = Cluster(standin_factory, "ephemeral")  # no host volumes, no CSI volumes
    for mode, reason in (
        ("host", "missing compatible host volumes"),
        ("csi", "missing CSI Volume psql-app["),
    ):
        prep = c.prepare(manifest(tmp_path, mode))
        with pytest.raises(ResolutionError) as e:
            apply(prep.changes, c.nomad, c.consul, c.cfg.render, timeout=60)
        assert reason in str(e.value.problems[0]), e.value.problems
        assert JOB not in c.nomad.jobs()
