"""End to end against the dev/ cluster (the stand-in here; real agents with NOMADGEN_TEST_REAL=1):
submit the seed's example, read every interface back, converge a second push, and survive faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen.backends import connect
from nomadgen.cli import app
from nomadgen.converge import ApplyError, apply
from nomadgen.discovery import InterfaceMissing, lookup
from nomadgen.errors import NotHealthy, PermissionDenied
from nomadgen.operations import interface_get, prepare
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "dockland.json"


def backends(cluster, nomad_token=None, consul_token=None):
    return connect(
        nomad_endpoint(address=cluster.nomad_addr, token=nomad_token, env={}),
        consul_endpoint(address=cluster.consul_addr, token=consul_token, env={}),
    )


def push(cluster, manifest=SEED, timeout=30.0, **kw):
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest), cfg, nomad, consul, name="dockland", **kw)
    return prep, apply(prep.changes, nomad, consul, cfg.render, timeout=timeout)


def manifest_copy(tmp_path, doc=None) -> Path:
    path = tmp_path / "dockland.json"
    if doc is None:
        shutil.copy(SEED, path)
    else:
        path.write_text(json.dumps(doc, indent=2))
    return path


def writes(faults) -> list:
    """Requests that change state: every PUT/DELETE, and POSTs other than plans (dry runs)."""
    return [
        x
        for x in faults.log
        if x[1] in ("PUT", "DELETE") or (x[1] == "POST" and "/plan" not in x[2].split("?")[0])
    ]


def cli(cluster, *args, env=None):
    return CliRunner().invoke(app, list(args), env={**cluster.env(), **(env or {})})


def test_seed_example_lands_as_the_seed_says(cluster):
    prep, report = push(cluster)
    assert report.ok
    nomad, consul = backends(cluster)
    # psql:app and psql:blog: one healthy instance in each zone.
    for svc in ("psql-app", "psql-blog"):
        entries = consul.healthy(svc)
        nodes = {e["Node"]["Node"] for e in entries}
        assert len(entries) == 3 and len(nodes) == 3
        zones = {e["Service"]["Tags"][0] for e in entries}
        assert zones == {"zone-a", "zone-b", "zone-c"}
    # memcache:app runs on the same node as every app instance.
    app_nodes = sorted(e["Node"]["Node"] for e in consul.healthy("app"))
    mc_nodes = sorted(e["Node"]["Node"] for e in consul.healthy("memcache-app"))
    assert app_nodes == mc_nodes and len(app_nodes) == 3
    for alloc in nomad.allocations("app"):
        assert set(alloc["TaskStates"]) == {"app", "memcache-app"}
    # worker reads psql:app (the shared set), not a set of its own.
    worker = nomad.job("worker")
    (tpl,) = worker["TaskGroups"][0]["Tasks"][0]["Templates"]
    assert '".psql-app")' in tpl["EmbeddedTmpl"]
    assert nomad.job("psql-worker") is None
    # Every interface is readable through KV and DNS.
    cfg = load_config(env={})
    dns = f"{cluster.dns_host}:{cluster.dns_port}"
    for s in prep.rendered.plan.sets:
        view = interface_get(s.name, cfg, consul, "dockland")
        assert view.document["service"] == s.job_id and len(view.instances) == s.instance_count
        found = lookup(s.name, dns_server=dns)
        assert len(found.instances) == s.instance_count
        assert all(i.port > 0 for i in found.instances)


def test_an_unchanged_push_writes_nothing(cluster):
    push(cluster)
    cluster.faults.reset_calls()
    prep, report = push(cluster)
    assert not prep.changes.changed and report.writes == 0
    assert writes(cluster.faults) == []


def test_second_push_reloads_only_what_depends_on_the_change(cluster, tmp_path):
    push(cluster)
    nomad, _ = backends(cluster)
    before = {
        j: {a["ID"]: a for a in nomad.allocations(j) if a["DesiredStatus"] == "run"}
        for j in ("app", "blog", "worker", "psql-app", "psql-blog")
    }
    doc = json.loads(SEED.read_text())
    doc["app"]["overrides"] = {"psql": {"image": "postgres:17-alpine"}}
    prep, report = push(cluster, manifest_copy(tmp_path, doc))
    actions = {c.id: c.action for c in prep.changes.jobs}
    assert actions == {
        "psql-app": "update",
        "psql-blog": "unchanged",
        "app": "unchanged",
        "blog": "unchanged",
        "worker": "unchanged",
    }
    reloads = {r.set: r.how for r in report.reloads}
    assert reloads == {
        "psql:app": "rolling update",
        "app": "template change (change_mode restart)",
        "worker": "template change (change_mode restart)",
    }
    after = {
        j: {a["ID"]: a for a in nomad.allocations(j) if a["DesiredStatus"] == "run"} for j in before
    }
    # The changed set was replaced; nothing else was rescheduled.
    assert not set(before["psql-app"]) & set(after["psql-app"])
    for j in ("app", "blog", "worker", "psql-blog"):
        assert set(after[j]) == set(before[j]), j

    # Its dependents' templates re-rendered, so Nomad restarted their task (and only that task).
    def restarts(job, task):
        return sum(
            a["TaskStates"][task].get("Restarts", 0)
            for a in nomad.allocations(job)
            if a["DesiredStatus"] == "run"
        )

    cluster.standin.wait_for(
        lambda: restarts("app", "app") > 0 and restarts("worker", "worker") > 0
    )
    assert restarts("app", "memcache-app") == 0
    assert restarts("blog", "blog") == 0 and restarts("psql-blog", "psql") == 0


def test_missing_set_writes_nothing_to_the_cluster(cluster, tmp_path):
    doc = {"app": {"depends": ["psql"]}, "worker": {"depends": ["psql:nope"]}}
    cluster.faults.reset_calls()
    res = cli(cluster, "submit", str(manifest_copy(tmp_path, doc)))
    assert res.exit_code == 4
    assert "worker depends on psql:nope, but nothing creates set psql:nope" in res.stderr
    assert writes(cluster.faults) == []


def test_plan_exit_codes(cluster, tmp_path):
    res = cli(cluster, "plan", str(SEED))
    assert res.exit_code == 1 and "+ job psql-app (create, layer 1)" in res.stdout
    push(cluster)
    res = cli(cluster, "plan", str(SEED), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["changed"] is False
    res = cli(cluster, "plan", str(tmp_path / "nope.json"))
    assert res.exit_code == 255


def test_submit_cli_then_status_and_destroy(cluster):
    res = cli(cluster, "submit", str(SEED), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"] and report["transactions"] == 2
    res = cli(cluster, "status", str(SEED), "--json")
    rows = {r["set"]: r for r in json.loads(res.stdout)}
    assert rows["psql:app"]["healthy"] == 3 and rows["psql:app"]["drift"] == "in sync"
    assert sorted(z for z, _, _ in rows["psql:app"]["placements"]) == ["zone-a", "zone-b", "zone-c"]
    res = cli(cluster, "destroy", "dockland")
    assert res.exit_code == 1 and "needs confirmation" in res.stderr
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0 and "5 job(s)" in res.stdout
    nomad, consul = backends(cluster)
    assert consul.kv_tree("nomadgen/dockland") == {}
    with pytest.raises(InterfaceMissing):
        lookup("psql:app", dns_server=f"{cluster.dns_host}:{cluster.dns_port}")


def test_prune_stops_only_owned_jobs(cluster, tmp_path):
    push(cluster)
    nomad, _ = backends(cluster)
    foreign = {
        "ID": "other",
        "Name": "other",
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Config": {"image": "x:1"},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
    nomad.register(foreign, 0)
    doc = {"app": {"depends": ["psql", "memcache"]}}
    prep, report = push(cluster, manifest_copy(tmp_path, doc))
    stale = sorted(c.id for c in prep.changes.jobs if c.action == "stale")
    assert stale == ["blog", "psql-blog", "worker"] and report.ok
    prep, report = push(cluster, manifest_copy(tmp_path, doc), prune=True)
    stopped = sorted(s.target for s in report.steps if s.what == "stop")
    assert stopped == ["blog", "psql-blog", "worker"]
    assert not nomad.job("other").get("Stop")


def test_job_owned_by_someone_else_is_a_conflict(cluster):
    nomad, _ = backends(cluster)
    job = {
        "ID": "psql-app",
        "Type": "service",
        "Datacenters": ["*"],
        "Meta": {"owner": "ops"},
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Config": {"image": "x:1"},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
    nomad.register(job, 0)
    res = cli(cluster, "submit", str(SEED))
    assert (
        res.exit_code == 10
        and "job psql-app already exists and is not managed by nomadgen" in res.stderr
    )


def test_failure_part_way_says_what_was_applied_and_rerun_converges(cluster):
    # The register of app (second layer) fails with a 500; its plan (/v1/job/app/plan) does not.
    cluster.faults.add(service="nomad", method="POST", path_prefix="/v1/job/app?", nth=1)
    with pytest.raises(ApplyError) as e:
        push(cluster)
    text = str(e.value)
    applied = next(line for line in text.splitlines() if "  applied:" in line)
    assert "interfaces 7 key(s)" in applied and "register psql-app" in applied
    assert "credentials nomad/jobs/psql-app" in applied  # generated, and never shown
    assert "not applied:" in text and "create app" in text
    cluster.faults.clear()
    prep, report = push(cluster)
    assert report.ok
    assert {c.id: c.action for c in prep.changes.jobs}["psql-app"] == "unchanged"
    again, _ = push(cluster)
    assert not again.changes.changed


def test_reads_survive_transient_errors_and_resets(cluster):
    cluster.faults.add(service="nomad", method="GET", path_prefix="/v1/jobs", nth=1, status=503)
    cluster.faults.add(service="consul", method="GET", path_prefix="/v1/kv", nth=1, kind="reset")
    _, report = push(cluster)
    assert report.ok


def test_connection_reset_on_a_write_is_a_clear_error_then_converges(cluster):
    cluster.faults.add(service="consul", method="PUT", path_prefix="/v1/txn", nth=1, kind="reset")
    res = cli(cluster, "submit", str(SEED))
    assert res.exit_code == 7 and "cannot reach Consul" in res.stderr
    assert "Traceback" not in res.output
    cluster.faults.clear()
    assert cli(cluster, "submit", str(SEED)).exit_code == 0


def test_latency_beyond_the_client_timeout(cluster):
    cluster.faults.add(service="nomad", kind="latency", delay=1.5, path_prefix="/v1/nodes")
    nomad, consul = connect(
        nomad_endpoint(address=cluster.nomad_addr, env={})._replace(timeout=0.3),
        consul_endpoint(address=cluster.consul_addr, env={}),
    )
    with pytest.raises(Exception) as e:
        prepare(str(SEED), load_config(env={}), nomad, consul, name="dockland")
    assert type(e.value).__name__ == "Unavailable" and "timed out" in str(e.value)


def test_deployment_that_never_gets_healthy(cluster):
    cluster.standin.nomad.never_healthy("psql-app")
    with pytest.raises(ApplyError) as e:
        push(cluster, timeout=3)
    assert isinstance(e.value.__cause__, NotHealthy) and e.value.exit_code == 11
    assert "psql-app" in str(e.value)


def test_acl_denial_is_one_line_and_never_shows_the_token(standin_factory, tmp_path):
    secret = "7f1c9e2a-very-secret-token"
    s = standin_factory(nomad_acl_token="the-right-token")
    env = {**s.env(), "NOMAD_TOKEN": secret}
    res = CliRunner().invoke(app, ["plan", str(SEED)], env=env)
    assert res.exit_code == 255
    assert "Nomad refused the request" in res.stderr and secret not in res.output
    res = CliRunner().invoke(app, ["submit", str(SEED), "--json"], env=env)
    assert res.exit_code == 8 and secret not in res.output
    token_file = tmp_path / "tok"
    token_file.write_text("the-right-token\n")
    nomad, _ = connect(
        nomad_endpoint(address=s.nomad_addr, token_file=str(token_file), env={}),
        consul_endpoint(address=s.consul_addr, env={}),
    )
    assert nomad.jobs() == {}
    with pytest.raises(PermissionDenied):
        connect(
            nomad_endpoint(address=s.nomad_addr, env={}),
            consul_endpoint(address=s.consul_addr, env={}),
        )[0].jobs()


def test_consul_acl_token_is_sent_on_transactions_too(standin_factory):
    s = standin_factory(consul_acl_tokens={"consul-secret"})
    env = {**s.env(), "CONSUL_HTTP_TOKEN": "consul-secret"}
    res = CliRunner().invoke(app, ["submit", str(SEED)], env=env)
    assert res.exit_code == 0, res.output
    env["CONSUL_HTTP_TOKEN"] = "wrong-one"
    res = CliRunner().invoke(app, ["plan", str(SEED)], env=env)
    assert res.exit_code == 255 and "wrong-one" not in res.output


def test_unreachable_cluster_is_one_clear_line():
    res = CliRunner().invoke(
        app,
        ["plan", str(SEED)],
        env={"NOMAD_ADDR": "http://127.0.0.1:9", "CONSUL_HTTP_ADDR": "127.0.0.1:9"},
    )
    assert res.exit_code == 255
    assert res.stderr.startswith("error: cannot reach Nomad at http://127.0.0.1:9")
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", ["plan", "submit"])
def test_a_bad_manifest_is_reported_before_the_cluster_is_contacted(command, tmp_path):
    # The manifest's problems come first, whatever state the cluster is in: here nothing
    # listens, so contacting the cluster first would report "cannot reach Nomad" instead.
    bad = tmp_path / "shop.json"
    bad.write_text('{"app": {"depends": ["psql"]},\n "web": {"bogus": 1}}')
    res = CliRunner().invoke(
        app,
        [command, str(bad)],
        env={"NOMAD_ADDR": "http://127.0.0.1:9", "CONSUL_HTTP_ADDR": "127.0.0.1:9"},
    )
    assert res.exit_code == (255 if command == "plan" else 3), res.output
    assert f"{bad}:2:10: web.bogus: unknown key" in res.stderr
    assert "cannot reach" not in res.output and "Traceback" not in res.output


def test_more_per_zone_instances_than_the_cluster_can_place(cluster, tmp_path):
    # 20 psql per zone cannot fit in one node per zone (distinct_hosts): the preflight says so
    # before Nomad's per-job plan check, exit 15.
    doc = {"app": {"depends": ["psql"], "overrides": {"psql": {"per_zone": 20}}}}
    cluster.faults.reset_calls()
    res = cli(cluster, "submit", str(manifest_copy(tmp_path, doc)))
    assert res.exit_code == 15 and "does not fit the cluster" in res.stderr, res.output
    assert "nothing was written" in res.stderr
    assert (
        # psql keeps data: one group per zone, so the count is zone-a's group's
        "psql:app: 19 of 20 instance(s) cannot be placed in zone-a: one instance per node"
        in res.stderr
    )
    assert "(distinct_hosts)" in res.stderr
    assert writes(cluster.faults) == []


def test_external_service_is_registered_through_the_agent(cluster, tmp_path):
    doc = {
        "billing": {"depends": ["legacy-db"]},
        "legacy-db": {
            "external": {"address": "10.20.30.40", "port": 5432},
            "protocol": "postgresql",
        },
    }
    prep, report = push(cluster, manifest_copy(tmp_path, doc))
    assert [s.action for s in prep.changes.services] == ["register"]
    _, consul = backends(cluster)
    (entry,) = consul.healthy("legacy-db")
    assert (entry["Service"]["Address"], entry["Service"]["Port"]) == ("10.20.30.40", 5432)
    found = lookup("legacy-db", dns_server=f"{cluster.dns_host}:{cluster.dns_port}")
    assert found.instances[0].port == 5432
    assert json.loads(consul.kv_get("nomadgen/dockland/interfaces/legacy-db")[0])["external"] == {
        "address": "10.20.30.40",
        "port": 5432,
    }
    again, _ = push(cluster, manifest_copy(tmp_path, doc))
    assert not again.changes.changed
    doc["legacy-db"]["external"]["port"] = 6432
    moved, report = push(cluster, manifest_copy(tmp_path, doc))
    assert [s.action for s in moved.changes.services] == ["register"]
    # Re-registering restarts nothing of its own; billing reads its address, so it reloads.
    assert {r.set for r in report.reloads} == {"billing"}
    assert consul.healthy("legacy-db")[0]["Service"]["Port"] == 6432
    res = cli(cluster, "destroy", "dockland", "--yes")
    assert res.exit_code == 0 and consul.healthy("legacy-db") == []


def test_credentials_are_generated_once_and_never_shown(cluster):
    res = cli(cluster, "plan", str(SEED))
    assert "credentials: will generate password at nomad/jobs/psql-app" in res.stdout
    res = cli(cluster, "submit", str(SEED), "--json")
    assert res.exit_code == 0, res.output
    n = cluster.nomad_client()
    var = n.variable.get_variable("nomad/jobs/psql-app")
    password = var["Items"]["password"]
    assert len(password) >= 24 and password not in res.output
    res = cli(cluster, "submit", str(SEED))
    assert n.variable.get_variable("nomad/jobs/psql-app")["Items"]["password"] == password
    res = cli(cluster, "status", str(SEED))
    assert password not in res.output


def test_a_change_made_in_between_is_reported_not_overwritten(cluster, tmp_path):
    push(cluster)
    doc = json.loads(SEED.read_text())
    doc["app"]["overrides"] = {"psql": {"image": "postgres:17-alpine"}}
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    prep = prepare(str(manifest_copy(tmp_path, doc)), cfg, nomad, consul, name="dockland")
    # Someone else updates psql-app after our plan was read.
    theirs = nomad.job("psql-app")
    theirs["TaskGroups"][0]["Tasks"][0]["Env"]["SOMEONE"] = "else"
    nomad.register(theirs, theirs["JobModifyIndex"])
    with pytest.raises(ApplyError) as e:
        apply(prep.changes, nomad, consul, cfg.render, timeout=30)
    assert e.value.exit_code == 10 and "the job changed since it was read" in str(e.value)
    assert nomad.job("psql-app")["TaskGroups"][0]["Tasks"][0]["Env"]["SOMEONE"] == "else"


def test_two_concurrent_pushes_cannot_silently_overwrite_interfaces(cluster, tmp_path):
    cfg = load_config(env={})
    nomad, consul = backends(cluster)
    first = prepare(str(SEED), cfg, nomad, consul, name="dockland")
    doc = json.loads(SEED.read_text())
    doc["worker"]["depends"] = ["psql:app", "redis"]
    second = prepare(str(manifest_copy(tmp_path, doc)), cfg, nomad, consul, name="dockland")
    apply(first.changes, nomad, consul, cfg.render, timeout=30)
    cluster.faults.reset_calls()
    with pytest.raises(ApplyError) as e:
        apply(second.changes, nomad, consul, cfg.render, timeout=30)
    assert e.value.exit_code == 10 and "rolled back" in str(e.value)
    # The transaction was rolled back as a whole: no job was registered after it.
    assert [x for x in writes(cluster.faults) if x[0] == "nomad"] == []
