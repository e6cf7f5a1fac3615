"""Two environments of one manifest side by side on one cluster (the stand-in here): in two
Nomad namespaces, and in one namespace told apart by scope. Changing one leaves the other
untouched: the same allocations, the same KV indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from nomadgen.backends import connect
from nomadgen.cli import app
from nomadgen.converge import apply
from nomadgen.discovery import lookup
from nomadgen.names import kv_root
from nomadgen.operations import prepare
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "dockland.json"

# prod keeps its KV under a prefix of its own: lookup(env=) must find it there
NAMESPACES = '[env.dev]\nnamespace = "dev"\n\n[env.prod]\nnamespace = "prod"\nkv_prefix = "ng"\n'
SCOPES = "[env.dev]\n\n[env.prod]\n"  # both in the default namespace, told apart by scope


def _push(cluster, config: Path, env: str, sets: tuple[str, ...] = ()):
    cfg = load_config(config=str(config), environment=env, sets=sets, env={})
    nomad, consul = connect(
        nomad_endpoint(address=cluster.nomad_addr, namespace=cfg.render.namespace, env={}),
        consul_endpoint(address=cluster.consul_addr, env={}),
    )
    prep = prepare(str(SEED), cfg, nomad, consul, name="dockland")
    report = apply(prep.changes, nomad, consul, cfg.render, timeout=60)
    assert report.ok
    return cfg, nomad, consul


def _snapshot(cfg, nomad, consul) -> tuple[dict, dict]:
    """Running allocation IDs per job, and every KV key's ModifyIndex, of one environment."""
    allocs = {
        jid: sorted(a["ID"] for a in nomad.allocations(jid) if a.get("DesiredStatus") == "run")
        for jid, stub in nomad.jobs().items()
        if (stub.get("Meta") or {}).get("nomadgen_manifest") == f"dockland@{cfg.render.scope}"
    }
    kv = {
        k: idx
        for k, (_, idx) in consul.kv_tree(
            kv_root(cfg.render.kv_prefix, "dockland", cfg.render.scope)
        ).items()
    }
    return allocs, kv


@pytest.mark.parametrize("layout", ["namespaces", "scopes"])
def test_two_environments_side_by_side_change_one_other_untouched(cluster, tmp_path, layout):
    config = tmp_path / "nomadgen.toml"
    config.write_text(NAMESPACES if layout == "namespaces" else SCOPES)
    a, b = "dev", "prod"
    if layout == "namespaces":
        for ns in ("dev", "prod"):
            requests.put(
                f"{cluster.nomad_addr}/v1/namespace/{ns}", json={"Name": ns}, timeout=10
            ).raise_for_status()

    _push(cluster, config, a)
    cfg_b, nomad_b, consul_b = _push(cluster, config, b)
    allocs, kv = _snapshot(cfg_b, nomad_b, consul_b)
    assert sorted(allocs) == [
        f"{b}-app",
        f"{b}-blog",
        f"{b}-psql-app",
        f"{b}-psql-blog",
        f"{b}-worker",
    ]
    assert all(len(v) >= 3 for v in allocs.values())
    if layout == "scopes":  # one namespace holds both environments' jobs
        assert cfg_b.render.namespace == "default"
        assert {f"{a}-app", f"{b}-app"} <= set(nomad_b.jobs())
    assert len(kv) == 9  # 7 interfaces and 2 push records
    # b converged: a new plan in its namespace has nothing to do (its credentials are found
    # in its own namespace, not looked up in "default").
    again = prepare(str(SEED), cfg_b, nomad_b, consul_b, name="dockland")
    assert not again.changes.changed, again.changes.to_json()

    # Change a: a new postgres for its psql:app (and so its dependents reload).
    cfg_a, nomad_a, consul_a = _push(
        cluster, config, a, sets=("psql:app.image=postgres:16.9-alpine",)
    )
    assert (
        nomad_a.job(f"{a}-psql-app")["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
        == "postgres:16.9-alpine"
    )
    assert _snapshot(cfg_b, nomad_b, consul_b) == (
        allocs,
        kv,
    )  # b: same allocations, same KV indexes
    assert (
        nomad_b.job(f"{b}-psql-app")["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
        == "postgres:16-alpine"
    )

    # Each environment's dependents read their own environment's sets only.
    tpl = nomad_b.job(f"{b}-worker")["TaskGroups"][0]["Tasks"][0]["Templates"][0]["EmbeddedTmpl"]
    assert f'.{b}-psql-app")' in tpl and f"{a}-" not in tpl

    # interface get and discovery read the right one.
    res = CliRunner().invoke(
        app,
        ["interface", "get", "psql:app", "--env", b, "--config", str(config)],
        env=cluster.env(),
    )
    assert res.exit_code == 0, res.output
    assert f'"key": "{cfg_b.render.kv_prefix}/dockland@{b}/interfaces/{b}-psql-app"' in res.stdout
    dns = f"{cluster.dns_host}:{cluster.dns_port}"
    seen = {}
    for e in (a, b):
        found = lookup(
            "psql:app",
            via="http",
            consul_addr=cluster.consul_addr,
            manifest="dockland",
            env=e,
            config=str(config),
        )
        assert found.service == f"{e}-psql-app" and found.document["set"] == "psql:app"
        assert found.document["service"] == f"{e}-psql-app"
        assert len(found.instances) == 3
        by_dns = lookup("psql:app", dns_server=dns, env=e, config=str(config))
        assert by_dns.service == f"{e}-psql-app"
        assert {(i.host, i.port) for i in by_dns.instances} == {
            (i.host, i.port) for i in found.instances
        }
        seen[e] = {(i.host, i.port) for i in found.instances}
    assert not seen[a] & seen[b]  # each environment's own instances

    # status and plan through the CLI, in b's namespace and scope
    st = CliRunner().invoke(
        app,
        ["status", "dockland", "--env", b, "--config", str(config), "--json"],
        env=cluster.env(),
    )
    assert st.exit_code == 0, st.output
    rows = {r["set"]: r for r in json.loads(st.stdout)}
    assert rows["psql:app"]["job"] == f"{b}-psql-app" and rows["psql:app"]["drift"] == "in sync"
    assert rows["psql:app"]["healthy"] == 3 and rows["psql:app"]["interface"]
    pl = CliRunner().invoke(
        app,
        ["plan", str(SEED), "--name", "dockland", "--env", b, "--config", str(config)],
        env=cluster.env(),
    )
    assert pl.exit_code == 0, pl.output  # nothing to do

    # destroy of one environment leaves the other running.
    gone = CliRunner().invoke(
        app,
        ["destroy", "dockland", "--yes", "--env", a, "--config", str(config)],
        env=cluster.env(),
    )
    assert gone.exit_code == 0, gone.output
    assert _snapshot(cfg_a, nomad_a, consul_a) == ({}, {})  # a's jobs and KV are gone
    assert _snapshot(cfg_b, nomad_b, consul_b) == (allocs, kv)
