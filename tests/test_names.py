"""The names nomadgen writes: one module formats them; these are the layout users rely on."""

from __future__ import annotations

import re
from types import SimpleNamespace

from nomadgen import names


def test_job_ids_and_services_from_set_names():
    assert names.job_id("psql:app") == "psql-app"
    assert names.job_id("psql:pgbouncer:app") == "psql-pgbouncer-app"
    assert names.job_id("psql:app", "prod") == "prod-psql-app"
    assert names.dns("psql-app") == "psql-app.service.consul"
    assert names.srv("psql-app", "example") == "_psql-app._tcp.service.example"


def test_kv_layout():
    root = names.kv_root("nomadgen", "dockland")
    assert root == "nomadgen/dockland"
    assert names.interface_key(root, "psql-app") == "nomadgen/dockland/interfaces/psql-app"
    assert names.push_key(root, "plan") == "nomadgen/dockland/push/plan"
    assert names.owner_of_key("nomadgen/dockland/interfaces/psql-app") == "dockland"
    assert names.is_interface_of("nomadgen/dockland/interfaces/psql-app", "psql-app")
    assert not names.is_interface_of("nomadgen/dockland/interfaces/xpsql-app", "psql-app")


def test_a_scoped_kv_root_is_never_inside_an_unscoped_one():
    # destroy deletes the tree under <root>/: an environment's keys must not be under it
    plain = names.kv_root("nomadgen", "dockland") + "/"
    scoped = names.kv_root("nomadgen", "dockland", "prod")
    assert not scoped.startswith(plain)
    assert names.kv_root("nomadgen", "dockland", "prod") != names.kv_root(
        "nomadgen", "dockland", "dev"
    )


def test_external_ids_credentials_prefixes():
    assert names.external_id("dockland", "legacy-db") == "nomadgen:dockland:legacy-db"
    # Unambiguous: manifest a-b with service c and manifest a with service b-c differ.
    assert names.external_id("a-b", "c") != names.external_id("a", "b-c")
    assert names.is_external_of("nomadgen:a-b:c", "a-b") and not names.is_external_of(
        "nomadgen:a-b:c", "a"
    )
    assert names.credentials_path("nomad/jobs/{job}", "psql-app") == "nomad/jobs/psql-app"
    assert names.env_prefix("my-db") == "MY_DB"


def test_node_zone_by_attribute():
    node = SimpleNamespace(
        datacenter="dc1", meta={"zone": "z1"}, attributes={"kernel.name": "linux"}
    )
    assert names.node_zone(node, "${node.datacenter}") == "dc1"
    assert names.node_zone(node, "${meta.zone}") == "z1"
    assert names.node_zone(node, "${meta.rack}") is None
    assert names.node_zone(node, "${attr.kernel.name}") == "linux"


# (owner, job, group, task) of tasks that each need their own job-scoped ACL policy. Job IDs and
# task names are DNS labels, which may hold `--`; zones may hold upper case and dots.
_POLICY_CASES = [
    ("dockland", "app", "app", "cache-app"),  # a node-local sidecar's task in job app
    ("dockland", "app--cache-app", "app--cache-app", "app--cache-app"),  # a job named so
    ("dockland", "app", "app", "app"),
    ("dockland", "app", "app-zone-a", "app"),  # a zone group
    ("dockland", "app", "app-zone-b", "app"),
    ("dockland", "app", "app-Zone.A", "app"),  # a zone that is no DNS label
    ("dockland", "app", "app-zone-a", "cache-app"),
    ("dock", "land-app", "land-app", "land-app"),  # manifest and job split elsewhere
    ("dock-land", "app", "app", "app"),
    ("dockland@prod", "prod-app", "prod-app", "prod-app"),  # an environment's scope
    ("dockland-prod", "app", "app", "app"),
    ("m" * 63, "j" * 63, "j" * 63 + "-zone-a", "t" * 63),  # past 128 characters
    ("m" * 63, "j" * 63, "j" * 63 + "-zone-b", "t" * 63),
]


def _clashes(name) -> list[str]:
    seen: dict[str, tuple] = {}
    out = []
    for case in _POLICY_CASES:
        n = name(*case)
        if n in seen:
            out.append(f"{seen[n]} and {case} -> {n}")
        seen[n] = case
    return out


def test_workload_policy_names_are_valid_and_never_shared_by_two_tasks():
    assert _clashes(names.workload_policy_name) == []
    for case in _POLICY_CASES:
        # Nomad's rule: structs.ValidPolicyName, ^[a-zA-Z0-9-]{1,128}$
        assert re.fullmatch(r"[a-zA-Z0-9-]{1,128}", names.workload_policy_name(*case)), case
    assert (
        names.workload_policy_name("dockland", "app", "app-zone-a", "app")
        == "nomadgen-dockland-J-app-G-app-zone-a-T-app"
    )
    assert names.workload_policy_name("dockland@prod", "prod-app", "prod-app", "prod-app") == (
        "nomadgen-dockland-S-prod-J-prod-app-G-prod-app-T-prod-app"
    )

    # Known-bad: the earlier scheme (`<job>` for a main task, `<job>--<task>` for a sidecar,
    # the manifest and job joined by one hyphen) gives two tasks one policy.
    def earlier(owner, job, group, task):
        return f"nomadgen-{owner}-{job}" + ("" if task == group.split("-zone")[0] else f"--{task}")

    assert _clashes(earlier)
