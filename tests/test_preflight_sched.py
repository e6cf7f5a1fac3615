"""The preflight against Nomad's own scheduler (issue 16, point 3).

For each node layout and set of jobs (rendered manifests, and hand-made jobs for static ports
and distinct_hosts), the preflight's verdict is compared with nomad-sched (Nomad 1.5.8's
scheduler) placing the same jobs, one after the other, on the same nodes: what a job placed
is reserved on its nodes before the next job, as a cluster's running allocations would be.
A manifest the preflight accepts places fully there; one it refuses fails there for the same
jobs and groups, by the same number of instances, with the same dimension or constraint.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir
from nomad_standin import nomadsched

from nomadgen.catalog import Catalog
from nomadgen.manifest import parse
from nomadgen.model import RenderSettings
from nomadgen.preflight import DEFAULT_DISK_MB, NO_NODE, PORT, check
from nomadgen.render import render
from nomadgen.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
ZONES = ("zone-a", "zone-b", "zone-c")
BINARY = nomadsched.binary()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason=f"nomad-sched not found at {shared_dir() / nomadsched.TOOL} (set NOMADGEN_SHARED)",
)


def snode(i, zone, cpu=4000, memory=8192, disk=100_000, **extra):
    """A node as structs.Node JSON: what the API returns, and what nomad-sched takes."""
    ip = f"10.0.0.{i + 1}"
    drain = extra.pop("drain", False)
    return {
        "ID": f"00000000-0000-4000-8000-{i:012d}",
        "Name": f"node-{i}",
        "Datacenter": zone,
        "NodeClass": "",
        "Meta": {},
        "Status": extra.pop("Status", "ready"),
        "SchedulingEligibility": "ineligible" if drain else extra.pop("eligibility", "eligible"),
        "DrainStrategy": {"Deadline": 3600 * 10**9, "IgnoreSystemJobs": False} if drain else None,
        "NodeResources": {
            "Cpu": {"CpuShares": cpu},
            "Memory": {"MemoryMB": memory},
            "Disk": {"DiskMB": disk},
            "Networks": [
                {"Mode": "host", "Device": "eth0", "CIDR": f"{ip}/32", "IP": ip, "MBits": 1000}
            ],
            "NodeNetworks": [
                {
                    "Mode": "host",
                    "Device": "eth0",
                    "Speed": 1000,
                    "Addresses": [{"Alias": "default", "Address": ip, "Family": "ipv4"}],
                }
            ],
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": extra.pop("reserved_cpu", 0)},
            "Memory": {"MemoryMB": 0},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": ""},
        },
    }


def meta_layout(**kw):
    """Zones by node meta, every node in one datacenter."""
    out = []
    for i, z in enumerate(ZONES):
        n = snode(i, "dc1", **kw)
        n["Meta"] = {"zone": z}
        out.append(n)
    return out


def layout(per_zone=1, **kw):
    return [snode(i, z, **kw) for i, z in enumerate(z for z in ZONES for _ in range(per_zone))]


def seed(settings=RenderSettings()):
    text = (ROOT / "examples/dockland.json").read_text()
    plan = resolve(parse(text, "m.json", "dockland"), Catalog(), ZONES)
    return [j.api for j in render(plan, settings)]


def meta_seed():
    return seed(RenderSettings(zone_attribute="${meta.zone}"))


def classy(jid="web"):
    job = hand(jid)
    job["TaskGroups"][0]["Constraints"].append(
        {"LTarget": "${node.class}", "Operand": "=", "RTarget": "web"}
    )
    return [job]


def with_class(nodes, *indexes):
    for i in indexes:
        nodes[i]["NodeClass"] = "web"
    return nodes


def hand(jid, count=3, cpu=100, memory=128, per_zone=1, ports=(), hosts=False):
    constraints = [
        {"LTarget": "${node.datacenter}", "Operand": "distinct_property", "RTarget": str(per_zone)}
    ]
    if hosts:
        constraints.append({"Operand": "distinct_hosts", "RTarget": "true"})
    group = {
        "Name": jid,
        "Count": count,
        "Constraints": constraints,
        "Spreads": [
            {
                "Attribute": "${node.datacenter}",
                "Weight": 100,
                "SpreadTarget": [{"Value": z, "Percent": 33} for z in ZONES],
            }
        ],
        "Tasks": [
            {
                "Name": jid,
                "Driver": "docker",
                "Config": {"image": "nginx:1.27"},
                "Resources": {"CPU": cpu, "MemoryMB": memory},
            }
        ],
    }
    if ports:
        group["Networks"] = [
            {"Mode": "host", "ReservedPorts": [{"Label": f"p{p}", "Value": p} for p in ports]}
        ]
    return {
        "ID": jid,
        "Name": jid,
        "Type": "service",
        "Datacenters": list(ZONES),
        "Meta": {"nomadgen_set": jid},
        "TaskGroups": [group],
    }


def _demand(group):
    cpu = sum((t.get("Resources") or {}).get("CPU", 100) for t in group["Tasks"])
    mem = sum((t.get("Resources") or {}).get("MemoryMB", 300) for t in group["Tasks"])
    disk = (group.get("EphemeralDisk") or {}).get("SizeMB", DEFAULT_DISK_MB)
    ports = [p["Value"] for n in group.get("Networks") or () for p in n.get("ReservedPorts") or ()]
    return cpu, mem, disk, ports


def scheduled(jobs, nodes):
    """nomad-sched places the jobs one after the other; each placement is reserved on its node
    for the jobs after it. Per (job, group): instances placed, and the failed AllocMetric."""
    nodes = copy.deepcopy(nodes)
    by_id = {n["ID"]: n for n in nodes}
    out = {}
    for job in jobs:
        run = nomadsched.run(BINARY, {"nodes": nodes, "job": {"Job": job}})["run"]
        for group in job["TaskGroups"]:
            tg = run["task_groups"][group["Name"]]
            cpu, mem, disk, ports = _demand(group)
            for a in tg["placed"]:
                res = by_id[a["node_id"]]["ReservedResources"]
                res["Cpu"]["CpuShares"] += cpu
                res["Memory"]["MemoryMB"] += mem
                res["Disk"]["DiskMB"] += disk
                have = [x for x in res["Networks"]["ReservedHostPorts"].split(",") if x]
                res["Networks"]["ReservedHostPorts"] = ",".join(have + [str(p) for p in ports])
            out[(job["ID"], group["Name"])] = (len(tg["placed"]), tg.get("failed_tg_allocs"))
    return out


def nomads_reasons(metric) -> set[str]:
    out = set(metric.get("DimensionExhausted") or {})
    for key in metric.get("ConstraintFiltered") or {}:
        if key == "distinct_hosts":
            out.add("distinct_hosts")
        elif key.startswith("distinct_property"):
            out.add("distinct_property")
        else:
            out.add("constraint")
    if metric.get("ClassFiltered"):
        out.add("constraint")
    return out


def agrees(reason: str, zone: str, metric: dict) -> bool:
    """The preflight's reason is one Nomad's AllocMetric names."""
    seen = nomads_reasons(metric)
    if reason.startswith(PORT):
        port = reason.rsplit(" ", 1)[1]
        if any(r.startswith("network: reserved port collision") for r in seen):
            return any(r.endswith(f"={port}") for r in seen)
        # The harness runs a failed service placement a second time with preemption on (a
        # server has it off, nomad/config.go); in that pass a port collision goes to the
        # preemptor and leaves no metric (scheduler/rank.go, BinPackIterator: `if !iter.evict`).
        # What remains: every node was evaluated and none was filtered or exhausted for
        # another reason. "static ports apart" shows the port is what decides.
        return not seen and metric.get("NodesEvaluated", 0) > 0
    if reason == NO_NODE:
        # Nomad does not evaluate nodes that are not ready, eligible and undrained: the zone
        # has none available, and the other zones' nodes are full by the zone cap, or filtered
        # by the zone constraint of a group pinned to that zone (a stateful set's zone group).
        return (metric.get("NodesAvailable") or {}).get(zone, 0) == 0 and seen <= {
            "distinct_property",
            "constraint",
        }
    return reason in seen


CASES = {
    # name: (jobs, nodes, expected verdict: True = fits)
    "seed on roomy nodes": (seed, lambda: layout(), True),
    # The seed asks 1500 MHz, 1600 MB and 2948 MB of disk per zone.
    "seed, exactly full": (seed, lambda: layout(cpu=1500, memory=1600, disk=2948), True),
    "seed, exactly full with reserved cpu": (
        seed,
        lambda: layout(cpu=1700, memory=1600, disk=2948, reserved_cpu=200),
        True,
    ),
    "seed, 1 MHz short": (seed, lambda: layout(cpu=1499, memory=1600, disk=2948), False),
    "seed, 1 MB of memory short": (seed, lambda: layout(cpu=1500, memory=1599, disk=2948), False),
    "seed, 1 MB of disk short": (seed, lambda: layout(cpu=1500, memory=1600, disk=2947), False),
    "seed, one zone short of cpu": (
        seed,
        lambda: [snode(0, "zone-a"), snode(1, "zone-b", cpu=1200), snode(2, "zone-c")],
        False,
    ),
    "seed, one zone drained": (
        seed,
        lambda: [snode(0, "zone-a"), snode(1, "zone-b", drain=True), snode(2, "zone-c")],
        False,
    ),
    "seed, one zone ineligible": (
        seed,
        lambda: [
            snode(0, "zone-a"),
            snode(1, "zone-b", eligibility="ineligible"),
            snode(2, "zone-c"),
        ],
        False,
    ),
    "seed, one zone's node down, a second one ready": (
        seed,
        lambda: [
            snode(0, "zone-a"),
            snode(1, "zone-b", Status="down"),
            snode(2, "zone-b"),
            snode(3, "zone-c"),
        ],
        True,
    ),
    # Zones by node meta in one datacenter: the jobs carry set_contains_any on ${meta.zone}.
    "seed by meta zone, exactly full": (
        meta_seed,
        lambda: meta_layout(cpu=1500, memory=1600, disk=2948),
        True,
    ),
    "seed by meta zone, 1 MHz short": (
        meta_seed,
        lambda: meta_layout(cpu=1499, memory=1600, disk=2948),
        False,
    ),
    "node class on every zone's node": (classy, lambda: with_class(layout(), 0, 1, 2), True),
    "node class missing in one zone": (classy, lambda: with_class(layout(), 0, 2), False),
    "memory summed over jobs": (
        lambda: [hand("a", memory=4096), hand("b", memory=4096), hand("c", memory=10)],
        lambda: layout(),
        False,
    ),
    "memory summed over jobs, exactly full": (
        lambda: [hand("a", memory=4096), hand("b", memory=4096)],
        lambda: layout(),
        True,
    ),
    "static port taken by an earlier job": (
        lambda: [hand("web", ports=(8080,)), hand("api", ports=(8080,))],
        lambda: layout(),
        False,
    ),
    "static ports apart": (
        lambda: [hand("web", ports=(8080,)), hand("api", ports=(8081,))],
        lambda: layout(),
        True,
    ),
    "distinct_hosts, two nodes per zone": (
        lambda: [hand("db", count=6, per_zone=2, hosts=True)],
        lambda: layout(per_zone=2),
        True,
    ),
    "distinct_hosts, one zone with one node": (
        lambda: [hand("db", count=6, per_zone=2, hosts=True)],
        lambda: layout(per_zone=2)[:5],
        False,
    ),
    "more instances than zones allow": (lambda: [hand("web", count=4)], lambda: layout(), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_preflight_agrees_with_nomads_scheduler(case):
    make_jobs, make_nodes, fits = CASES[case]
    jobs, nodes = make_jobs(), make_nodes()
    short = check(jobs, nodes, [])
    decided = scheduled(jobs, nodes)
    failed = {key: m for key, (_, m) in decided.items() if m}
    assert (not short) is fits, short
    assert (not failed) is fits, failed
    by_group: dict = {}
    for s in short:
        by_group.setdefault((s.job, s.group), []).append(s)
    assert set(by_group) == set(failed), (by_group, failed)
    for key, shortfalls in by_group.items():
        metric = failed[key]
        assert sum(s.missing for s in shortfalls) == metric.get("CoalescedFailures", 0) + 1, (
            shortfalls,
            metric,
        )
        for s in shortfalls:
            assert agrees(s.reason, s.zone, metric), (s, json.dumps(metric, indent=1))


def test_a_wrong_verdict_is_caught():
    """The comparison can fail: a preflight that ignored cpu would accept what Nomad refuses."""
    jobs, nodes = seed(), layout(cpu=1499, memory=1600, disk=2948)
    roomy = copy.deepcopy(nodes)
    for n in roomy:
        n["NodeResources"]["Cpu"]["CpuShares"] = 10**6
    assert check(jobs, roomy, []) == []  # the lenient verdict
    assert any(m for _, m in scheduled(jobs, nodes).values())  # and Nomad disagrees
    metric = next(m for _, m in scheduled(jobs, nodes).values() if m)
    assert not agrees("memory", "zone-a", metric) and agrees("cpu", "zone-a", metric)
