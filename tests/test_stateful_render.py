"""Stateful sets in the rendered job: storage modes, shutdown, readiness, one instance per node.
Each mode is read by Nomad 1.5.8's own parser and validator (../shared/tools/nomad-jobspec)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir

from nomadgen.catalog import Catalog, load_template
from nomadgen.errors import ConfigError, ManifestError, ResolutionError, TemplateError
from nomadgen.hcl import to_hcl
from nomadgen.manifest import parse
from nomadgen.model import RenderSettings
from nomadgen.render import render, to_json
from nomadgen.resolve import resolve
from nomadgen.settings import load_config
from tests.nomad_tools import assert_proven, binary

ZONES = ("zone-a", "zone-b", "zone-c")


def _tool() -> Path:
    return shared_dir() / "tools" / "nomad-jobspec" / "nomad-jobspec"  # honours NOMADGEN_SHARED


TOOL = _tool()
needs_tool = pytest.mark.skipif(
    not TOOL.is_file(),
    reason=f"nomad-jobspec not found at {TOOL} (set NOMADGEN_SHARED to the folder holding tools/)",
)


def jobs(doc: dict, settings: RenderSettings = RenderSettings()) -> dict:
    plan = resolve(parse(json.dumps(doc), "m.json", "m"), Catalog(), ZONES)
    out = {j.id: j.api for j in render(plan, settings)}
    if binary() is not None:  # every job a rendering test sees is proven by Nomad's own code
        assert_proven((jid, to_hcl(job), job) for jid, job in out.items())
    return out


def group(job: dict) -> dict:
    return job["TaskGroups"][0]


APP = {"app": {"depends": ["psql", "mysql", "redis", "memcache"]}}


def test_databases_keep_data_on_a_sticky_migrating_disk_by_default():
    js = jobs(APP)
    for jid, size in (("psql-app", 1024), ("mysql-app", 2048), ("redis-app", 512)):
        g = group(js[jid])
        assert g["EphemeralDisk"] == {"Sticky": True, "Migrate": True, "SizeMB": size}, jid
        assert "Volumes" not in g
    assert group(js["psql-app"])["Tasks"][0]["Env"]["PGDATA"] == "/alloc/data/pgdata"
    assert "--datadir=/alloc/data/mysql" in group(js["mysql-app"])["Tasks"][0]["Config"]["args"]
    # memcache keeps nothing: the app's group gets no disk settings from it
    assert "EphemeralDisk" not in group(js["app"])


def test_databases_shut_down_cleanly_and_are_ready_when_they_accept_connections():
    js = jobs(APP)
    psql = group(js["psql-app"])
    assert psql["Tasks"][0]["KillTimeout"] == 30_000_000_000
    assert psql["Tasks"][0]["KillSignal"] == "SIGINT"  # fast shutdown, as the image's STOPSIGNAL
    checks = {
        jid: group(js[jid])["Services"][0]["Checks"][0]
        for jid in ("psql-app", "mysql-app", "redis-app")
    }
    assert checks["psql-app"]["Command"] == "pg_isready"
    assert (
        checks["mysql-app"]["Command"] == "mysqladmin" and checks["mysql-app"]["Args"][0] == "ping"
    )
    assert "redis-cli" in " ".join(checks["redis-app"]["Args"])
    for jid, c in checks.items():
        assert c["Type"] == "script" and c["TaskName"] == group(js[jid])["Tasks"][0]["Name"]


def test_distinct_hosts_only_when_instances_share_a_zone():
    one = group(jobs(APP)["psql-app"])
    assert all(c["Operand"] != "distinct_hosts" for c in one["Constraints"])
    two = group(
        jobs({"app": {"depends": ["psql"], "overrides": {"psql": {"per_zone": 2}}}})["psql-app"]
    )
    assert {"Operand": "distinct_hosts", "RTarget": "true"} in two["Constraints"]


def test_a_stateful_set_is_one_group_per_zone_pinned_to_it():
    """Scaling must stay in place: no distinct_property (Nomad counts an allocation updated in
    place twice for it), a hard zone constraint per group and count = that zone's instances."""
    job = jobs(
        {
            "app": {
                "depends": ["psql"],
                "overrides": {"psql": {"per_zone": 2, "state": {"storage": "csi"}}},
            }
        }
    )["psql-app"]
    groups = job["TaskGroups"]
    assert [g["Name"] for g in groups] == [f"psql-{z}" for z in ZONES]
    for g, zone in zip(groups, ZONES, strict=True):
        assert g["Count"] == 2
        assert g["Constraints"][0] == {
            "LTarget": "${node.datacenter}",
            "Operand": "=",
            "RTarget": zone,
        }
        assert {"Operand": "distinct_hosts", "RTarget": "true"} in g["Constraints"]
        assert all(c["Operand"] != "distinct_property" for c in g["Constraints"])
        assert "Spreads" not in g
        # Each zone claims its own CSI volumes: instance N of zone-a is psql-app-zone-a[N].
        assert g["Volumes"]["data"]["Source"] == f"psql-app-{zone}"
        assert g["Services"][0]["Name"] == "psql-app"  # one service, zone-tagged, as before
    # A stateless per-zone set has its zone groups too, without distinct_hosts.
    app = jobs(APP)["app"]["TaskGroups"]
    assert [g["Name"] for g in app] == [f"app-{z}" for z in ZONES]
    assert all(c["Operand"] != "distinct_hosts" for g in app for c in g["Constraints"])


def test_zone_groups_follow_the_instance_slots_and_the_zone_attribute():
    doc = {"app": {"depends": ["psql"], "overrides": {"psql": {"per_zone": 1}}}}
    settings = RenderSettings(zone_attribute="${meta.zone}", datacenters=("dc1",))
    groups = jobs(doc, settings)["psql-app"]["TaskGroups"]
    assert [(g["Name"], g["Count"]) for g in groups] == [(f"psql-{z}", 1) for z in ZONES]
    for g, zone in zip(groups, ZONES, strict=True):
        assert g["Constraints"][0] == {"LTarget": "${meta.zone}", "Operand": "=", "RTarget": zone}
        # set_contains_any on the zone is implied by the hard zone constraint
        assert all(c["Operand"] != "set_contains_any" for c in g["Constraints"])


def test_host_mode_mounts_a_host_volume_named_after_the_set():
    doc = {"app": {"depends": ["psql"], "overrides": {"psql": {"state": {"storage": "host"}}}}}
    g = group(jobs(doc)["psql-app"])
    assert g["Volumes"] == {
        "data": {"Name": "data", "Type": "host", "Source": "psql-app", "ReadOnly": False}
    }
    task = g["Tasks"][0]
    assert task["VolumeMounts"] == [
        {"Volume": "data", "Destination": "/var/lib/postgresql/data", "ReadOnly": False}
    ]
    assert task["Env"]["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert g["EphemeralDisk"] == {"Sticky": True}  # the scheduler prefers the previous node


def test_csi_mode_claims_one_volume_per_allocation():
    doc = {
        "app": {
            "depends": ["redis"],
            "overrides": {"redis": {"state": {"storage": "csi", "size": 4096}}},
        }
    }
    g = group(jobs(doc)["redis-app"])
    vol = g["Volumes"]["data"]
    assert vol["Type"] == "csi" and vol["Source"] == "redis-app-zone-a" and vol["PerAlloc"] is True
    assert vol["AccessMode"] == "single-node-writer" and vol["AttachmentMode"] == "file-system"
    assert "EphemeralDisk" not in g
    assert g["Tasks"][0]["Config"]["args"][:3] == ["redis-server", "--dir", "/data"]


def test_storage_precedence_config_set_over_override_over_config_default(tmp_path):
    doc = {
        "app": {"depends": ["psql"], "overrides": {"psql": {"state": {"storage": "host"}}}},
        "blog": {"depends": ["psql"]},
    }
    cfg = tmp_path / "nomadgen.toml"
    cfg.write_text('[storage]\nmode = "csi"\ncsi_plugin = "ebs0"\n')
    js = jobs(doc, load_config(config=str(cfg), env={}).render)
    assert group(js["psql-app"])["Volumes"]["data"]["Type"] == "host"  # the manifest asked
    assert group(js["psql-blog"])["Volumes"]["data"]["Type"] == "csi"  # the cluster default
    cfg.write_text('[storage]\nmode = "csi"\n[storage.sets]\n"psql:app" = "ephemeral"\n')
    js = jobs(doc, load_config(config=str(cfg), env={}).render)
    assert "Volumes" not in group(js["psql-app"])


@pytest.mark.parametrize(
    "key, value, text",
    [
        ("storage", "nfs", "unknown storage mode 'nfs'"),
        ("size", 5, "at least 10"),
        ("sise", 5, "did you mean 'size'?"),
        ("path", "data", "absolute path"),
    ],
)
def test_bad_state_override_is_located_with_a_hint(key, value, text):
    doc = json.dumps(
        {"app": {"depends": ["psql"], "overrides": {"psql": {"state": {key: value}}}}}, indent=2
    )
    with pytest.raises(ManifestError) as e:
        parse(doc, "m.json", "m")
    (p,) = e.value.problems
    line = next(i for i, t in enumerate(doc.splitlines(), 1) if f'"{key}"' in t)
    col = doc.splitlines()[line - 1].index(f'"{key}"') + 1
    assert p.location == f"m.json:{line}:{col}"
    assert f"state.{key}" in p.message and text in p.message + " " + p.hint


def test_state_for_a_stateless_template_needs_a_path():
    doc = {"app": {"depends": ["memcache"], "overrides": {"memcache": {"state": {"size": 64}}}}}
    with pytest.raises(ResolutionError) as e:
        jobs(doc)
    (p,) = e.value.problems
    assert "memcache is node-local and cannot keep data" in p.message
    assert p.location.startswith("m.json:1:")


def test_a_node_local_template_cannot_declare_state(tmp_path):
    bad = tmp_path / "cache.toml"
    bad.write_text(
        'scheduling = "node-local"\n[run]\nimage = "x:1"\nports = { c = 1 }\n'
        '[state]\npath = "/data"\n'
    )
    with pytest.raises(TemplateError) as e:
        load_template(bad)
    assert any("node-local service cannot keep data" in p.message for p in e.value.problems)


def test_bad_storage_config_is_refused(tmp_path):
    cfg = tmp_path / "nomadgen.toml"
    cfg.write_text('[storage]\nmode = "nfs"\n[storage.sets]\n"psql:app" = "tape"\n')
    with pytest.raises(ConfigError) as e:
        load_config(config=str(cfg), env={})
    msgs = [p.message for p in e.value.problems]
    assert any("storage.mode" in m for m in msgs) and any("psql:app" in m for m in msgs)


def test_user_template_declares_state_and_bad_state_is_refused(tmp_path):
    good = tmp_path / "kv.toml"
    good.write_text(
        '[run]\nimage = "etcd:3"\nports = { c = 2379 }\nenv = { DATA = "{data}/etcd" }\n'
        '[state]\npath = "/var/lib/etcd"\nsize = 256\nstorage = "host"\n'
    )
    t = load_template(good)
    assert t.run.state.path == "/var/lib/etcd" and t.run.state.storage == "host"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[run]\nimage = "x:1"\nports = { c = 1 }\n[state]\npath = "rel"\nsize = 1\nstorage = "tape"\n'
        '[check]\ntype = "script"\n'
    )
    with pytest.raises(TemplateError) as e:
        load_template(bad)
    keys = sorted(p.message.split(":")[0] for p in e.value.problems)
    assert keys == ["check.command", "state.path", "state.size", "state.storage"]


@needs_tool
@pytest.mark.parametrize("mode", ["ephemeral", "host", "csi"])
def test_every_mode_is_valid_for_nomad_1_5_8(mode, tmp_path):
    doc = {
        "app": {
            "depends": [t for t in ("psql", "mysql", "redis", "memcache")],
            "overrides": {
                t: {"state": {"storage": mode}, "per_zone": 2} for t in ("psql", "mysql", "redis")
            },
        }
    }
    for jid, job in jobs(doc).items():
        hcl = tmp_path / f"{jid}.nomad.hcl"
        hcl.write_text(to_hcl(job))
        parsed = subprocess.run([str(TOOL), "parse", str(hcl)], capture_output=True, text=True)
        assert parsed.returncode == 0, parsed.stdout + parsed.stderr
        body = tmp_path / f"{jid}.json"
        body.write_text(to_json(job))
        valid = subprocess.run([str(TOOL), "validate", str(body)], capture_output=True, text=True)
        assert valid.returncode == 0, valid.stdout + valid.stderr


@needs_tool
def test_the_nomad_check_catches_a_bad_volume(tmp_path):
    """Known-bad: the validation above fails on a mount of an undeclared volume."""
    job = copy.deepcopy(  # a rendered job is read-only: its groups share blocks (render.py)
        jobs({"app": {"depends": ["psql"], "overrides": {"psql": {"state": {"storage": "host"}}}}})[
            "psql-app"
        ]
    )
    job["TaskGroups"][0]["Tasks"][0]["VolumeMounts"][0]["Volume"] = "nope"
    body = tmp_path / "bad.json"
    body.write_text(to_json(job))
    valid = subprocess.run([str(TOOL), "validate", str(body)], capture_output=True, text=True)
    assert valid.returncode != 0 and "nope" in valid.stdout + valid.stderr
