"""Differential test: the stand-in's own engine against Nomad 1.5.8's scheduler (nomad-sched).

Every case registers a job, lets it run, then asks both engines about a change (the plan's
desired updates and placement failures) and applies it (which allocations survive). Every
disagreement is reported; the ones left are explained in dev/README.md ("Whose decisions")
and listed in EXPLAINED with the reason, so a new disagreement, or a fixed one, fails here.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir
from nomad_standin import nomadsched
from nomad_standin.nomad import NomadState

SEC = 1_000_000_000
ZONES = ("zone-a", "zone-b", "zone-c")
BINARY = shared_dir() / nomadsched.TOOL
needs_sched = pytest.mark.skipif(
    nomadsched.binary() is None, reason=f"nomad-sched not found at {BINARY} (set NOMADGEN_SHARED)"
)


def job(
    count=3,
    *,
    distinct=True,
    cpu=200,
    mem=128,
    image="example/app:1.0",
    env=None,
    meta=None,
    group_meta=None,
    tags=("v1",),
    constraints=(),
    spreads=None,
    affinities=None,
    driver="docker",
    max_parallel=1,
    kill_timeout=None,
    datacenters=ZONES,
) -> dict:
    group_constraints = list(constraints)
    if distinct:
        group_constraints.append(
            {
                "LTarget": "${node.datacenter}",
                "Operand": "distinct_property",
                "RTarget": str(distinct if distinct is not True else 1),
            }
        )
    config = {"image": image, "ports": ["http"]} if driver == "docker" else {"command": "/bin/app"}
    task = {
        "Name": "app",
        "Driver": driver,
        "Config": config,
        "Env": env or {"MODE": "one"},
        "Resources": {"CPU": cpu, "MemoryMB": mem},
    }
    if kill_timeout is not None:
        task["KillTimeout"] = kill_timeout
    return {
        "ID": "web",
        "Name": "web",
        "Type": "service",
        "Datacenters": list(datacenters),
        "Meta": meta,
        "TaskGroups": [
            {
                "Name": "app",
                "Count": count,
                "Constraints": group_constraints or None,
                "Meta": group_meta,
                "Spreads": spreads,
                "Affinities": affinities,
                "Networks": [{"Mode": "host", "DynamicPorts": [{"Label": "http", "To": 8080}]}],
                "Services": [
                    {
                        "Name": "web-api",
                        "PortLabel": "http",
                        "Provider": "consul",
                        "Tags": list(tags),
                    }
                ],
                "Update": {
                    "MaxParallel": max_parallel,
                    "MinHealthyTime": 10 * SEC,
                    "HealthyDeadline": 300 * SEC,
                    "ProgressDeadline": 600 * SEC,
                },
                "Tasks": [task],
            }
        ],
    }


def typed(kind: str, **kw) -> dict:
    j = job(**kw)
    j["Type"] = kind
    del j["TaskGroups"][0]["Update"]
    if kind == "system":
        del j["TaskGroups"][0]["Count"]
    return j


def stopped(**kw) -> dict:
    return {**job(**kw), "Stop": True}


SPREAD = [{"Attribute": "${node.datacenter}", "Weight": 50, "SpreadTarget": None}]
AFFINITY = [{"LTarget": "${meta.zone}", "Operand": "=", "RTarget": "zone-a", "Weight": 50}]
NOWHERE = {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "windows"}

# name -> (nodes per zone, job before (None: nothing runs), job after, nodes to drop before)
CASES: dict[str, tuple] = {
    "place one per zone": (1, None, job(), ()),
    "one more than zones": (1, None, job(count=4), ()),
    "two per zone on two nodes": (2, None, job(count=6, distinct=2), ()),
    "cpu larger than a node": (1, None, job(count=1, cpu=8000, distinct=False), ()),
    "memory larger than a node": (1, None, job(count=1, mem=16384, distinct=False), ()),
    "no node matches": (1, None, job(count=1, distinct=False, constraints=[NOWHERE]), ()),
    "missing driver": (1, None, job(count=1, distinct=False, driver="raw_exec"), ()),
    "exec driver": (1, None, job(count=1, distinct=False, driver="exec"), ()),
    "unchanged": (1, job(), job(), ()),
    "image": (1, job(), job(image="example/app:2.0"), ()),
    "env": (1, job(), job(env={"MODE": "two"}), ()),
    "job meta": (1, job(meta={"a": "1"}), job(meta={"a": "2"}), ()),
    "group meta": (1, job(group_meta={"a": "1"}), job(group_meta={"a": "2"}), ()),
    "cpu": (1, job(), job(cpu=300), ()),
    "cpu beyond the node": (1, job(), job(cpu=5000), ()),
    "service tags": (1, job(), job(tags=("v2",)), ()),
    "count up, one per zone": (2, job(count=3), job(count=6, distinct=2), ()),
    "count up, constraint full": (1, job(count=3), job(count=4), ()),
    "count down": (1, job(count=3), job(count=2), ()),
    "constraint added, still fits": (
        1,
        job(),
        job(constraints=[{"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"}]),
        (),
    ),
    "constraint added, fits nowhere": (1, job(), job(constraints=[NOWHERE]), ()),
    "kill timeout": (1, job(), job(kill_timeout=9 * SEC), ()),
    "update block": (1, job(), job(max_parallel=2), ()),
    "spread added": (1, job(), job(spreads=SPREAD), ()),
    "affinity added": (1, job(), job(affinities=AFFINITY), ()),
    "image, all at once": (1, job(max_parallel=3), job(image="x:2", max_parallel=3), ()),
    "count up and image": (2, job(distinct=False), job(count=4, image="x:2", distinct=False), ()),
    "count up and image, two at once": (
        2,
        job(distinct=False, max_parallel=2),
        job(count=4, image="x:2", distinct=False, max_parallel=2),
        (),
    ),
    "count up, in place, one per zone": (
        2,
        job(count=3),
        job(count=6, distinct=2, tags=("v2",)),
        (),
    ),
    "system job": (2, None, typed("system", distinct=False), ()),
    "system job, image": (
        1,
        typed("system", distinct=False),
        typed("system", distinct=False, image="x:2"),
        (),
    ),
    "batch job": (1, None, typed("batch", count=2, distinct=False), ()),
    "job stopped": (1, job(), stopped(), ()),
    "node lost, no room elsewhere": (1, job(), job(), ("zone-b-1",)),
    "node lost, room in its zone": (2, job(), job(), ("zone-b-1",)),
    "node lost, no constraint": (1, job(distinct=False), job(distinct=False), ("zone-b-1",)),
}

# Disagreements that stay, each explained in dev/README.md ("Whose decisions").
EXPLAINED = {
    # Nomad < 1.10 counts spread and affinity changes as destructive (scheduler/util.go
    # tasksUpdated: v1.5.8 compares them, v1.10 dropped them); the stand-in's engine follows
    # 1.10, nomad-sched 1.5.8.
    "spread added": {"desired", "kept"},
    "affinity added": {"desired", "kept"},
}


def _state(per_zone: int) -> NomadState:
    return NomadState(zones=ZONES, nodes_per_zone=per_zone, seed=1)


def _masked(counts: dict | None) -> dict | None:
    """Failure keys with zone names masked: which zone's node failed first is the shuffle's."""
    if not counts:
        return counts
    out: dict = {}
    for key, n in counts.items():
        for zone in ZONES:
            key = key.replace(zone, "zone-*")
        out[key] = out.get(key, 0) + n
    return out


def _summary(plan: dict) -> dict:
    failed = {}
    for name, m in (plan.get("FailedTGAllocs") or {}).items():
        failed[name] = {
            k: m.get(k)
            for k in (
                "NodesEvaluated",
                "NodesFiltered",
                "NodesExhausted",
                "DimensionExhausted",
                "CoalescedFailures",
            )
        }
        failed[name]["ConstraintFiltered"] = _masked(m.get("ConstraintFiltered"))
    desired = {
        g: {k: v for k, v in d.items() if v}
        for g, d in (plan["Annotations"]["DesiredTGUpdates"] or {}).items()
    }
    return {"desired": desired, "failed": failed}


def _run_evals(st: NomadState) -> None:
    """Process pending evaluations now, where the stand-in queues them."""
    run = getattr(st, "run_evals", None)
    if run is not None:
        run()


def _run(case: str, engine: str, monkeypatch) -> dict:
    """What one engine decides for a case: the plan, then what survives the change."""
    if engine == "standin":
        monkeypatch.setenv("NOMADGEN_STANDIN_ENGINE", "standin")
    else:
        monkeypatch.delenv("NOMADGEN_STANDIN_ENGINE", raising=False)
    per_zone, before, after, drop = CASES[case]
    st = _state(per_zone)
    with st.lock:
        if before is not None:
            st.register(copy.deepcopy(before))
            _run_evals(st)
            for a in st.allocs.values():  # the first version runs, healthy
                a.client = "running"
                a.healthy = True
        for name in drop:
            st.drop_node(name)
        _run_evals(st)
        plan = _summary(st.plan(copy.deepcopy(after), diff=False))
        old = {a.id for a in st.allocs.values() if not a.terminal}
        st.register(copy.deepcopy(after))
        _run_evals(st)
        live = [a for a in st.allocs.values() if not a.terminal]
        kept = len(old & {a.id for a in live})
        # How instances spread (which zone or node is a tie's): per node always, per zone
        # where the job asks for it (a constraint or spread; else zones are chance).
        per_node: dict[str, int] = {}
        per_zone: dict[str, int] = {}
        for a in live:
            per_node[a.node["Name"]] = per_node.get(a.node["Name"], 0) + 1
            per_zone[a.node["Datacenter"]] = per_zone.get(a.node["Datacenter"], 0) + 1
        group = after["TaskGroups"][0]
        nodes = sorted(per_node.values())
        zones = sorted(per_zone.values()) if group["Constraints"] or group["Spreads"] else None
    assert st.sched_errors == [], st.sched_errors
    return {**plan, "kept": kept, "nodes": nodes, "zones": zones}


def _compare(case: str, monkeypatch) -> dict[str, tuple]:
    ours, nomads = _run(case, "standin", monkeypatch), _run(case, "nomad", monkeypatch)
    return {k: (ours[k], nomads[k]) for k in ours if ours[k] != nomads[k]}


@needs_sched
def test_both_engines_agree_on_every_case(monkeypatch):
    report = {}
    for case in CASES:
        diff = _compare(case, monkeypatch)
        if diff:
            report[case] = diff
    unexplained = {c: d for c, d in report.items() if set(d) != EXPLAINED.get(c)}
    stale = {c for c in EXPLAINED if c not in report}
    lines = [
        f"{c}: {k}: stand-in {o!r} / nomad-sched {n!r}"
        for c, d in sorted(unexplained.items())
        for k, (o, n) in sorted(d.items())
    ]
    assert not unexplained, "engines disagree:\n" + "\n".join(lines)
    assert not stale, f"explained disagreements that no longer happen: {sorted(stale)}"


@needs_sched
def test_the_differential_check_reports_a_disagreement(monkeypatch):
    """Known-bad: an engine that counts a service-tag change as destructive is caught."""
    from nomad_standin import jobspec

    real = jobspec.tasks_updated
    monkeypatch.setattr(
        jobspec, "tasks_updated", lambda a, b, g: real(a, b, g) or ("tags" if a != b else "")
    )
    diff = _compare("service tags", monkeypatch)
    assert diff["desired"][0] == {"app": {"DestructiveUpdate": 1, "Ignore": 2}}
    assert diff["desired"][1] == {"app": {"InPlaceUpdate": 3}}


@needs_sched
def test_decisions_come_from_nomad_where_the_binary_is(monkeypatch):
    """A spread change: the stand-in's engine (1.10 rules) updates in place, Nomad 1.5.8
    replaces; a stand-in with the binary answers as 1.5.8 does."""
    monkeypatch.delenv("NOMADGEN_STANDIN_ENGINE", raising=False)
    assert _run("spread added", "nomad", monkeypatch)["desired"] == {
        "app": {"DestructiveUpdate": 1, "Ignore": 2}
    }
    assert _run("spread added", "standin", monkeypatch)["desired"] == {"app": {"InPlaceUpdate": 3}}


def test_fallback_when_the_binary_is_absent(monkeypatch, tmp_path):
    monkeypatch.setenv("NOMADGEN_SHARED", str(tmp_path))
    monkeypatch.delenv("NOMADGEN_STANDIN_ENGINE", raising=False)
    assert nomadsched.binary() is None
    out = _run("one more than zones", "nomad", monkeypatch)  # the stand-in's engine decides
    assert out["failed"]["app"]["ConstraintFiltered"] == {
        "distinct_property: ${node.datacenter}=zone-* used by 1 allocs": 3
    }


def test_binary_found_through_nomadgen_shared(monkeypatch, tmp_path):
    tool = tmp_path / nomadsched.TOOL
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("NOMADGEN_SHARED", str(tmp_path))
    monkeypatch.delenv("NOMADGEN_STANDIN_ENGINE", raising=False)
    assert nomadsched.binary() == tool
    monkeypatch.setenv("NOMADGEN_STANDIN_ENGINE", "standin")
    assert nomadsched.binary() is None
    assert Path(BINARY).name == "nomad-sched"


@pytest.mark.parametrize("engine", ["nomad", "standin"])
def test_task_annotations_follow_the_deciding_engine(engine, monkeypatch):
    """A task affinity change: the task's annotation says what the group's updates say
    (scheduler/annotate.go: destructive in 1.5.8, in place from 1.10)."""
    if engine == "nomad" and nomadsched.binary() is None:
        pytest.skip(f"nomad-sched not found at {BINARY} (set NOMADGEN_SHARED)")
    if engine == "standin":
        monkeypatch.setenv("NOMADGEN_STANDIN_ENGINE", "standin")
    st = _state(1)
    before = job()
    after = job()
    after["TaskGroups"][0]["Tasks"][0]["Affinities"] = AFFINITY
    with st.lock:
        st.register(copy.deepcopy(before))
        _run_evals(st)
        plan = st.plan(copy.deepcopy(after), diff=True)
    (group,) = plan["Diff"]["TaskGroups"]
    (task,) = group["Tasks"]
    if engine == "nomad":
        assert task["Annotations"] == ["forces create/destroy update"]
        assert group["Updates"] == {"create/destroy update": 1, "ignore": 2}
    else:
        assert task["Annotations"] == ["forces in-place update"]
        assert group["Updates"] == {"in-place update": 3}
