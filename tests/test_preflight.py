"""The whole-manifest preflight (issue 8.2): pure cases, nodes and allocations as Nomad's API
returns them, jobs as nomadgen renders them."""

from __future__ import annotations

import json
from pathlib import Path

from nomadgen.catalog import Catalog
from nomadgen.manifest import parse
from nomadgen.preflight import check, parse_ports, problems, satisfies
from nomadgen.render import render
from nomadgen.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
ZONES = ("zone-a", "zone-b", "zone-c")


def node(name, dc, cpu=4000, memory=8192, disk=100_000, **extra):
    return {
        "ID": f"id-{name}",
        "Name": name,
        "Datacenter": dc,
        "NodeClass": extra.pop("NodeClass", ""),
        "Meta": extra.pop("Meta", {}),
        "Attributes": {"unique.hostname": name},
        "Status": "ready",
        "SchedulingEligibility": "eligible",
        "DrainStrategy": None,
        "NodeResources": {
            "Cpu": {"CpuShares": cpu},
            "Memory": {"MemoryMB": memory},
            "Disk": {"DiskMB": disk},
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": extra.pop("reserved_cpu", 0)},
            "Memory": {"MemoryMB": extra.pop("reserved_memory", 0)},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": extra.pop("reserved_ports", "")},
        },
        **extra,
    }


def alloc(job, on, cpu, memory, ports=(), client="running", desired="run", ns="default"):
    return {
        "ID": f"{job}-{on}",
        "JobID": job,
        "Namespace": ns,
        "NodeID": f"id-{on}",
        "DesiredStatus": desired,
        "ClientStatus": client,
        "AllocatedResources": {
            "Tasks": {"t": {"Cpu": {"CpuShares": cpu}, "Memory": {"MemoryMB": memory}}},
            "Shared": {
                "DiskMB": 300,
                "Ports": [{"Label": "p", "Value": p} for p in ports] or None,
            },
        },
    }


def rendered(doc=None, zones=ZONES):
    text = json.dumps(doc) if doc is not None else (ROOT / "examples/dockland.json").read_text()
    plan = resolve(parse(text, "m.json", "dockland"), Catalog(), zones)
    return [j.api for j in render(plan)]


def job(jid, count=3, cpu=100, memory=128, *, per_zone=1, zones=ZONES, ports=(), **group_extra):
    group = {
        "Name": jid,
        "Count": count,
        "Constraints": [
            {
                "LTarget": "${node.datacenter}",
                "Operand": "distinct_property",
                "RTarget": str(per_zone),
            }
        ]
        + group_extra.pop("Constraints", []),
        "Spreads": [
            {
                "Attribute": "${node.datacenter}",
                "Weight": 100,
                "SpreadTarget": [{"Value": z, "Percent": 33} for z in zones],
            }
        ],
        "Tasks": [{"Name": jid, "Driver": "docker", "Resources": {"CPU": cpu, "MemoryMB": memory}}]
        + group_extra.pop("Tasks", []),
        **group_extra,
    }
    if ports:
        group["Networks"] = [
            {"Mode": "host", "ReservedPorts": [{"Label": f"p{p}", "Value": p} for p in ports]}
        ]
    return {
        "ID": jid,
        "Datacenters": list(zones),
        "Meta": {"nomadgen_set": jid},
        "TaskGroups": [group],
    }


def three(**kw):
    return [node(f"n-{z}", z, **kw) for z in ZONES]


def test_the_seed_fits_three_ordinary_nodes():
    assert check(rendered(), three(), []) == []


def test_exactly_full_fits_and_one_mhz_more_does_not():
    # The seed asks 1500 MHz, 1600 MB and 2948 MB of disk per zone (sidecars included).
    assert check(rendered(), three(cpu=1500, memory=1600, disk=2948), []) == []
    short = check(rendered(), three(cpu=1499, memory=1600, disk=2948), [])
    assert {s.reason for s in short} == {"cpu"}
    assert sum(s.missing for s in short) == 3  # one instance in each zone
    short = check(rendered(), three(cpu=1500, memory=1599, disk=2948), [])
    assert {s.reason for s in short} == {"memory"}
    short = check(rendered(), three(cpu=1500, memory=1600, disk=2947), [])
    assert {s.reason for s in short} == {"disk"}


def test_cpu_short_in_one_zone_names_the_set_the_zone_and_the_numbers():
    nodes = [node("a", "zone-a"), node("b", "zone-b", cpu=1200), node("c", "zone-c")]
    short = check(rendered(), nodes, [])
    # In submit order app, blog and psql:app take 900 MHz of zone-b; psql:blog's 500 is left out.
    # psql:blog keeps data: one group per zone, so "wanted" is zone-b's group's count.
    assert [(s.set, s.group, s.zone, s.reason, s.missing, s.wanted) for s in short] == [
        ("psql:blog", "psql-zone-b", "zone-b", "cpu", 1, 1)
    ]
    (p,) = problems(short)
    assert p.message.startswith("psql:blog: 1 of 1 instance(s) cannot be placed in zone-b: ")
    assert "needs 500 MHz, the most free on one node is 300 MHz" in p.message
    assert "zone-b" in p.hint


def test_running_allocations_of_other_jobs_use_the_room_and_replaced_ones_free_it():
    nodes = three(cpu=2000)
    others = [alloc("other", "n-zone-b", 600, 100)]
    short = check(rendered(), nodes, others)
    assert [(s.zone, s.reason) for s in short] == [("zone-b", "cpu")]
    # The same allocation belongs to a job this push replaces: its room is free.
    assert check(rendered(), nodes, others, replaced=[("default", "other")]) == []
    # Stopped or finished allocations hold nothing (structs.Allocation.TerminalStatus).
    done = [alloc("other", "n-zone-b", 600, 100, client="complete")]
    assert check(rendered(), nodes, done) == []
    assert check(rendered(), nodes, [alloc("other", "n-zone-b", 600, 100, desired="stop")]) == []
    # Another namespace's job of the same ID is not the one replaced.
    other_ns = [alloc("other", "n-zone-b", 600, 100, ns="team")]
    assert check(rendered(), nodes, other_ns, replaced=[("default", "other")]) != []


def test_reserved_resources_count_as_used():
    assert check(rendered(), three(cpu=2000, reserved_cpu=500), []) == []
    short = check(rendered(), three(cpu=2000, reserved_cpu=501), [])
    assert {s.reason for s in short} == {"cpu"}


def test_memory_short_summed_over_the_jobs():
    jobs = [job("a", memory=3000), job("b", memory=3000), job("c", memory=3000)]
    short = check(jobs, three(memory=8192), [])
    # One problem per zone: each of the three zones is short of one instance of c.
    assert [(s.set, s.zone, s.reason, s.missing) for s in short] == [
        ("c", z, "memory", 1) for z in ZONES
    ]
    (p, *_) = problems(short)
    assert "memory exhausted" in p.message and "3000 MB" in p.message


def test_static_port_collision():
    jobs = [job("web", ports=(8080,))]
    assert check(jobs, three(), []) == []
    taken = [alloc("other", "n-zone-c", 100, 100, ports=(8080,))]
    short = check(jobs, three(), taken)
    assert [(s.zone, s.reason) for s in short] == [
        ("zone-c", "network: reserved port collision 8080")
    ]
    assert "static port 8080" in problems(short)[0].message
    # A port the node reserves collides just the same, and two jobs of one push collide too.
    reserved = [node("a", "zone-a", reserved_ports="22,8000-8100"), *three()[1:]]
    assert [s.zone for s in check(jobs, reserved, [])] == ["zone-a"]
    both = check([job("web", ports=(8080,)), job("api", ports=(8080,))], three(), [])
    assert [(s.set, s.zone, s.missing) for s in both] == [("api", z, 1) for z in ZONES]


def test_too_few_nodes_for_distinct_hosts():
    hosts = [{"Operand": "distinct_hosts", "RTarget": "true"}]
    db = job("db", count=6, per_zone=2, Constraints=hosts)
    nodes = three() + [node("a2", "zone-a"), node("b2", "zone-b"), node("c2", "zone-c")]
    assert check([db], nodes, []) == []
    short = check([db], nodes[:5], [])  # zone-c has one node for two instances
    assert [(s.zone, s.reason, s.missing) for s in short] == [("zone-c", "distinct_hosts", 1)]
    assert "distinct_hosts" in problems(short)[0].message


def test_per_zone_count_beyond_the_zones():
    short = check([job("web", count=4)], three(), [])
    assert [(s.zone, s.reason, s.missing) for s in short] == [("", "distinct_property", 1)]


def test_drained_ineligible_and_down_nodes_are_ignored():
    for change in (
        {"DrainStrategy": {"Deadline": 3600}},
        {"SchedulingEligibility": "ineligible"},
        {"Status": "down"},
    ):
        nodes = [node("a", "zone-a"), node("b", "zone-b", **change), node("c", "zone-c")]
        short = check(rendered(), nodes, [])
        assert {(s.zone, s.reason) for s in short} == {("zone-b", "no ready, eligible node")}
        assert "ready and eligible" in problems(short)[0].hint
        # A second, usable node in the zone takes the instances.
        assert check(rendered(), [*nodes, node("b2", "zone-b")], []) == []


def test_node_local_set_lands_with_its_dependent():
    # app's group carries memcache as a sidecar: 100 + 100 MHz on app's node, not elsewhere.
    app = [j for j in rendered() if j["ID"] == "app"]
    assert [t["Name"] for t in app[0]["TaskGroups"][0]["Tasks"]] == ["app", "memcache-app"]
    assert check(app, three(cpu=200), []) == []
    short = check(app, three(cpu=199), [])
    assert {s.reason for s in short} == {"cpu"}
    assert "needs 200 MHz" in problems(short)[0].message


def test_constraints_datacenters_and_pools():
    zoned = [node(f"n-{z}", "dc1", Meta={"zone": z}) for z in ZONES]
    jobs = rendered()
    # Zones by meta, datacenter dc1: the rendered jobs list the zones as datacenters.
    for j in jobs:
        j["Datacenters"] = ["*"]
        for g in j["TaskGroups"]:  # a stateful set has one group per zone, pinned, no spread
            for c in g["Constraints"]:
                if c.get("LTarget") == "${node.datacenter}":
                    c["LTarget"] = "${meta.zone}"
            for s in g.get("Spreads") or ():
                s["Attribute"] = "${meta.zone}"
    assert check(jobs, zoned, [], zone_attribute="${meta.zone}") == []
    classy = job(
        "web", Constraints=[{"LTarget": "${node.class}", "Operand": "=", "RTarget": "web"}]
    )
    short = check([classy], three(), [])
    assert {s.reason for s in short} == {"constraint"}
    assert check([classy], three(NodeClass="web"), []) == []
    pooled = dict(job("web"), NodePool="gpu")
    assert {s.reason for s in check([pooled], three(NodePool="default"), [])} == {"constraint"}
    assert check([pooled], three(NodePool="gpu"), []) == []


def test_constraint_operators_as_nomad_checks_them():
    n = node("a", "zone-a", Meta={"tags": "ssd, fast", "rack": "r2"})
    ok = [
        ("${meta.rack}", "=", "r2"),
        ("${meta.rack}", "!=", "r1"),
        ("${meta.missing}", "!=", "r1"),
        ("${meta.rack}", "regexp", "^r[0-9]$"),
        ("${meta.tags}", "set_contains", "ssd"),
        ("${meta.tags}", "set_contains_any", "hdd,fast"),
        ("${meta.rack}", "is_set", ""),
        ("${meta.missing}", "is_not_set", ""),
        ("${meta.rack}", ">", "r1"),
    ]
    bad = [
        ("${meta.rack}", "=", "r1"),
        ("${meta.missing}", "=", ""),
        ("${meta.tags}", "set_contains_all", "ssd,hdd"),
        ("${meta.rack}", "<", "r1"),
        ("${meta.missing}", "is_set", ""),
    ]
    for left, op, right in ok:
        assert satisfies({"LTarget": left, "Operand": op, "RTarget": right}, n), (left, op)
    for left, op, right in bad:
        assert not satisfies({"LTarget": left, "Operand": op, "RTarget": right}, n), (left, op)


def test_reserved_host_ports_are_parsed_like_nomad():
    assert parse_ports("22, 80,8000-8002") == {22, 80, 8000, 8001, 8002}
    assert parse_ports("") == set()


# --- Against the stand-in: plan shows it, submit stops before any write -------------------------


def test_plan_shows_and_submit_refuses_what_does_not_fit_with_nothing_written(cluster):
    from tests.test_converge import HOG, settled
    from tests.test_e2e import SEED, backends, cli

    nomad, consul = backends(cluster)
    hog = dict(HOG, TaskGroups=[dict(HOG["TaskGroups"][0], Count=1)])
    hog["TaskGroups"][0]["Tasks"] = [
        dict(hog["TaskGroups"][0]["Tasks"][0], Resources={"CPU": 3000, "MemoryMB": 64})
    ]
    settled(cluster, nomad, nomad.register(hog, 0))  # 3000 of one node's 4000 MHz taken
    (busy,) = [a for a in nomad.allocations("hog") if a["DesiredStatus"] == "run"]
    zone = next(
        n.meta.get("zone") or n.datacenter for n in nomad.nodes(True) if n.id == busy["NodeID"]
    )

    res = cli(cluster, "plan", str(SEED))
    assert res.exit_code == 1, res.output  # changes, as `nomad job plan` says with failures
    assert "Does not fit the cluster (submit stops here, exit 15):" in res.stdout
    assert f"cannot be placed in {zone}: cpu exhausted" in res.stdout
    res = cli(cluster, "plan", str(SEED), "--json")
    short = json.loads(res.stdout)["preflight"]
    assert short and {(s["zone"], s["reason"]) for s in short} == {(zone, "cpu")}
    assert all(s["message"] and s["hint"] for s in short)

    res = cli(cluster, "submit", str(SEED))
    assert res.exit_code == 15, res.output
    assert "the manifest does not fit the cluster" in res.stderr
    assert f"in {zone}: cpu exhausted" in res.stderr and "nothing was written" in res.stderr
    assert set(nomad.jobs()) == {"hog"}  # no job, no key, no lock, no credentials
    assert consul.kv_tree("nomadgen") == {}
    assert not nomad.variable_exists("nomad/jobs/psql-app")

    # Room made: the same submit goes through.
    nomad.stop("hog", purge=True)
    cluster.standin.wait_for(
        lambda: (
            not [
                a
                for a in nomad.cluster_allocations()
                if a["JobID"] == "hog"
                and a["DesiredStatus"] == "run"
                and a["ClientStatus"] in ("pending", "running")
            ]
        )
    )
    res = cli(cluster, "submit", str(SEED))
    assert res.exit_code == 0, res.output
