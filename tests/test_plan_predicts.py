"""`nomadgen plan` says what Nomad's scheduler decides (issue 16, points 2 and 3).

For every golden case, and for the changes users make (count, image, env, resources, tags,
constraints, job meta, a node lost or drained), what `nomadgen plan --json` states about each group (create, ignore, in-place,
create/destroy) and about placement failures is checked against a direct run of nomad-sched
(Nomad 1.5.8's scheduler) on the same nodes, the job as the cluster runs it, its allocations,
and the job nomadgen would submit. The stand-in's plumbing is not the oracle: the test builds
nomad-sched's input from what the cluster's HTTP API shows.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from nomad_jobcheck.jobspec import shared_dir
from nomad_standin import nomadsched

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases"
GOLDEN = sorted(p.name for p in CASES.iterdir() if (p / "render.json").is_file())
BINARY = nomadsched.binary()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason=f"nomad-sched not found at {shared_dir() / nomadsched.TOOL} (set NOMADGEN_SHARED)",
)
LABELS = {
    "Place": "create",
    "Stop": "destroy",
    "Ignore": "ignore",
    "Migrate": "migrate",
    "Canary": "canary",
    "InPlaceUpdate": "in-place update",
    "DestructiveUpdate": "create/destroy update",
}
_GROUP = re.compile(r"^[~+ -] group (\S+) \((.*)\)$")


def _args(case: str) -> list[str]:
    path = CASES / case / "args.txt"
    text = path.read_text().replace("{case}", str(CASES / case)) if path.is_file() else ""
    return text.split()


def _zones(args: list[str]) -> tuple[str, ...]:
    if "--zones" in args:
        return tuple(args[args.index("--zones") + 1].split(","))
    return ("zone-a", "zone-b", "zone-c")


def _nomadgen(cluster_env: dict, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    env.update(cluster_env)
    return subprocess.run(
        [sys.executable, "-m", "nomadgen", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=ROOT,
    )


def _stated(plan_json: dict) -> dict:
    """What nomadgen's plan states per job: group updates and placement failures."""
    out = {}
    for j in plan_json["jobs"]:
        groups = {}
        for line in j["diff"]:
            m = _GROUP.match(line)
            if m:
                groups[m.group(1)] = dict(
                    (label, int(n))
                    for n, label in (part.split(" ", 1) for part in m.group(2).split(", "))
                )
        out[j["job"]] = {"groups": groups, "failures": _failure_counts(j["placement_failures"])}
    return out


def _failure_counts(lines: list[str]) -> dict:
    out = {}
    for line in lines:
        m = re.match(r"group (\S+): (\d+) allocation\(s\) cannot be placed(?: \((.*)\))?$", line)
        assert m, line
        reasons = {r.rsplit(" filtered ", 1)[0] for r in (m.group(3) or "").split("; ") if r}
        out[m.group(1)] = (int(m.group(2)), _comparable(reasons))
    return out


def _comparable(reasons: set[str]) -> frozenset:
    """Reasons that do not depend on the scheduler's pass or node order: distinct_property,
    distinct_hosts and exhausted dimensions. Plain constraints are cached per computed class
    (and nomad-sched's harness reports them as "computed class ineligible", see dev/README.md)."""
    keep = set()
    for r in reasons:
        if (
            r.startswith(("distinct_property", "distinct_hosts"))
            or r in ("cpu", "memory", "disk")
            or r.startswith("network:")
        ):
            keep.add(re.sub(r" used by \d+ allocs", "", r))
    return frozenset(keep)


def _nomad(cluster, path: str):
    resp = requests.get(cluster.nomad_addr + path, timeout=10)
    resp.raise_for_status()
    return resp.json()


def _oracle(cluster, job: dict) -> dict:
    """nomad-sched's decision for `job`, from what the cluster's API shows."""
    nodes = [_nomad(cluster, f"/v1/node/{n['ID']}") for n in _nomad(cluster, "/v1/nodes")]
    allocs = [
        _nomad(cluster, f"/v1/allocation/{a['ID']}")
        for a in _nomad(cluster, "/v1/allocations")
        if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
    ]
    usage = {n["ID"]: [0, 0, set()] for n in nodes}
    mine = []
    for a in allocs:
        if a["JobID"] == job["ID"]:
            mine.append(
                {
                    "ID": a["ID"],
                    "Name": a["Name"],
                    "NodeID": a["NodeID"],
                    "TaskGroup": a["TaskGroup"],
                    "ClientStatus": a["ClientStatus"],
                    "DesiredStatus": "run",
                }
            )
            continue
        res = a["AllocatedResources"]
        u = usage[a["NodeID"]]
        for t in (res.get("Tasks") or {}).values():
            u[0] += t["Cpu"]["CpuShares"]
            u[1] += t["Memory"]["MemoryMB"]
        u[2] |= {p["Value"] for p in (res.get("Shared") or {}).get("Ports") or []}
    data = {
        "nodes": [nomadsched.node_input(n, *usage[n["ID"]]) for n in nodes],
        "job": {"Job": job},
    }
    if mine:
        data.update(
            previous_job={"Job": _nomad(cluster, f"/v1/job/{job['ID']}")},
            allocs=mine,
            previous_healthy=False,
        )
    run = nomadsched.run(BINARY, data)["run"]
    groups, failures = {}, {}
    for name, tg in run["task_groups"].items():
        groups[name] = {LABELS[k]: v for k, v in tg["desired_updates"].items() if v and k in LABELS}
        m = tg.get("failed_tg_allocs")
        if m:
            reasons = set(m.get("ConstraintFiltered") or {}) | set(
                m.get("DimensionExhausted") or {}
            )
            failures[name] = (m.get("CoalescedFailures", 0) + 1, _comparable(reasons))
    return {"groups": groups, "failures": failures}


def _plan(cluster, manifest: Path, args: list[str]) -> dict:
    res = _nomadgen(cluster.env(), "plan", str(manifest), *args, "--json")
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def _check(cluster, manifest: Path, args: list[str]) -> dict:
    """Every job nomadgen would create or update: its statements equal nomad-sched's."""
    plan = _plan(cluster, manifest, args)
    stated = _stated(plan)
    rendered = json.loads(
        _nomadgen(cluster.env(), "render", str(manifest), *args, "-f", "json").stdout
    )
    checked = {}
    for j in plan["jobs"]:
        if j["action"] not in ("create", "update"):
            continue
        job = rendered[j["job"]]
        job = job.get("Job", job)
        want = _oracle(cluster, copy.deepcopy(job))
        got = stated[j["job"]]
        assert _agree(got, want), (j["job"], got, want)
        checked[j["job"]] = want
    return checked


def _agree(stated: dict, decided: dict) -> bool:
    return stated == decided and bool(stated["groups"])


def test_a_misstated_plan_is_caught():
    """Known-bad: a plan that calls Nomad's replacement an in-place update, or hides a failure."""
    decided = {
        "groups": {"app": {"create/destroy update": 1, "ignore": 2}},
        "failures": {"app": (1, frozenset({"cpu"}))},
    }
    plan = {
        "jobs": [
            {
                "job": "web",
                "diff": ["~ group app (1 in-place update, 2 ignore)"],
                "placement_failures": [
                    "group app: 1 allocation(s) cannot be placed (cpu filtered 3 node(s))"
                ],
            }
        ]
    }
    assert not _agree(_stated(plan)["web"], decided)
    plan["jobs"][0]["diff"] = ["~ group app (1 create/destroy update, 2 ignore)"]
    assert _agree(_stated(plan)["web"], decided)
    plan["jobs"][0]["placement_failures"] = []
    assert not _agree(_stated(plan)["web"], decided)


def _with_cluster(standin_factory, zones):
    s = standin_factory(zones=zones, nodes_per_zone=2)

    class C:
        nomad_addr = s.nomad_addr
        standin = s

        @staticmethod
        def env():
            return s.env()

    return C


@pytest.mark.parametrize("case", GOLDEN)
def test_plan_of_every_golden_case_states_what_nomad_decides(case, standin_factory, tmp_path):
    args = _args(case)
    cluster = _with_cluster(standin_factory, _zones(args))
    checked = _check(cluster, CASES / case / "manifest.json", args)
    assert checked, "every golden case creates jobs"


def _submit(cluster, manifest: Path, args: list[str]) -> None:
    res = _nomadgen(cluster.env(), "submit", str(manifest), *args, "--timeout", "120")
    assert res.returncode == 0, res.stdout + res.stderr


CHANGES = {
    "count": lambda m: {
        k: (
            {**v, "per_zone": v.get("per_zone", 1) + 1}
            if "count" not in v
            else {**v, "count": v["count"] + 1}
        )
        for k, v in m.items()
        if isinstance(v, dict) and "external" not in v
    },
    "image": lambda m: {
        k: {**v, "image": "example/other:2"}
        for k, v in m.items()
        if isinstance(v, dict) and "external" not in v
    },
    "env": lambda m: {
        k: {**v, "env": {**(v.get("env") or {}), "EXTRA": "1"}}
        for k, v in m.items()
        if isinstance(v, dict) and "external" not in v
    },
    "resources": lambda m: {
        k: {**v, "resources": {"cpu": 300, "memory": 300}}
        for k, v in m.items()
        if isinstance(v, dict) and "external" not in v
    },
    "too big": lambda m: {
        k: {**v, "resources": {"cpu": 9000, "memory": 300}}
        for k, v in m.items()
        if isinstance(v, dict) and "external" not in v
    },
}


# The stateful issue's case: app and its own psql from one to two instances per zone.
CHANGES["psql per zone"] = lambda m: {
    "app": {**m["app"], "per_zone": 2, "overrides": {"psql": {"per_zone": 2}}}
}
# Service tags: Nomad updates services in place (tasksUpdated leaves them out).
CHANGES["tags"] = lambda m: {
    k: {**v, "tags": ["traefik.enable=true"]}
    for k, v in m.items()
    if isinstance(v, dict) and "external" not in v
}
# A constraint the running allocations on every "-1" node no longer meet: Nomad keeps the
# others in place and replaces those (generic_sched.go inplaceUpdate re-checks the node).
CHANGES["constraints"] = lambda m: {
    k: {
        **v,
        "constraints": [{"attribute": "${node.unique.name}", "operator": "regexp", "value": "-2$"}],
    }
    for k, v in m.items()
    if isinstance(v, dict) and "external" not in v
}


def _edit_live_jobs(cluster, edit) -> None:
    """Register every live job again with `edit` applied: what another tool (or an older
    nomadgen) left in the cluster."""
    for stub in _nomad(cluster, "/v1/jobs"):
        job = _nomad(cluster, f"/v1/job/{stub['ID']}")
        edit(job)
        resp = requests.post(f"{cluster.nomad_addr}/v1/jobs", json={"Job": job}, timeout=10)
        resp.raise_for_status()


def _rolled_out(cluster) -> bool:
    """Every job's allocations run its latest version."""
    for stub in _nomad(cluster, "/v1/jobs"):
        version = _nomad(cluster, f"/v1/job/{stub['ID']}")["Version"]
        allocs = _nomad(cluster, f"/v1/job/{stub['ID']}/allocations")
        live = [a for a in allocs if a["DesiredStatus"] == "run"]
        if not live or any(
            a["JobVersion"] != version or a["ClientStatus"] != "running" for a in live
        ):
            return False
    return True


def _drained(cluster, node: str) -> bool:
    """The drain is over: the node runs nothing, every replacement runs."""
    allocs = _nomad(cluster, "/v1/allocations")
    (nid,) = [n["ID"] for n in _nomad(cluster, "/v1/nodes") if n["Name"] == node]
    live = [a for a in allocs if a["DesiredStatus"] == "run"]
    return all(a["NodeID"] != nid for a in live) and all(
        a["ClientStatus"] == "running" for a in live
    )


@pytest.mark.parametrize(
    "case, change",
    [("counts", c) for c in sorted(CHANGES) if c != "psql per zone"]
    + [
        ("counts", "node lost"),
        ("counts", "node drained"),
        ("counts", "job meta"),
        ("seed-example", "psql per zone"),
        ("seed-example", "node lost"),
        ("seed-example", "node drained"),
    ],
)
def test_plan_of_a_change_states_what_nomad_decides(case, change, standin_factory, tmp_path):
    args = _args(case)
    cluster = _with_cluster(standin_factory, _zones(args))
    manifest = json.loads((CASES / case / "manifest.json").read_text())
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(manifest))
    _submit(cluster, path, args)
    if change == "node lost":
        cluster.standin.nomad.drop_node(f"{_zones(args)[0]}-1")
        changed = CHANGES["count"](manifest)
    elif change == "node drained":
        # The drained node takes nothing new: the next count change places around it.
        node = f"{_zones(args)[0]}-1"
        cluster.standin.nomad.drain_node(node)
        cluster.standin.wait_for(lambda: _drained(cluster, node), timeout=120)
        changed = CHANGES["count"](manifest)
    elif change == "job meta":
        # Jobs an older nomadgen wrote carry its spec hash in job meta: every task's combined
        # meta changes, so Nomad replaces every allocation once (scheduler/util.go tasksUpdated).
        _edit_live_jobs(cluster, lambda j: j["Meta"].update(nomadgen_spec_hash="0123456789abcdef"))
        cluster.standin.wait_for(lambda: _rolled_out(cluster), timeout=120)
        changed = {}
    else:
        changed = CHANGES[change](manifest)
    path.write_text(json.dumps({**manifest, **changed}))
    checked = _check(cluster, path, args)
    assert checked, f"{change}: the change updates jobs"
    kinds = {k for w in checked.values() for g in w["groups"].values() for k in g}
    # Each case exercises what it is named for.
    want = {
        "tags": {"in-place update"},
        "constraints": {"in-place update", "create/destroy update"},
        "job meta": {"create/destroy update"},
    }.get(change, set())
    assert want <= kinds, (change, checked)


def test_preflight_refusal_matches_nomad(standin_factory, tmp_path):
    """The checks before writing (the whole-manifest preflight, then Nomad's own plan per
    job, in `nomadgen submit`) refuse exactly what nomad-sched cannot place, with its
    dimension; and what they accept places fully in nomad-sched."""
    case = "counts"
    args = _args(case)
    cluster = _with_cluster(standin_factory, _zones(args))
    manifest = json.loads((CASES / case / "manifest.json").read_text())
    path = tmp_path / "counts.json"
    path.write_text(json.dumps({**manifest, **CHANGES["too big"](manifest)}))
    want = _check(cluster, path, args)
    assert any(w["failures"] for w in want.values())
    assert all("cpu" in reasons for w in want.values() for _, reasons in w["failures"].values())
    res = _nomadgen(cluster.env(), "submit", str(path), *args)
    assert res.returncode == 15 and "does not fit the cluster" in res.stderr, res.stderr
    assert "cpu exhausted" in res.stderr
    assert _nomad(cluster, "/v1/jobs") == []  # nothing written
    path.write_text(json.dumps(manifest))
    want = _check(cluster, path, args)
    assert not any(w["failures"] for w in want.values())
    _submit(cluster, path, args)


def _rollout_fates(cluster, job: dict) -> dict[str, int]:
    """What Nomad's whole rollout (nomad-sched, every new allocation healthy at once) does to
    the running allocations: kept in place, replaced on the same node, replaced elsewhere, new.
    Other jobs' allocations go in as node reservations (their resources are taken)."""
    nodes = [_nomad(cluster, f"/v1/node/{n['ID']}") for n in _nomad(cluster, "/v1/nodes")]
    allocs = [
        a
        for a in _nomad(cluster, f"/v1/job/{job['ID']}/allocations")
        if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
    ]
    usage = {n["ID"]: [0, 0] for n in nodes}
    for stub in _nomad(cluster, "/v1/allocations"):
        if stub["JobID"] == job["ID"] or stub["ClientStatus"] not in ("pending", "running"):
            continue
        res = _nomad(cluster, f"/v1/allocation/{stub['ID']}")["AllocatedResources"]
        for task in (res.get("Tasks") or {}).values():
            usage[stub["NodeID"]][0] += task["Cpu"]["CpuShares"]
            usage[stub["NodeID"]][1] += task["Memory"]["MemoryMB"]
    data = {
        "nodes": [nomadsched.node_input(n, *usage[n["ID"]]) for n in nodes],
        "job": {"Job": job},
        "previous_job": {"Job": _nomad(cluster, f"/v1/job/{job['ID']}")},
        "allocs": [
            {
                "ID": a["ID"],
                "Name": a["Name"],
                "NodeID": a["NodeID"],
                "TaskGroup": a["TaskGroup"],
                "ClientStatus": a["ClientStatus"],
            }
            for a in allocs
        ],
        "previous_healthy": False,
        "rollout": True,
    }
    out = nomadsched.run(BINARY, data)["rollout"]
    old = {a["ID"]: a["NodeID"] for a in allocs}
    fates = {"in place": 0, "same node": 0, "other node": 0, "new": 0}
    for a in out["allocs_after"]:
        if a["desired_status"] != "run":
            continue
        if a["id"] in old:
            fates["in place"] += 1
        elif a.get("previous_allocation") in old:
            same = old[a["previous_allocation"]] == a["node_id"]
            fates["same node" if same else "other node"] += 1
        else:
            fates["new"] += 1
    return fates


@pytest.mark.parametrize("change", ["psql per zone", "psql image"])
def test_plan_data_statements_match_nomads_rollout(change, standin_factory, tmp_path):
    """The stateful plan lines (data kept / new for a sticky ephemeral disk) against where
    Nomad's rollout puts each replacement: kept = in place or replaced on the same node."""
    args = _args("seed-example")
    cluster = _with_cluster(standin_factory, _zones(args))
    manifest = json.loads((CASES / "seed-example" / "manifest.json").read_text())
    path = tmp_path / "seed-example.json"
    path.write_text(json.dumps(manifest))
    _submit(cluster, path, args)
    changed = (
        CHANGES["psql per zone"](manifest)
        if change == "psql per zone"
        else {"app": {**manifest["app"], "overrides": {"psql": {"image": "postgres:17-alpine"}}}}
    )
    path.write_text(json.dumps({**manifest, **changed}))
    plan = _plan(cluster, path, args)
    said = {}
    for d in plan["data"]:
        if d["job"] == "psql-app":
            said[d["outcome"]] = said.get(d["outcome"], 0) + d["instances"]
    rendered = json.loads(
        _nomadgen(cluster.env(), "render", str(path), *args, "-f", "json").stdout
    )["psql-app"]
    fates = _rollout_fates(cluster, rendered.get("Job", rendered))
    assert said, "the change touches psql:app"
    assert _data_agrees(said, fates), (said, fates)


def test_host_volume_data_statements_match_nomads_rollout_when_a_node_is_full(
    standin_factory, tmp_path
):
    """psql:app in host mode gets more memory, but zone-a's node has no room left for it:
    plan's data lines (kept 2, lost 1) equal where Nomad's own rollout puts the replacements
    (the same node twice, another node once)."""
    args = _args("seed-example")
    cluster = _with_cluster(standin_factory, _zones(args))
    for node in cluster.standin.nomad.nodes:
        cluster.standin.nomad.add_host_volume(node["Name"], "psql-app")
    manifest = json.loads((CASES / "seed-example" / "manifest.json").read_text())
    host = {"psql": {"state": {"storage": "host"}}}
    manifest["app"] = {**manifest["app"], "overrides": host}
    path = tmp_path / "seed-example.json"
    path.write_text(json.dumps(manifest))
    _submit(cluster, path, args)
    zone_a = next(
        a
        for a in _nomad(cluster, "/v1/job/psql-app/allocations")
        if a["ClientStatus"] == "running" and a["TaskGroup"].endswith("zone-a")
    )
    used = sum(
        task["Memory"]["MemoryMB"]
        for a in _nomad(cluster, f"/v1/node/{zone_a['NodeID']}/allocations")
        if a["ClientStatus"] in ("pending", "running")
        for task in a["AllocatedResources"]["Tasks"].values()
    )
    free = 8192 - used  # the stand-in's nodes have 8192 MB
    filler = {
        "ID": "filler",
        "Name": "filler",
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [
            {
                "Name": "filler",
                "Count": 1,
                "Constraints": [
                    {
                        "LTarget": "${attr.unique.hostname}",
                        "Operand": "=",
                        "RTarget": zone_a["NodeName"],
                    }
                ],
                "Tasks": [
                    {
                        "Name": "filler",
                        "Driver": "docker",
                        "Config": {"image": "busybox:1.36"},
                        # 200 MB left: with psql's 512 freed, less than the 1024 it will ask
                        "Resources": {"CPU": 100, "MemoryMB": free - 200},
                    }
                ],
            }
        ],
    }
    requests.post(
        f"{cluster.nomad_addr}/v1/jobs", json={"Job": filler}, timeout=10
    ).raise_for_status()
    cluster.standin.wait_for(
        lambda: any(
            a["ClientStatus"] == "running" for a in _nomad(cluster, "/v1/job/filler/allocations")
        ),
        timeout=30,
    )
    big = {"psql": {**host["psql"], "resources": {"cpu": 500, "memory": 1024}}}
    path.write_text(json.dumps({**manifest, "app": {**manifest["app"], "overrides": big}}))
    plan = _plan(cluster, path, args)
    said = {}
    for d in plan["data"]:
        if d["job"] == "psql-app":
            said[d["outcome"]] = said.get(d["outcome"], 0) + d["instances"]
    rendered = json.loads(
        _nomadgen(cluster.env(), "render", str(path), *args, "-f", "json").stdout
    )["psql-app"]
    fates = _rollout_fates(cluster, rendered.get("Job", rendered))
    assert said == {"kept": 2, "lost": 1}, said
    assert _data_agrees(said, fates), (said, fates)


def _data_agrees(said: dict[str, int], fates: dict[str, int]) -> bool:
    return (
        said.get("kept", 0) == fates["in place"] + fates["same node"]
        and said.get("lost", 0) == fates["other node"]
        and said.get("new", 0) == fates["new"]
    )


def test_a_misstated_data_outcome_is_caught():
    """Known-bad: data said kept while Nomad's rollout moved the replacements elsewhere."""
    fates = {"in place": 0, "same node": 1, "other node": 2, "new": 0}
    assert not _data_agrees({"kept": 3}, fates)
    assert _data_agrees({"kept": 1, "lost": 2}, fates)
