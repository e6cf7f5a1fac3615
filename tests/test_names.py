"""The names nomadgen writes: one module formats them; these are the layout users rely on."""

from __future__ import annotations

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
