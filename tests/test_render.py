"""Rendering: placement, co-location, interfaces and ownership, as Nomad and Consul read them."""

from __future__ import annotations

import json
from pathlib import Path

from nomadgen.catalog import Catalog
from nomadgen.hcl import to_hcl
from nomadgen.manifest import parse
from nomadgen.model import RenderSettings
from nomadgen.render import (
    META_HASH,
    META_MANIFEST,
    META_SET,
    ct_literal,
    interfaces,
    render,
    spec_hash,
    to_json,
)
from nomadgen.resolve import resolve
from tests.nomad_tools import assert_proven, binary

ROOT = Path(__file__).resolve().parents[1]


def jobs_of(
    doc: dict | None = None, zones=("zone-a", "zone-b", "zone-c"), settings=RenderSettings()
):
    text = json.dumps(doc) if doc is not None else (ROOT / "examples/dockland.json").read_text()
    plan = resolve(parse(text, "m.json", "dockland"), Catalog(), zones)
    jobs = {j.id: j for j in render(plan, settings)}
    if binary() is not None:  # every job a rendering test sees is proven by Nomad's own code
        assert_proven((j.id, to_hcl(j.api), j.api) for j in jobs.values())
    return plan, jobs


def test_one_job_per_set_node_local_sets_ride_along():
    _, jobs = jobs_of()
    assert sorted(jobs) == ["app", "blog", "psql-app", "psql-blog", "worker"]


def test_a_set_that_fills_every_zone_is_one_group_per_zone_pinned_to_it():
    _, jobs = jobs_of()
    groups = jobs["app"].api["TaskGroups"]  # stateless, per_zone 1: as a stateful set
    assert [(g["Name"], g["Count"]) for g in groups] == [
        ("app-zone-a", 1),
        ("app-zone-b", 1),
        ("app-zone-c", 1),
    ]
    for g, zone in zip(groups, ("zone-a", "zone-b", "zone-c"), strict=True):
        assert g["Constraints"][0] == {
            "LTarget": "${node.datacenter}",
            "Operand": "=",
            "RTarget": zone,
        }
        # No distinct_property (Nomad counts an in-place updated allocation twice for it) and
        # nothing to spread inside one zone; no distinct_hosts: a stateless set may share nodes.
        assert all(
            c["Operand"] not in ("distinct_property", "distinct_hosts") for c in g["Constraints"]
        )
        assert "Spreads" not in g
    assert jobs["app"].api["Datacenters"] == ["zone-a", "zone-b", "zone-c"]
    zoned = jobs["psql-app"].api["TaskGroups"]
    assert [(z["Count"], z["Constraints"][0]["RTarget"]) for z in zoned] == [
        (1, "zone-a"),
        (1, "zone-b"),
        (1, "zone-c"),
    ]


def test_a_count_set_puts_the_remainder_in_the_first_zones_deterministically():
    _, jobs = jobs_of({"web": {"count": 5}})
    groups = [(g["Name"], g["Count"]) for g in jobs["web"].api["TaskGroups"]]
    assert groups == [("web-zone-a", 2), ("web-zone-b", 2), ("web-zone-c", 1)]
    _, again = jobs_of({"web": {"count": 5}})
    assert to_json(again["web"]) == to_json(jobs["web"])


def test_a_set_smaller_than_its_zones_is_one_group_hard_and_spread_evenly():
    _, jobs = jobs_of({"web": {"count": 2}})
    (g,) = jobs["web"].api["TaskGroups"]  # Nomad chooses the zones, at most one per zone
    assert g["Name"] == "web" and g["Count"] == 2
    assert {"LTarget": "${node.datacenter}", "Operand": "distinct_property", "RTarget": "1"} in g[
        "Constraints"
    ]
    spread = g["Spreads"][0]
    assert spread["Attribute"] == "${node.datacenter}"
    assert [t["Value"] for t in spread["SpreadTarget"]] == ["zone-a", "zone-b", "zone-c"]
    assert sum(t["Percent"] for t in spread["SpreadTarget"]) <= 100
    assert 1 <= spread["Weight"] <= 100


def test_zone_attribute_from_node_meta():
    _, jobs = jobs_of(settings=RenderSettings(zone_attribute="${meta.zone}"))
    g = jobs["psql-app"].api["TaskGroups"][0]
    assert g["Constraints"][0]["LTarget"] == "${meta.zone}"
    assert jobs["psql-app"].api["Datacenters"] == ["*"]


def test_memcache_is_a_sidecar_in_the_dependents_group():
    _, jobs = jobs_of()
    g = jobs["app"].api["TaskGroups"][0]
    tasks = {t["Name"]: t for t in g["Tasks"]}
    assert set(tasks) == {"app", "memcache-app"}
    assert tasks["memcache-app"]["Lifecycle"] == {"Hook": "prestart", "Sidecar": True}
    assert tasks["memcache-app"]["Config"]["image"].startswith("memcached:")
    labels = {p["Label"] for p in g["Networks"][0]["DynamicPorts"]}
    assert "memcache_app" in labels
    env = tasks["app"]["Env"]
    # The same group is the same node: app reaches memcache on the node's own address and the
    # host port Docker maps (NOMAD_PORT_<label> is the port inside memcache's container).
    assert env["MEMCACHE_HOST"] == "${NOMAD_IP_memcache_app}"
    assert env["MEMCACHE_PORT"] == "${NOMAD_HOST_PORT_memcache_app}"
    services = {s["Name"] for s in g["Services"]}
    assert services == {"app", "memcache-app"}
    # No separate memcache job: Nomad cannot co-locate across jobs.
    assert not any(j.startswith("memcache") for j in jobs)


def test_remote_dependency_comes_through_a_consul_template():
    _, jobs = jobs_of()
    task = jobs["worker"].api["TaskGroups"][0]["Tasks"][0]
    (tpl,) = task["Templates"]
    assert tpl["Envvars"] is True and tpl["ChangeMode"] == "restart"
    assert tpl["DestPath"] == "secrets/nomadgen/psql-app.env"
    data = tpl["EmbeddedTmpl"]
    # Its own zone's instance; psql is stateful, so no other zone's: it waits for a key nobody
    # writes (Nomad shows it as the reason) while its zone has no healthy instance.
    # In its zone, the instance with the lowest alloc index: a scale does not move it.
    assert 'range service (print (env "node.datacenter") ".psql-app")' in data
    assert "parseInt .ServiceMeta.nomadgen_alloc_index" in data
    assert "~_agent" not in data
    assert '{{- else }}{{ key "nomadgen/dockland/no-healthy-instance/psql-app" }}' in data
    assert "PSQL_HOST={{ .Address | toJSON }}" in data and "PSQL_PORT={{ .Port | toJSON }}" in data
    assert 'nomadVar "nomad/jobs/psql-app"' in data and "PSQL_PASSWORD=" in data
    # Never the interface document: a new user of psql:app must not reload worker.
    assert "interfaces/" not in data and "version" not in data
    assert task["Env"]["PSQL_CREDENTIALS"] == "nomad/jobs/psql-app"


def test_services_are_consul_services_with_set_and_zone_tags_and_a_check():
    _, jobs = jobs_of()
    (svc,) = jobs["psql-app"].api["TaskGroups"][0]["Services"]
    assert svc["Name"] == "psql-app" and svc["Provider"] == "consul"
    assert "${node.datacenter}" in svc["Tags"] and "set-psql-app" in svc["Tags"]
    # A database is ready when it accepts connections, not when its port opens.
    assert svc["Checks"][0]["Type"] == "script"
    assert svc["Checks"][0]["Command"] == "pg_isready" and svc["Checks"][0]["TaskName"] == "psql"
    assert svc["Checks"][0]["Interval"] == 10_000_000_000
    app = jobs["app"].api["TaskGroups"][0]["Services"][0]
    assert app["Checks"][0]["Type"] == "tcp"


def test_ownership_meta_and_spec_hash():
    _, jobs = jobs_of()
    meta = jobs["psql-app"].api["Meta"]
    assert meta[META_MANIFEST] == "dockland" and meta[META_SET] == "psql:app"
    # Only ownership, which never changes: a per-change hash in job meta would make every
    # change destructive (job meta reaches every task). The hash stays in the push record.
    assert set(meta) == {META_MANIFEST, META_SET} and META_HASH not in meta
    assert jobs["psql-app"].spec_hash == spec_hash(jobs["psql-app"].api)


def test_spec_hash_changes_with_spec_and_only_its_job():
    base = {"app": {"depends": ["psql"]}, "other": {}}
    _, a = jobs_of(base)
    _, b = jobs_of({"app": {"depends": ["psql"], "env": {"X": "1"}}, "other": {}})
    assert a["app"].spec_hash != b["app"].spec_hash
    assert a["other"].spec_hash == b["other"].spec_hash
    assert a["psql-app"].spec_hash == b["psql-app"].spec_hash


def test_secrets_never_in_jobs_or_interfaces():
    plan, jobs = jobs_of()
    task = jobs["psql-app"].api["TaskGroups"][0]["Tasks"][0]
    assert "POSTGRES_PASSWORD" not in task.get("Env", {})
    (secret_tpl,) = task["Templates"]
    assert secret_tpl["DestPath"].startswith("secrets/")
    assert 'nomadVar "nomad/jobs/psql-app"' in secret_tpl["EmbeddedTmpl"]
    for kv in interfaces(plan):
        doc = json.loads(kv.value)
        # Names only: PSQL_PASSWORD is listed, its value never is.
        assert "password" not in kv.value.decode().lower().replace("psql_password", "")
        assert set(doc) >= {
            "service",
            "dns",
            "port_label",
            "protocol",
            "env",
            "credentials",
            "version",
        }


def test_interface_document():
    plan, _ = jobs_of()
    docs = {kv.key: json.loads(kv.value) for kv in interfaces(plan)}
    doc = docs["nomadgen/dockland/interfaces/psql-app"]
    assert doc["dns"] == "psql-app.service.consul"
    assert doc["srv"] == "_psql-app._tcp.service.consul"
    assert doc["credentials"] == "nomad/jobs/psql-app"
    assert doc["users"] == ["app", "worker"] and doc["zones"] == ["zone-a", "zone-b", "zone-c"]
    assert "PSQL_HOST" in doc["env"] and doc["protocol"] == "postgresql"
    mc = docs["nomadgen/dockland/interfaces/memcache-app"]
    assert mc["scheduling"] == "node-local" and mc["host"] == "app"


def test_manifest_values_cannot_become_template_code():
    # Literal text placed in consul-template data is neutralised.
    assert ct_literal("a{{ .x }}b") == 'a{{ "{{" }} .x {{ "}}" }}b'
    _, jobs = jobs_of(
        {
            "app": {
                "env": {"X": '{{ env "SECRET" }}', "Y": "$${attr.x}%{ if }"},
                "depends": ["redis"],
            }
        }
    )
    task = jobs["app"].api["TaskGroups"][0]["Tasks"][0]
    # Env is plain data (never template text); JSON carries the exact value.
    assert task["Env"]["X"] == '{{ env "SECRET" }}'
    assert all("SECRET" not in t["EmbeddedTmpl"] for t in task["Templates"])


def test_render_is_deterministic_bytes():
    _, a = jobs_of()
    _, b = jobs_of()
    assert [to_json(j) for j in a.values()] == [to_json(j) for j in b.values()]


def test_every_rendered_job_passes_the_strict_check():
    from nomad_jobcheck import check_job

    for doc in (
        None,
        {
            "web": {"count": 5, "depends": ["redis", "mysql", "memcache"]},
            "api": {"depends": ["web", "psql"], "check": {"type": "http", "path": "/h"}},
        },
    ):
        _, jobs = jobs_of(doc)
        for j in jobs.values():
            assert check_job(j.api) == [], j.id
