"""Differential test: dev/jobcheck/nomad_jobcheck/ and Nomad 1.5.8's own validation (nomad-jobspec validate)
agree on a generated corpus of mutations of rendered jobs: both accept or both reject.
Where jobcheck is stricter on purpose, STRICTER says why (and jobcheck's code says so too)."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nomad_jobcheck import check_job

from tests.nomad_tools import JobspecError, binary, nomad_validate, requires_nomad

CASES = Path(__file__).resolve().parents[1] / "cases"
S = 1_000_000_000


def _bases() -> list[tuple[str, dict]]:
    """Rendered jobs of different shapes: sidecar + templates, per-zone (one group per zone),
    external, a set smaller than its zones (one group with a spread)."""
    out = []
    for case, ids in (
        ("seed-example", ("app", "psql-app")),
        ("microservices", None),
        ("counts", ("beacon",)),
        ("nasty-values", ("api",)),
    ):
        jobs = json.loads((CASES / case / "render.json").read_text())
        for jid in ids or sorted(jobs)[:1]:
            out.append((f"{case}/{jid}", jobs[jid]["Job"]))
    return out


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def setp(*path_value):
    *path, value = path_value

    def f(job):
        _get(job, path[:-1])[path[-1]] = value

    return f


def delp(*path):
    def f(job):
        _get(job, path[:-1]).pop(path[-1], None)

    return f


def fn(func):
    return func


G = ("TaskGroups", 0)
T = (*G, "Tasks", 0)
SVC = (*G, "Services", 0)
CHK = (*SVC, "Checks", 0)
CON = (*G, "Constraints", 0)
SPR = (*G, "Spreads", 0)
NET = (*G, "Networks", 0)
UPD = ("Update",)


def _task_service(label):
    def f(job):
        svc = copy.deepcopy(job["TaskGroups"][0]["Services"][0])
        svc["PortLabel"] = label
        svc["Name"] = "task-svc"
        job["TaskGroups"][0]["Tasks"][0]["Services"] = [svc]

    return f


def _dup_task(job):
    job["TaskGroups"][0]["Tasks"].append(copy.deepcopy(job["TaskGroups"][0]["Tasks"][0]))


def _dup_group(job):
    job["TaskGroups"].append(copy.deepcopy(job["TaskGroups"][0]))


def _template(**fields):
    def f(job):
        task = job["TaskGroups"][0]["Tasks"][0]
        tmpl = {
            "EmbeddedTmpl": 'x={{ env "A" }}\n',
            "DestPath": "local/x.env",
            "ChangeMode": "restart",
        }
        tmpl.update(fields)
        task["Templates"] = [{k: v for k, v in tmpl.items() if v is not None}]

    return f


def _spread_targets(*pcts):
    def f(job):
        job["TaskGroups"][0]["Spreads"][0]["SpreadTarget"] = [
            {"Value": f"z{i}", "Percent": p} for i, p in enumerate(pcts)
        ]

    return f


MUTATIONS: dict[str, object] = {
    "unchanged": lambda job: None,
    # job
    **{f"priority {p}": setp("Priority", p) for p in (0, 1, 50, 100, 101, -5)},
    "priority string": setp("Priority", "50"),
    "priority float": setp("Priority", 50.5),
    **{f"type {t}": setp("Type", t) for t in ("batch", "system", "sysbatch", "core", "bogus")},
    "id empty": setp("ID", ""),
    "id with space": setp("ID", "a b"),
    "id with nul": setp("ID", "a\x00b"),
    "id too long": setp("ID", "x" * 129),
    "id max length": setp("ID", "x" * 128),
    "name differs": setp("Name", "other"),
    "no datacenters": setp("Datacenters", []),
    "empty datacenter": setp("Datacenters", [""]),
    "datacenter glob": setp("Datacenters", ["zone-*"]),
    "datacenters string": setp("Datacenters", "zone-a"),
    "no task groups": setp("TaskGroups", []),
    "task groups missing": delp("TaskGroups"),
    "meta non-string": setp("Meta", "x", 1),
    "all at once": setp("AllAtOnce", True),
    "region": setp("Region", "eu"),
    "namespace": setp("Namespace", "team-a"),
    # group
    **{f"count {c}": setp(*G, "Count", c) for c in (-1, 0, 1, 10000)},
    "count string": setp(*G, "Count", "3"),
    "group name empty": setp(*G, "Name", ""),
    "group name with space": setp(*G, "Name", "a b"),
    "group name with nul": setp(*G, "Name", "a\x00"),
    "duplicate group": fn(_dup_group),
    "no tasks": setp(*G, "Tasks", []),
    "ephemeral disk 0": setp(*G, "EphemeralDisk", {"SizeMB": 0}),
    "ephemeral disk -1": setp(*G, "EphemeralDisk", {"SizeMB": -1}),
    "shutdown delay -1": setp(*G, "ShutdownDelay", -1),
    "restart attempts -1": setp(
        *G, "RestartPolicy", {"Attempts": -1, "Interval": 60 * S, "Delay": S, "Mode": "fail"}
    ),
    "restart mode bogus": setp(
        *G, "RestartPolicy", {"Attempts": 2, "Interval": 60 * S, "Delay": S, "Mode": "bogus"}
    ),
    "restart delay too long": setp(
        *G, "RestartPolicy", {"Attempts": 5, "Interval": 60 * S, "Delay": 30 * S, "Mode": "fail"}
    ),
    "reschedule bogus function": setp(*G, "ReschedulePolicy", {"DelayFunction": "bogus"}),
    "reschedule delay -1": setp(*G, "ReschedulePolicy", {"Delay": -1}),
    "reschedule unlimited": setp(
        *G, "ReschedulePolicy", {"Unlimited": True, "Delay": 5 * S, "DelayFunction": "constant"}
    ),
    "group meta": setp(*G, "Meta", {"a": "b"}),
    "max client disconnect -1": setp(*G, "MaxClientDisconnect", -S),
    # constraints
    **{
        f"constraint operand {op}": setp(*CON, "Operand", op)
        for op in (
            "=",
            "!=",
            ">",
            "<",
            "bogus",
            "regexp",
            "version",
            "semver",
            "set_contains",
            "is_set",
            "is_not_set",
            "distinct_hosts",
            "",
        )
    },
    "constraint bad regexp": fn(lambda j: _get(j, CON).update(Operand="regexp", RTarget="(")),
    "constraint good regexp": fn(lambda j: _get(j, CON).update(Operand="regexp", RTarget="^a")),
    "constraint bad version": fn(lambda j: _get(j, CON).update(Operand="version", RTarget="~> x")),
    "constraint good version": fn(
        lambda j: _get(j, CON).update(Operand="version", RTarget=">= 1.2")
    ),
    **{f"distinct_property {v!r}": setp(*CON, "RTarget", v) for v in ("0", "-1", "x", "", "2")},
    "constraint no ltarget": setp(*CON, "LTarget", ""),
    "constraint = no rtarget": fn(lambda j: _get(j, CON).update(Operand="=", RTarget="")),
    "constraint set_contains no rtarget": fn(
        lambda j: _get(j, CON).update(Operand="set_contains", RTarget="")
    ),
    "task constraint bogus": setp(
        *T, "Constraints", [{"LTarget": "${attr.x}", "Operand": "bogus", "RTarget": "y"}]
    ),
    "job constraint ok": setp(
        "Constraints", [{"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"}]
    ),
    # spreads
    **{f"spread weight {w}": setp(*SPR, "Weight", w) for w in (0, -1, 1, 100, 101)},
    "spread no attribute": setp(*SPR, "Attribute", ""),
    "spread targets over 100": fn(_spread_targets(60, 50)),
    "spread target 101": fn(_spread_targets(101)),
    "spread target negative": fn(_spread_targets(-1)),
    "spread targets exactly 100": fn(_spread_targets(50, 50)),
    "spread duplicate target": fn(
        lambda j: _get(j, SPR).update(
            SpreadTarget=[{"Value": "a", "Percent": 10}, {"Value": "a", "Percent": 10}]
        )
    ),
    "two spreads same attribute": fn(
        lambda j: _get(j, G)["Spreads"].append(copy.deepcopy(_get(j, SPR)))
    ),
    "affinity weight 0": setp(
        *G,
        "Affinities",
        [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a", "Weight": 0}],
    ),
    "affinity weight 50": setp(
        *G,
        "Affinities",
        [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a", "Weight": 50}],
    ),
    "affinity weight 101": setp(
        *G,
        "Affinities",
        [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a", "Weight": 101}],
    ),
    # update
    **{f"update max_parallel {n}": setp(*UPD, "MaxParallel", n) for n in (-1, 0, 5)},
    **{
        f"update health_check {h}": setp(*UPD, "HealthCheck", h)
        for h in ("checks", "task_states", "manual", "bogus", "")
    },
    "update min healthy > deadline": setp(*UPD, "MinHealthyTime", 400 * S),
    "update deadline > progress": setp(*UPD, "HealthyDeadline", 700 * S),
    "update progress 0": setp(*UPD, "ProgressDeadline", 0),
    "update healthy deadline 0": setp(*UPD, "HealthyDeadline", 0),
    "update canary -1": setp(*UPD, "Canary", -1),
    "update canary 1": setp(*UPD, "Canary", 1),
    "update auto promote no canary": setp(*UPD, "AutoPromote", True),
    "update stagger -1": setp(*UPD, "Stagger", -S),
    "update min healthy negative": setp(*UPD, "MinHealthyTime", -S),
    "update duration string": setp(*UPD, "MinHealthyTime", "10s"),
    "group update max_parallel -1": setp(*G, "Update", {"MaxParallel": -1}),
    # tasks
    "task name empty": setp(*T, "Name", ""),
    "task name slash": setp(*T, "Name", "a/b"),
    "task name nul": setp(*T, "Name", "a\x00b"),
    "duplicate task": fn(_dup_task),
    "driver empty": setp(*T, "Driver", ""),
    "driver missing": delp(*T, "Driver"),
    "driver raw_exec": setp(*T, "Driver", "raw_exec"),
    "config string": setp(*T, "Config", "x"),
    "env non-string": setp(*T, "Env", {"A": 1}),
    "env key with dot": setp(*T, "Env", {"a.b": "x"}),
    "kill timeout -1": setp(*T, "KillTimeout", -S),
    "leader": setp(*T, "Leader", True),
    "user": setp(*T, "User", "nobody"),
    "kind bogus": setp(*T, "Kind", "bogus"),
    "lifecycle hook bogus": setp(*T, "Lifecycle", {"Hook": "bogus"}),
    "lifecycle poststop": setp(*T, "Lifecycle", {"Hook": "poststop"}),
    "lifecycle sidecar no hook": setp(*T, "Lifecycle", {"Sidecar": True}),
    "resources cpu 0": setp(*T, "Resources", "CPU", 0),
    "resources cpu -1": setp(*T, "Resources", "CPU", -1),
    "resources cpu 1": setp(*T, "Resources", "CPU", 1),
    "resources memory 9": setp(*T, "Resources", "MemoryMB", 9),
    "resources memory 10": setp(*T, "Resources", "MemoryMB", 10),
    "resources memory 0": setp(*T, "Resources", "MemoryMB", 0),
    "resources memory max below": setp(*T, "Resources", "MemoryMaxMB", 1),
    "resources memory max above": setp(*T, "Resources", "MemoryMaxMB", 4096),
    "resources cores and cpu": setp(*T, "Resources", "Cores", 2),
    "resources missing": delp(*T, "Resources"),
    "logs max files 0": setp(*T, "LogConfig", {"MaxFiles": 0, "MaxFileSizeMB": 10}),
    "logs too big for disk": setp(*T, "LogConfig", {"MaxFiles": 100, "MaxFileSizeMB": 100}),
    "artifact no source": setp(*T, "Artifacts", [{"RelativeDest": "local/"}]),
    "artifact escapes": setp(
        *T, "Artifacts", [{"GetterSource": "https://x/y", "RelativeDest": "../../etc"}]
    ),
    # templates
    "template ok": fn(_template()),
    "template bogus change mode": fn(_template(ChangeMode="bogus")),
    "template signal without signal": fn(_template(ChangeMode="signal")),
    "template signal with signal": fn(_template(ChangeMode="signal", ChangeSignal="SIGHUP")),
    "template script without script": fn(_template(ChangeMode="script")),
    "template no source no data": fn(_template(EmbeddedTmpl=None)),
    "template no destination": fn(_template(DestPath=None)),
    "template escapes alloc": fn(_template(DestPath="../../etc/passwd")),
    "template splay -1": fn(_template(Splay=-S)),
    "template bad perms": fn(_template(Perms="999")),
    "template good perms": fn(_template(Perms="0600")),
    "template wait min > max": fn(_template(Wait={"Min": 10 * S, "Max": S})),
    "template env with bad dest": fn(_template(Envvars=True, DestPath="local/")),
    # networks and services
    "port label duplicate": fn(
        lambda j: _get(j, NET)["DynamicPorts"].append(
            copy.deepcopy(_get(j, NET)["DynamicPorts"][0])
        )
    ),
    "static port 70000": fn(
        lambda j: _get(j, NET).update(ReservedPorts=[{"Label": "s", "Value": 70000}])
    ),
    "static port ok": fn(
        lambda j: _get(j, NET).update(ReservedPorts=[{"Label": "s", "Value": 8500}])
    ),
    "port to -1": fn(lambda j: _get(j, NET)["DynamicPorts"][0].update(To=-1)),
    "port label empty": fn(lambda j: _get(j, NET)["DynamicPorts"][0].update(Label="")),
    "network mode bogus": setp(*NET, "Mode", "bogus"),
    "network mode bridge": setp(*NET, "Mode", "bridge"),
    "two networks": fn(lambda j: _get(j, G)["Networks"].append({"Mode": "host"})),
    "group service unknown port": setp(*SVC, "PortLabel", "nope"),
    "group service numeric port": setp(*SVC, "PortLabel", "8080"),
    "group service no port": delp(*SVC, "PortLabel"),
    "task service unknown port": fn(_task_service("nope")),
    "task service known port": fn(_task_service("http")),
    "service name underscore": setp(*SVC, "Name", "a_b"),
    "service name dot": setp(*SVC, "Name", "a.b"),
    "service name too long": setp(*SVC, "Name", "a" * 64),
    "service name interpolated": setp(*SVC, "Name", "${NOMAD_JOB_NAME}-x"),
    "service name empty": setp(*SVC, "Name", ""),
    "service provider bogus": setp(*SVC, "Provider", "bogus"),
    "service provider nomad": setp(*SVC, "Provider", "nomad"),
    "service address mode bogus": setp(*SVC, "AddressMode", "bogus"),
    "service duplicate": fn(lambda j: _get(j, G)["Services"].append(copy.deepcopy(_get(j, SVC)))),
    "service tags empty string": setp(*SVC, "Tags", [""]),
    "check interval 0": setp(*CHK, "Interval", 0),
    "check interval 100ms": setp(*CHK, "Interval", S // 10),
    "check timeout 0": setp(*CHK, "Timeout", 0),
    "check timeout 100ms": setp(*CHK, "Timeout", S // 10),
    "check type bogus": setp(*CHK, "Type", "bogus"),
    "check type http no path": setp(*CHK, "Type", "http"),
    "check type http path": fn(lambda j: _get(j, CHK).update(Type="http", Path="/h")),
    "check type http relative path": fn(lambda j: _get(j, CHK).update(Type="http", Path="h")),
    "check type script no command": setp(*CHK, "Type", "script"),
    "check type grpc": setp(*CHK, "Type", "grpc"),
    "check initial status bogus": setp(*CHK, "InitialStatus", "bogus"),
    "check initial status passing": setp(*CHK, "InitialStatus", "passing"),
    "check unknown port": setp(*CHK, "PortLabel", "nope"),
    "check name empty": setp(*CHK, "Name", ""),
    "check restart limit -1": setp(*CHK, "CheckRestart", {"Limit": -1}),
    "check on_update bogus": setp(*CHK, "OnUpdate", "bogus"),
    "check success before passing": setp(*CHK, "SuccessBeforePassing", 2),
    "check interval string": setp(*CHK, "Interval", "10s"),
}

# Mutations where jobcheck rejects on purpose what Nomad 1.5.8 accepts: name -> why.
STRICTER: dict[str, str] = {
    "group service unknown port": "Nomad checks ports of task services only; a group service "
    "naming a missing port is accepted and fails on the client",
    "check unknown port": "the same, for a group service's check",
    "driver raw_exec": "driver config is checked by the client's plugin, not the server; "
    "a raw_exec task without a command could never start",
    "two networks": "1.5.8 accepts a second group network, but its client uses only the first",
    "port label empty": "accepted by Nomad, but no task or service can ever name the port",
}


def _corpus() -> list[tuple[str, dict]]:
    out = []
    for base_name, base in _bases():
        for name, mutate in MUTATIONS.items():
            job = copy.deepcopy(base)
            try:
                mutate(job)
            except (KeyError, IndexError, TypeError):
                continue  # the mutation does not apply to this job's shape
            out.append((f"{base_name}: {name}", job))
    return out


def _nomad_accepts(job: dict) -> tuple[bool, str]:
    try:
        return nomad_validate(job)
    except JobspecError as e:  # api.Job could not decode it: the API answers 400
        return False, str(e)


def test_corpus_is_big_and_mixed():
    corpus = _corpus()
    assert len(corpus) >= 300
    assert len({name.split(": ", 1)[1] for name, _ in corpus}) == len(MUTATIONS)


@requires_nomad
def test_jobcheck_agrees_with_nomad_on_every_mutation():
    corpus = _corpus()
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda item: _nomad_accepts(item[1]), corpus))
    disagreements = []
    for (name, job), (nomad_ok, message) in zip(corpus, verdicts, strict=True):
        problems = check_job(job)
        ours_ok = not problems
        mutation = name.split(": ", 1)[1]
        if ours_ok == nomad_ok:
            continue
        if not ours_ok and mutation in STRICTER:
            continue
        disagreements.append(
            f"{name}: Nomad {'accepts' if nomad_ok else 'rejects'}"
            f"{'' if nomad_ok else ' (' + message.strip().splitlines()[-1] + ')'}, "
            f"jobcheck {'accepts' if ours_ok else 'rejects (' + problems[0] + ')'}"
        )
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements)


@pytest.mark.parametrize("mutation", sorted(STRICTER))
def test_stricter_mutations_are_rejected_by_jobcheck_and_accepted_by_nomad(mutation):
    """Each entry of STRICTER is real: jobcheck rejects it on some job, Nomad accepts that job."""
    rejected = [job for name, job in _corpus() if name.endswith(f": {mutation}") and check_job(job)]
    assert rejected
    if binary() is not None:
        assert all(_nomad_accepts(job)[0] for job in rejected)
