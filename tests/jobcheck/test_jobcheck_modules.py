"""The checker's modules one by one (nomad_jobcheck is split per struct): each module's own
entry points, a passing and a failing case each. tests/jobcheck/test_jobcheck.py proves the
whole checker rule by rule; these pin what each module owns."""

from __future__ import annotations

import pytest
from nomad_jobcheck import gosyntax, schema, values, versions
from nomad_jobcheck.rules import (
    base,
    group,
    job,
    network,
    placement,
    policies,
    service,
    task,
    volume,
)
from nomad_jobcheck.rules import run as run_rules

S = gosyntax.SECOND


def _rules(job_dict: dict | None = None) -> base.Rules:
    return base.Rules(job_dict or {"ID": "web", "Type": "service"}, [])


def test_gosyntax_speaks_go():
    assert gosyntax.go_duration(90 * S) == "1m30s"
    assert gosyntax.go_duration(1_500_000) == "1.5ms"
    assert gosyntax.go_duration(-2 * S) == "-2s"
    assert gosyntax.parse_go_duration("1h2m3.5s") == 3723 * S + S // 2
    assert gosyntax.parse_go_duration("10 parsecs") is None
    assert gosyntax.go_quote('a"b\n') == '"a\\"b\\n"'
    assert gosyntax.re2_error("^web-[0-9]+$") is None
    assert "Perl syntax" in (gosyntax.re2_error("(?=x)") or "")  # RE2 has no lookahead
    assert gosyntax.version_constraint_ok(">= 1.2, < 2")
    assert not gosyntax.version_constraint_ok(">= one")
    assert gosyntax.escapes_alloc("task", "../../etc/passwd")
    assert not gosyntax.escapes_alloc("task", "local/app.conf")


def test_values_read_only_the_expected_type():
    obj = {"Name": "web", "Count": True, "Port": 8080, "Tags": "x", "Ports": [{"A": 1}, "b"]}
    assert values.str_at(obj, "Name") == "web" and values.str_at(obj, "Port", "-") == "-"
    assert values.int_at(obj, "Count") is None  # a JSON boolean is not an integer
    assert values.int_at(obj, "Port") == 8080
    assert values.list_at(obj, "Tags") == [] and values.dicts_at(obj, "Ports") == [{"A": 1}]
    assert values.merged({"A": 1, "B": 2}, {"A": None, "B": 3, "C": 4}) == {"A": 1, "B": 3}
    assert values.merged(None, {"A": 1}) is None
    assert [values.type_name(v) for v in (None, True, 1, 1.5, "", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object",
    ]  # fmt: skip


def test_schema_typed_fields_without_the_spec():
    out: list[str] = []
    schema.check_typed_fields(
        {"TaskGroups": [{"Tasks": [{"KillTimeout": "10s", "Env": {"A": 1}}]}]}, out
    )
    assert out == [
        "Job.TaskGroups[0].Tasks[0].KillTimeout: duration must be an integer number of "
        'nanoseconds, got string "10s" (HCL duration syntax; in JSON write 10000000000)',
        "Job.TaskGroups[0].Tasks[0].Env.A: Env values must be strings, got integer 1",
    ]
    out = []
    schema.check_typed_fields({"TaskGroups": [{"Tasks": [{"KillTimeout": 5 * S}]}]}, out)
    assert out == []


@pytest.mark.skipif(not schema.schema_available(), reason="Nomad's OpenAPI spec not found")
def test_schema_walk_is_strict():
    out: list[str] = []
    schema.check_schema({"ID": "web", "priority": 50, "Datacenters": "dc1"}, out)
    assert out == [
        'Job.priority: unknown field (not part of Nomad\'s Job API object); did you mean "Priority"? '
        "(keys are CamelCase)",
        "Job.Datacenters: expected an array, got string",
    ]
    out = []
    schema.check_schema({"ID": "web", "Priority": 50, "Datacenters": ["dc1"]}, out)
    assert out == []


def test_versions_name_fields_the_target_lacks():
    job_dict = {"NodePool": "default", "TaskGroups": [{"Tasks": [{"Resources": {"SecretsMB": 1}}]}]}
    assert versions.newer_fields(job_dict, (1, 5)) == [
        "Job.NodePool: needs Nomad 1.6; the target is Nomad 1.5",
        "Job.TaskGroups[0].Tasks[0].Resources.SecretsMB: needs Nomad 1.9; the target is Nomad 1.5",
    ]
    assert versions.newer_fields(job_dict, (1, 9)) == []


def test_base_nests_problems_like_nomad():
    r = _rules()
    r.push("Task group app validation failed: ")
    r.push("Task web validation failed: ")
    r.add("Missing task driver")
    r.pop()
    r.add_all("Constraint 1 validation failed: ", ["Missing constraint operand"])
    r.pop()
    r.add("Missing job task groups")
    assert r.out == [
        "Task group app validation failed: Task web validation failed: Missing task driver",
        "Task group app validation failed: Constraint 1 validation failed: Missing constraint operand",
        "Missing job task groups",
    ]
    assert (r.jtype, r.name) == ("service", "web")  # Name defaults to the ID


def test_job_rules():
    r = _rules({"ID": "a b", "Type": "cron", "Priority": 0})
    job.check_job(r)
    assert r.out == [
        "Job ID contains a space",
        'Invalid job type: "cron"',
        "Missing job task groups",
        "job priority must be between [1, 100]",
    ]


def test_group_rules_and_count():
    assert group.group_count({"Scaling": {"Min": 2}}) == 2  # api default: scaling.min
    assert group.group_count({}) == 1
    r = _rules()
    group.check_group(r, {"Name": "app", "Count": -1, "Tasks": []})
    assert r.out == ["Task group count can't be negative", "Missing tasks for task group"]


def test_network_rules():
    net = {"ReservedPorts": [{"Label": "a", "Value": 80}], "DynamicPorts": [{"Label": "b"}]}
    assert [k for k, _ in network.ports_of(net)] == ["ReservedPorts", "DynamicPorts"]
    r = _rules()
    net["DynamicPorts"] = [{"Label": "a", "Value": 80}]
    network.check_group_networks(r, {"Networks": [net]}, [])
    assert r.out == [
        "Port label a already in use by taskgroup network",
        "Static port 80 already reserved by taskgroup network:a",
    ]


def test_service_rules():
    svc = {"Name": "${JOB}-api"}
    assert service.service_name(svc, "web", "app", None) == "web-api"
    assert service.service_name({}, "web", "app", "srv") == "web-app-srv"
    r = _rules()
    task_dict = {"Name": "srv", "Services": [{"Name": "api", "PortLabel": "http"}]}
    service.check_task_services(r, task_dict, {"Name": "app"})
    assert r.out == ['port label "http" referenced by services api does not exist']
    r = _rules()
    service.check_task_services(r, task_dict, {"Networks": [{"DynamicPorts": [{"Label": "http"}]}]})
    assert r.out == []


def test_task_rules():
    r = _rules()
    good = {"Name": "srv", "Driver": "docker", "Config": {"image": "nginx"}}
    task.check_task(r, good, {}, 300, {})
    assert r.out == []
    task.check_task(r, {"Name": "alloc", "Driver": "docker"}, {}, 100, {})
    assert r.out == [
        'Task name cannot be "alloc" (reserved since Nomad 1.11)',
        'docker driver config requires a non-empty "image" (Config.image)',
        "log storage (100 MB) must be less than requested disk capacity (100 MB)",
    ]


def test_volume_rules():
    r = _rules()
    vols = volume.check_group_volumes(r, {"Volumes": {"data": {"Type": "nfs", "Source": ""}}})
    assert set(vols) == {"data"}
    assert r.out == [
        "Task group volume validation for data failed: volume has unrecognized type nfs",
        "Task group volume validation for data failed: volume has an empty source",
    ]
    r = _rules()
    volume.check_volume_mounts(r, {"VolumeMounts": [{"Volume": "data"}, {"Volume": "logs"}]}, vols)
    assert r.out == ["Volume Mount (1) references undefined volume logs"]


def test_placement_rules():
    assert placement.constraint_errors({"LTarget": "${attr.kernel.name}", "RTarget": "linux"}) == [
        "Missing constraint operand",
        'Unknown constraint type ""',
    ]
    good = {"LTarget": "${node.class}", "Operand": "=", "RTarget": "large"}
    assert placement.constraint_errors(good) == []
    spread = {"Attribute": "${meta.zone}", "SpreadTarget": [{"Value": "a", "Percent": 70}] * 2}
    assert placement.spread_errors(spread) == [
        'Spread target value "a" already defined',
        "Sum of spread target percentages must not be greater than 100%; got 140%",
    ]


def test_policy_rules():
    restart = values.merged(policies.RESTART_DEFAULTS["service"], {"Interval": 2 * S})
    assert policies.restart_errors(restart) == [
        "Interval can not be less than 5s (got 2s)",
        "Nomad can't restart the TaskGroup 2 times in an interval of 2s with a delay of 15s",
    ]
    assert policies.restart_errors(policies.RESTART_DEFAULTS["batch"]) == []
    assert policies.update_errors(policies.UPDATE_DEFAULTS) == []
    assert not policies.update_set({"MaxParallel": 0, "Canary": None})  # api Empty()


def test_run_is_the_whole_rule_part():
    out: list[str] = []
    run_rules({"ID": "web", "TaskGroups": [{"Name": "app", "Tasks": [{"Name": "t"}]}]}, out)
    assert "Task group app validation failed: Task t validation failed: Missing task driver" in out
