"""Dependency wiring against the stand-in: what a dependent's task actually sees (its rendered
templates, its workload identity's reads, the addresses it dials), and what a push restarts."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from nomad_standin import acl as standin_acl
from typer.testing import CliRunner

from nomadgen import refs
from nomadgen.backends import connect
from nomadgen.catalog import Catalog
from nomadgen.cli import app
from nomadgen.converge import apply
from nomadgen.errors import ManifestError, ResolutionError
from nomadgen.manifest import parse
from nomadgen.operations import prepare, status
from nomadgen.render import render
from nomadgen.resolve import resolve
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

MGMT = "management-secret-for-tests"
APP_DB = {
    "app": {
        "depends": ["psql"],
        "env": {"DATABASE_URL": "${psql.url_with_password}", "DB_HOST": "${psql.host}"},
    },
    "other": {},
}


def _write(tmp_path, doc, name="dockland.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def _backends(s, token=None):
    return connect(
        nomad_endpoint(address=s.nomad_addr, token=token, env={}),
        consul_endpoint(address=s.consul_addr, env={}),
    )


def _push(s, path, token=None, wait=True, env=None, timeout=30.0):
    cfg = load_config(env=env or {})
    nomad, consul = _backends(s, token)
    prep = prepare(str(path), cfg, nomad, consul, name="dockland")
    return prep, apply(prep.changes, nomad, consul, cfg.render, wait=wait, timeout=timeout)


def _allocs(s, job):
    return [a for a in list(s.nomad.allocs.values()) if a.job_id == job and a.desired == "run"]


def _zone_of(a) -> str:
    return a.node["Datacenter"]


ZONES = ("zone-a", "zone-b", "zone-c")


def _policy(job: str, zone: str, task: str = "") -> str:
    """The job-scoped policy of one task of a zone group (`<type>-<zone>`, task `<type>`)."""
    return f"nomadgen-dockland-J-{job}-G-{job}-{zone}-T-{task or job}"


def test_a_dependent_reads_its_database_password_and_only_it_can(standin_factory, tmp_path):
    s = standin_factory(nomad_acl_token=MGMT)
    env = {**s.env(), "NOMAD_TOKEN": MGMT}
    path = _write(tmp_path, APP_DB)
    plan = CliRunner().invoke(app, ["plan", str(path)], env=env)
    # A policy with a task is attached to one group: one per zone group of app.
    for zone in ZONES:
        assert (
            f"acl policy {_policy('app', zone)}: will write "
            f"(job app, group app-{zone}, task app reads nomad/jobs/psql-app)"
        ) in plan.stdout, plan.stdout
    res = CliRunner().invoke(app, ["submit", str(path), "--json"], env=env)
    assert res.exit_code == 0, res.output
    nomad, consul = _backends(s, MGMT)
    password = nomad.client.variable.get_variable("nomad/jobs/psql-app")["Items"]["password"]
    # The app's own names, with the password, its zone's database and the overridable user.
    for a in _allocs(s, "app"):
        view = s.task_view(a.id, "app")
        assert not any(t.get("Error") for t in view["Templates"]), view["Templates"]
        host = view["Env"]["DB_HOST"]
        (mine,) = [e for e in consul.healthy("psql-app") if e["Service"]["Tags"][0] == _zone_of(a)]
        assert host == mine["Service"]["Address"]
        assert (
            view["Env"]["DATABASE_URL"]
            == f"postgresql://app:{password}@{host}:{mine['Service']['Port']}/app"
        )
        assert "PSQL_HOST" not in view["Env"]  # it mapped psql: no default names for it
        assert s.nomad.acl is not None
        assert standin_acl.workload_may_read_var(s.nomad, a, "app", "nomad/jobs/psql-app")
    # A service that does not depend on psql cannot read it.
    for a in _allocs(s, "other"):
        assert not standin_acl.workload_may_read_var(s.nomad, a, "other", "nomad/jobs/psql-app")
    # The secret is nowhere else: not in jobs, KV, plan or submit output.
    again = CliRunner().invoke(app, ["plan", str(path), "--json"], env=env)
    for text in (
        res.output,
        plan.output,
        again.output,
        json.dumps(nomad.job("app")),
        json.dumps({k: v[0].decode() for k, v in consul.kv_tree("nomadgen").items()}),
    ):
        assert password not in text
    # Known-bad: without its group's policy the dependent's template is denied, in that zone
    # only (the other groups' policies do not reach it).
    nomad.delete_acl_policy(_policy("app", "zone-a"))
    for a in _allocs(s, "app"):
        view = s.task_view(a.id, "app")
        assert any(t.get("Denied") for t in view["Templates"]) == (_zone_of(a) == "zone-a")
    # submit puts it back; destroy removes it.
    assert CliRunner().invoke(app, ["submit", str(path)], env=env).exit_code == 0
    assert _policy("app", "zone-a") in nomad.acl_policies()
    assert CliRunner().invoke(app, ["destroy", "dockland", "--yes"], env=env).exit_code == 0
    assert not any(n.startswith("nomadgen-dockland") for n in nomad.acl_policies())


# A user's template: Redis with a password, beside each instance of its dependent.
CACHE_WITH_PASSWORD = r'''
description = "Redis with a password, on the same node as each dependent instance"
scheduling = "node-local"

[run]
image = "redis:7.2-alpine"
command = "sh"
args = ["-c", "exec redis-server --requirepass \"$REDIS_PASSWORD\""]
ports = { redis = 6379 }
secrets = ["password"]
secrets_template = """
{{ with nomadVar "{credentials}" }}REDIS_PASSWORD={{ .password | toJSON }}{{ end }}
"""

[interface]
protocol = "redis"
port = "redis"
credentials = "nomad/jobs/{job}"

[interface.env]
HOST = "{host}"
PORT = "{port}"

[interface.extra]
URL = "redis://:{secret.password}@{host}:{port}/0"
'''


def test_a_node_local_dependency_with_credentials(standin_factory, tmp_path):
    """The sidecar reads its password, the dependent reads it too and dials the sidecar beside
    it, through job-scoped policies per task; a service that does not depend on it cannot."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "cache.toml").write_text(CACHE_WITH_PASSWORD)
    s = standin_factory(nomad_acl_token=MGMT)
    env = {**s.env(), "NOMAD_TOKEN": MGMT, "NOMADGEN_TEMPLATES": str(templates)}
    doc = {"app": {"depends": ["cache"], "env": {"REDIS_URL": "${cache.url}"}}, "other": {}}
    path = _write(tmp_path, doc)
    plan = CliRunner().invoke(app, ["plan", str(path)], env=env)
    for zone in ZONES:
        for task in ("app", "cache-app"):
            assert (
                f"acl policy {_policy('app', zone, task)}: will write "
                f"(job app, group app-{zone}, task {task} reads nomad/jobs/cache-app)"
            ) in plan.stdout, plan.stdout
    res = CliRunner().invoke(app, ["submit", str(path), "--json"], env=env)
    assert res.exit_code == 0, res.output
    nomad, _ = _backends(s, MGMT)
    var = "nomad/jobs/cache-app"
    password = nomad.client.variable.get_variable(var)["Items"]["password"]
    for a in _allocs(s, "app"):
        sidecar = s.task_view(a.id, "cache-app")
        assert sidecar["Env"]["REDIS_PASSWORD"] == password
        view = s.task_view(a.id, "app")
        assert not any(t.get("Error") for t in view["Templates"]), view["Templates"]
        url = view["Env"]["REDIS_URL"]
        assert url.startswith(f"redis://:{urllib.parse.quote_plus(password)}@")
        ep = s.reach(url.rsplit("@", 1)[1].removesuffix("/0"), source=(a.id, "app"))
        assert ep is not None and ep.task == "cache-app" and ep.alloc_id == a.id
        for task in ("app", "cache-app"):
            assert standin_acl.workload_may_read_var(s.nomad, a, task, var)
    for a in _allocs(s, "other"):
        assert not standin_acl.workload_may_read_var(s.nomad, a, "other", var)
    for text in (res.output, plan.output, json.dumps(nomad.job("app"))):
        assert password not in text
    # Known-bad: without its policy the dependent's template is denied; the sidecar has its own.
    (a, *_) = _allocs(s, "app")
    nomad.delete_acl_policy(_policy("app", _zone_of(a)))
    assert any(t.get("Denied") for t in s.task_view(a.id, "app")["Templates"])
    assert s.task_view(a.id, "cache-app")["Env"]["REDIS_PASSWORD"] == password
    nomad.delete_acl_policy(_policy("app", _zone_of(a), "cache-app"))
    assert any(t.get("Denied") for t in s.task_view(a.id, "cache-app")["Templates"])


def test_no_policies_without_acls(cluster, tmp_path):
    prep, report = _push(cluster.standin, _write(tmp_path, APP_DB))
    assert report.ok and prep.changes.policies == ()


def test_the_node_local_address_reaches_the_sidecar(cluster, tmp_path):
    s = cluster.standin
    _push(
        s,
        _write(tmp_path, {"app": {"depends": ["memcache"], "env": {"CACHE": "${memcache.addr}"}}}),
    )
    for a in _allocs(s, "app"):
        env = s.task_view(a.id, "app")["Env"]
        ep = s.reach(env["CACHE"], source=(a.id, "app"))
        assert ep is not None and ep.task == "memcache-app" and ep.alloc_id == a.id
        # Known-bad: the container's port on the host's address reaches nothing.
        bad = f"{env['NOMAD_IP_memcache_app']}:{env['NOMAD_PORT_memcache_app']}"
        assert env["NOMAD_PORT_memcache_app"] != env["NOMAD_HOST_PORT_memcache_app"]
        assert s.reach(bad, source=(a.id, "app")) is None


def test_a_stateful_dependency_is_its_own_zones_or_it_waits(cluster, tmp_path):
    s = cluster.standin
    _push(s, _write(tmp_path, {"owner": {"depends": ["psql"]}}))
    nomad, consul = _backends(s)
    (down,) = [e for e in consul.healthy("psql-owner") if e["Service"]["Tags"][0] == "zone-a"]
    s.consul.set_service_health(down["Service"]["ID"], "critical")
    doc = {"owner": {"depends": ["psql"]}, "reader": {"depends": ["psql:owner"]}}
    _push(s, _write(tmp_path, doc), wait=False)
    key = "nomadgen/dockland/no-healthy-instance/psql-owner"

    def runs():
        return {_zone_of(a): a for a in _allocs(s, "reader")}

    s.wait_for(
        lambda: (
            len(runs()) == 3
            and all(
                a.tasks.get("reader")
                and (a.tasks["reader"].state == "running" or a.tasks["reader"].blocked)
                for a in runs().values()
            )
        ),
        timeout=20,
    )
    waiting = runs()["zone-a"].tasks["reader"]
    assert waiting.state == "pending" and waiting.blocked == f"kv.block({key})"
    for zone in ("zone-b", "zone-c"):
        a = runs()[zone]
        env = s.task_view(a.id, "reader")["Env"]
        (mine,) = [e for e in consul.healthy("psql-owner") if e["Service"]["Tags"][0] == zone]
        assert env["PSQL_HOST"] == mine["Service"]["Address"] == a.node["HTTPAddr"].split(":")[0]
    # status says why.
    rows, _ = status("dockland", load_config(env={}), nomad, consul)
    (row,) = [r for r in rows if r.set == "reader"]
    assert any("psql-owner" in w and "zone-a" in w for w in row.waiting), row
    # Its zone's database back: the wait ends.
    s.consul.set_service_health(down["Service"]["ID"], "passing")
    s.wait_for(lambda: runs()["zone-a"].tasks["reader"].state == "running", timeout=20)


def test_configured_zones_are_enforced(standin_factory, tmp_path):
    s = standin_factory()
    env = {"NOMADGEN_ZONES": "zone-a,zone-b", "NOMADGEN_ZONE_ATTRIBUTE": "${meta.zone}"}
    prep, report = _push(s, _write(tmp_path, {"web": {"count": 6}}), env=env)
    assert report.ok
    (job,) = [j for j in prep.rendered.jobs if j.id == "web"]
    # One group per configured zone, each pinned to it by a hard constraint.
    assert [g["Constraints"][0] for g in job.api["TaskGroups"]] == [
        {"LTarget": "${meta.zone}", "Operand": "=", "RTarget": z} for z in ("zone-a", "zone-b")
    ]
    zones = sorted(_zone_of(a) for a in _allocs(s, "web"))
    assert len(zones) == 6 and set(zones) == {"zone-a", "zone-b"}
    # A set smaller than the zones: one group, kept inside them by set_contains_any.
    prep, report = _push(s, _write(tmp_path, {"web": {"count": 1}}), env=env)
    assert report.ok
    (job,) = [j for j in prep.rendered.jobs if j.id == "web"]
    assert {
        "LTarget": "${meta.zone}",
        "Operand": "set_contains_any",
        "RTarget": "zone-a,zone-b",
    } in job.api["TaskGroups"][0]["Constraints"]
    s.wait_for(lambda: len(_allocs(s, "web")) == 1, timeout=30)
    assert {_zone_of(a) for a in _allocs(s, "web")} <= {"zone-a", "zone-b"}


# -- what a push restarts: plan's reload list against the restarts the stand-in counts ----------
BASE = {
    "app": {"depends": ["psql"]},
    "worker": {"depends": ["psql:app"]},
    "web": {"tags": ["traefik.enable=true"], "count": 4},
    "api": {"depends": ["web"]},
    "lb": {"depends": ["web"], "env": {"BACKENDS": "${web.addrs}"}},
    "cache-user": {"depends": ["redis"], "wiring": {"redis": {"change_mode": "noop"}}},
}


def _settled(s) -> bool:
    """Every running task's templates show the data they read now, and no change_mode waits."""
    with s.nomad.lock:
        for a in s.nomad.allocs.values():
            if a.desired != "run":
                continue
            group = next(g for g in a.job["TaskGroups"] if g["Name"] == a.group)
            for task in group["Tasks"]:
                run = a.tasks.get(task["Name"])
                if run is None or run.state != "running":
                    return False
                if run.due or run.rendered != s.nomad._fingerprints(a, task):  # noqa: SLF001
                    return False
    return True


def _restarts(s) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in list(s.nomad.allocs.values()):
        if a.desired == "run":
            out[a.job_id] = out.get(a.job_id, 0) + sum(r.restarts for r in a.tasks.values())
    return out


def _change(s, tmp_path, doc):
    """Push `doc` with submit; when the stand-in has settled, (predicted reloads, jobs whose
    tasks restarted or were replaced)."""
    before = _restarts(s)
    allocs = {j: {a.id for a in _allocs(s, j)} for j in before}
    prep, report = _push(s, _write(tmp_path, doc))
    assert report.ok
    assert report.reloads == prep.changes.reloads  # what submit reports is what plan said
    reloads = report.reloads
    s.wait_for(lambda: _settled(s), timeout=30)
    after = _restarts(s)
    now = {j: {a.id for a in _allocs(s, j)} for j in before}
    # Restarted, or some allocation replaced: more gone than a smaller count explains.
    moved = {
        j
        for j in before
        if j in after
        and (after[j] > before[j] or len(allocs[j] - now[j]) > max(0, len(allocs[j]) - len(now[j])))
    }
    predicted = {r.job: r.how for r in reloads}
    return predicted, moved


def test_plan_predicts_the_restarts(cluster, tmp_path):
    s = cluster.standin
    _push(s, _write(tmp_path, BASE))
    s.wait_for(lambda: _settled(s), timeout=30)

    # A provider's image: its job is replaced, its dependents' templates restart them.
    doc = json.loads(json.dumps(BASE))
    doc["app"]["overrides"] = {"psql": {"image": "postgres:17-alpine"}}
    predicted, moved = _change(s, tmp_path, doc)
    assert predicted == {
        "psql-app": "rolling update",
        "app": "template change (change_mode restart)",
        "worker": "template change (change_mode restart)",
    }
    assert moved == set(predicted)

    # A new consumer of psql:app restarts nothing that was there.
    doc["report"] = {"depends": ["psql:app"]}
    predicted, moved = _change(s, tmp_path, doc)
    assert predicted == {} and moved == set()

    # Removing a service nobody uses restarts nothing else.
    del doc["report"]
    predicted, moved = _change(s, tmp_path, doc)
    assert predicted == {} and moved == set()

    # A tag change. Nomad updates service tags in place (scheduler/util.go tasksUpdated leaves
    # services out), and nomadgen writes nothing into the job that changes with its spec, so
    # web keeps its allocations and api, which reads only web's addresses, does not restart.
    doc["web"]["tags"] = ["traefik.enable=false"]
    predicted, moved = _change(s, tmp_path, doc)
    assert predicted == {} and moved == set()

    # A provider's scale, up and down, submitted: web is one group per zone, so zone-b's group
    # grows in place. api reads its zone's instance with the lowest alloc index and keeps it
    # (a new one takes a higher index, a scale-down stops the highest); lb reads every one.
    for count in (5, 4):
        doc["web"]["count"] = count
        predicted, moved = _change(s, tmp_path, doc)
        assert predicted == {"lb": "template change (change_mode restart)"}
        assert moved == set(predicted)

    # change_mode noop: the provider is replaced, the dependent re-renders but is not restarted.
    doc["cache-user"]["overrides"] = {"redis": {"image": "redis:7.4-alpine"}}
    predicted, moved = _change(s, tmp_path, doc)
    assert predicted == {"redis-cache-user": "rolling update"} and moved == set(predicted)


def test_plan_predicts_the_restarts_of_a_set_smaller_than_its_zones(cluster, tmp_path, monkeypatch):
    """web has fewer instances than zones: one group, at most one instance per zone, so a scale
    gains or loses an instance in some zone. api (one instance per zone) reads its zone's,
    and where its zone has none, web's instance with the lowest index, which a scale keeps;
    so exactly the api instance in the zone that changed moves, and api restarts."""
    s = cluster.standin
    doc = {
        "web": {"count": 1},
        "api": {"depends": ["web"]},
        "lb": {"depends": ["web"], "env": {"BACKENDS": "${web.addrs}"}},
    }
    _push(s, _write(tmp_path, doc))
    s.wait_for(lambda: _settled(s), timeout=30)
    # Two of api's zones have no web: they read the one there is.
    (only,) = [e["Service"] for e in s.consul.check_service_nodes("web", [])]
    for a in _allocs(s, "api"):
        env = s.task_view(a.id, "api")["Env"]
        assert (env["WEB_HOST"], env["WEB_PORT"]) == (only["Address"], str(only["Port"]))
    both = {
        "api": "template change (change_mode restart)",
        "lb": "template change (change_mode restart)",
    }
    for count in (2, 1):
        doc["web"]["count"] = count
        predicted, moved = _change(s, tmp_path, doc)
        assert predicted == both and moved == set(predicted)
    # Known-bad: a prediction that leaves out the zone that changed misses api's restart.
    from nomadgen import diff as diff_module

    monkeypatch.setattr(diff_module, "_zone_moves", lambda *a: False)
    doc["web"]["count"] = 2
    predicted, moved = _change(s, tmp_path, doc)
    assert set(predicted) == {"lb"} and moved == {"api", "lb"}


# -- the manifest side: references, wiring, tags and constraints --------------------------------


def _plan(doc):
    return resolve(parse(json.dumps(doc, indent=2), "m.json", "m"), Catalog())


def _task(doc, job="app"):
    (j,) = [j for j in render(_plan(doc)) if j.id == job]
    return j.api["TaskGroups"][0]["Tasks"][0]


def test_reference_syntax_is_defined_once():
    assert refs.parse("a ${psql.url} b") == ("a ", refs.Ref("psql", "url", 2), " b")
    assert refs.parse("$${psql.url}") == ("${psql.url}",)
    assert refs.parse("price$ 100%") == ("price$ 100%",)
    with pytest.raises(refs.RefError, match="unclosed"):
        refs.parse("x ${psql.url")
    with pytest.raises(refs.RefError, match="invalid reference"):
        refs.parse("${psql}")


def test_a_bad_reference_names_file_line_column_and_a_suggestion():
    doc = {
        "app": {
            "depends": ["psql", "redis"],
            "env": {"A": "${psq.url}", "B": "${psql.hots}", "C": "${cart.url}"},
        }
    }
    with pytest.raises(ResolutionError) as e:
        _plan(doc)
    text = "".join(f"{p.location}: {p.message} {p.hint}\n" for p in e.value.problems)
    assert "m.json:8:7: app.env.A: ${psq.url}" in text
    assert "did you mean 'psql'?" in text and "did you mean ${psql.host}?" in text
    assert "'cart', which is not a dependency of app" in text
    with pytest.raises(ManifestError, match="unclosed reference"):
        parse(json.dumps({"app": {"env": {"A": "${psql.url"}}}), "m.json", "m")


def test_mapped_names_replace_the_default_ones_and_keep_literal_text():
    task = _task(
        {
            "app": {
                "depends": ["psql", "redis"],
                "env": {
                    "DATABASE_URL": "${psql.url_with_password}",
                    "DB_NAME": "${psql.database}",
                    "ODD": '{{ "}}" }} %{x} ${redis.host}:${redis.port}/0 100%',
                },
            }
        }
    )
    env, (pg, rd) = task["Env"], task["Templates"]
    assert (
        env["DB_NAME"] == "app" and "PSQL_HOST" not in env and "PSQL_HOST" not in pg["EmbeddedTmpl"]
    )
    assert (
        'DATABASE_URL={{ printf "postgresql://app:%v@%v:%v/app" ((index $creds "password") | '
        "urlquery) .Address .Port | toJSON }}" in pg["EmbeddedTmpl"]
    )
    # Every other character is literal: a Go string with % doubled, quoted for the env file.
    assert (
        'ODD={{ printf "{{ \\"}}\\" }} %%{x} %v:%v/0 100%%" .Address .Port | toJSON }}'
        in rd["EmbeddedTmpl"]
    )
    assert "REDIS_HOST=" not in rd["EmbeddedTmpl"]


def test_overrides_of_user_and_database_flow_into_the_interface():
    doc = {
        "app": {
            "depends": ["psql"],
            "overrides": {"psql": {"env": {"POSTGRES_USER": "blog", "POSTGRES_DB": "posts"}}},
        }
    }
    task = _task(doc)
    assert task["Env"]["PSQL_USER"] == "blog" and task["Env"]["PSQL_DATABASE"] == "posts"
    assert 'printf "postgresql://blog@%v:%v/posts"' in task["Templates"][0]["EmbeddedTmpl"]


def test_several_sets_of_one_kind_get_their_own_names():
    doc = {
        "blog1": {"depends": ["mysql"]},
        "blog2": {"depends": ["mysql"]},
        "report": {
            "depends": ["mysql:blog1", "mysql:blog2"],
            "env": {"OLD": "${mysql:blog1.host}"},
        },
    }
    plan = _plan(doc)
    assert plan.get("report").prefixes == (
        ("mysql:blog1", "MYSQL_BLOG1"),
        ("mysql:blog2", "MYSQL_BLOG2"),
    )
    task = _task(doc, "report")
    assert task["Env"]["MYSQL_BLOG2_DATABASE"] == "app"
    with pytest.raises(ResolutionError, match="name one set"):
        _plan(
            {
                **doc,
                "report": {
                    "depends": ["mysql:blog1", "mysql:blog2"],
                    "env": {"X": "${mysql.host}"},
                },
            }
        )


def test_change_mode_zone_fallback_tags_and_constraints():
    doc = {
        "web": {
            "tags": ["traefik.enable=true"],
            "node_pool": "edge",
            "constraints": [{"attribute": "${node.class}", "value": "web"}],
        },
        "app": {
            "depends": ["web", "psql"],
            "wiring": {
                "web": {"change_mode": "restart"},
                "psql": {"change_mode": "noop", "zone_fallback": True},
            },
        },
    }
    plan = _plan(doc)
    jobs = {j.id: j.api for j in render(plan)}
    group = jobs["web"]["TaskGroups"][0]
    assert "traefik.enable=true" in group["Services"][0]["Tags"]
    assert {"LTarget": "${node.class}", "Operand": "=", "RTarget": "web"} in group["Constraints"]
    assert {"LTarget": "${node.pool}", "Operand": "=", "RTarget": "edge"} in group["Constraints"]
    tmpls = {t["DestPath"]: t for t in jobs["app"]["TaskGroups"][0]["Tasks"][0]["Templates"]}
    web = tmpls["local/nomadgen/web.env"]
    assert web["ChangeMode"] == "restart" and "ChangeSignal" not in web
    pg = tmpls["secrets/nomadgen/psql-app.env"]
    # Allowed to fall back: a zone without psql reads the instance with the lowest index of all.
    assert pg["ChangeMode"] == "noop"
    assert '{{- if lt $low 0 }}{{ range service "psql-app" }}' in pg["EmbeddedTmpl"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"depends": ["psql"], "wiring": {"psq": {}}}, "did you mean 'psql'?"),
        (
            {"depends": ["psql"], "wiring": {"psql": {"change_mode": "reload"}}},
            "unknown change_mode",
        ),
        # Nomad refuses a signal for an env template (nomad/structs/structs.go
        # Template.Validate): a job with one could never be submitted.
        (
            {
                "depends": ["psql"],
                "wiring": {"psql": {"change_mode": "signal", "signal": "SIGHUP"}},
            },
            "Nomad refuses a signal for an environment template",
        ),
        ({"depends": ["psql"], "wiring": {"psql": {"change_mode": "signal"}}}, "restart"),
        ({"depends": ["psql"], "wiring": {"psql": {"signal": "SIGHUP"}}}, "cannot re-read"),
        (
            {"depends": ["psql"], "wiring": {"psql": {"change_mode": "script"}}},
            "use restart or noop",
        ),
        ({"tags": ["${node.unique.id}"]}, "interpolates"),
        ({"constraints": [{"attribute": "node.class", "value": "x"}]}, "node attribute"),
        ({"constraints": [{"attribute": "${node.class}", "operator": "=="}]}, "did you mean '='?"),
        ({"node_pool": "bad pool"}, "node pool name"),
    ],
)
def test_bad_wiring_tags_and_constraints_are_refused(body, message):
    with pytest.raises(ManifestError) as e:
        parse(json.dumps({"app": body}, indent=2), "m.json", "m")
    assert any(message in (p.message + " " + p.hint) for p in e.value.problems), e.value.problems


def test_the_readme_example_renders_as_it_says():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### What your app gets", 1)[1]
    doc = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    task = _task(doc)
    assert task["Env"]["CACHE"] == "${NOMAD_IP_memcache_app}:${NOMAD_HOST_PORT_memcache_app}"
    assert task["Env"]["GREETING"] == "costs 5$, literal ${x}"
    tmpls = {t["DestPath"]: t for t in task["Templates"]}
    assert "DB_PASSWORD=" in tmpls["secrets/nomadgen/psql-app.env"]["EmbeddedTmpl"]
    assert tmpls["local/nomadgen/search.env"]["ChangeMode"] == "restart"


def test_the_own_zone_instance_stays_when_another_is_added():
    """consul-template lists instances by node, then ID: a new instance on a node that sorts
    first becomes `index . 0`. The rendered choice (lowest alloc index) does not move."""
    from nomad_standin import gotmpl

    (tmpl,) = _task({"web": {}, "api": {"depends": ["web"]}}, "api")["Templates"]
    text = tmpl["EmbeddedTmpl"]

    def inst(node, index, addr):
        meta = {"nomadgen_alloc_index": str(index)}
        return {
            "Node": node,
            "ID": f"_nomad-{node}",
            "Address": addr,
            "Port": 80,
            "ServiceMeta": meta,
        }

    def rendered(instances, template):
        def fetch(fn, arg):
            assert fn == "service" and arg.startswith("zone-a.web")
            return sorted(instances, key=lambda i: (i["Node"], i["ID"]))

        return gotmpl.Renderer(fetch, {"node.datacenter": "zone-a"}).render(template)

    one = [inst("node-b", 0, "10.0.0.2")]
    two = [*one, inst("node-a", 3, "10.0.0.1")]
    assert 'WEB_HOST="10.0.0.2"' in rendered(one, text)
    assert rendered(two, text) == rendered(one, text)
    # Known-bad: the first instance of consul-template's order switches to the new one.
    bad = (
        '{{- with service (print (env "node.datacenter") ".web") }}{{ with index . 0 }}\n'
        "WEB_HOST={{ .Address | toJSON }}\n{{- end }}{{ end }}\n"
    )
    assert rendered(two, bad) != rendered(one, bad)
