"""Environments: one manifest as dev, stage and prod. Config, precedence, scoped names,
collisions refused, interfaces per environment, and `nomadgen diff`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen import names
from nomadgen.cli import app
from nomadgen.errors import ConfigError, ResolutionError
from nomadgen.operations import interface_get
from nomadgen.pipeline import build, build_resolution
from nomadgen.settings import load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples/dockland.json")

CONFIG = """\
zones = ["zone-a", "zone-b", "zone-c"]

[env.dev]
namespace = "dev"

[env.stage]
namespace = "stage"

[env.prod]
namespace = "prod"

[env.prod.overrides."psql:app"]
image = "postgres:16.4-alpine"
resources = { memory = 2048 }

[env.prod.overrides.app]
per_zone = 2
"""


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("NOMAD", "CONSUL")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def _cfg(tmp_path: Path, text: str = CONFIG, **kw):
    path = tmp_path / "nomadgen.toml"
    path.write_text(text)
    return load_config(config=str(path), env={}, **kw)


def _manifest(tmp_path: Path, doc: dict) -> str:
    p = tmp_path / "dockland.json"
    p.write_text(json.dumps(doc))
    return str(p)


def test_without_an_environment_nothing_changes(tmp_path):
    plain = build(EXAMPLE, load_config(env={}))
    with_file = build(EXAMPLE, _cfg(tmp_path))  # environments declared, none selected
    assert [j.api for j in plain.jobs] == [j.api for j in with_file.jobs]
    assert plain.plan.manifest == "dockland"
    assert [j.id for j in plain.jobs] == ["app", "blog", "psql-app", "psql-blog", "worker"]


def test_an_environment_scopes_every_name_it_writes(tmp_path):
    r = build(EXAMPLE, _cfg(tmp_path, environment="prod"))
    assert [j.id for j in r.jobs] == [
        "prod-app",
        "prod-blog",
        "prod-psql-app",
        "prod-psql-blog",
        "prod-worker",
    ]
    assert r.plan.manifest == "dockland@prod"
    app = next(j.api for j in r.jobs if j.id == "prod-app")
    assert app["Namespace"] == "prod"
    assert app["Meta"]["nomadgen_manifest"] == "dockland@prod"
    services = {s["Name"] for s in app["TaskGroups"][0]["Services"]}
    assert services == {"prod-app", "prod-memcache-app"}
    tmpl = app["TaskGroups"][0]["Tasks"][0]["Templates"][0]["EmbeddedTmpl"]
    assert '".prod-psql-app")' in tmpl and 'nomadVar "nomad/jobs/prod-psql-app"' in tmpl
    assert 'key "nomadgen/dockland@prod/no-healthy-instance/prod-psql-app"' in tmpl
    assert "psql-app" not in tmpl.replace("prod-psql-app", "")  # nothing of another environment
    doc = json.loads(
        dict((k.key, k.value) for k in r.interfaces)[
            "nomadgen/dockland@prod/interfaces/prod-psql-app"
        ]
    )
    assert doc["dns"] == "prod-psql-app.service.consul"
    assert doc["credentials"] == "nomad/jobs/prod-psql-app"
    # the ACL policy names: the deployment's and every job-scoped one carry the scope
    assert names.policy_name(r.plan.manifest) == "nomadgen-dockland--prod"
    assert names.workload_policy_name(r.plan.manifest, "prod-app", "app", "app").startswith(
        "nomadgen-dockland-S-prod-"
    )


def test_an_environment_brings_its_own_cluster_settings(tmp_path):
    text = (
        'zones = ["zone-a", "zone-b", "zone-c"]\nnamespace = "top"\n\n[env.dev]\n\n'
        '[env.prod]\nzones = ["eu-1", "eu-2"]\nzone_attribute = "${meta.zone}"\n'
        'namespace = "prod"\nregion = "eu"\nconsul_datacenter = "dc2"\n'
        'datacenters = ["eu-dc"]\nkv_prefix = "ng"\n'
    )
    cfg = _cfg(tmp_path, text, environment="prod")
    r = cfg.render
    assert cfg.zones == ("eu-1", "eu-2")
    assert (r.zone_attribute, r.namespace, r.region) == ("${meta.zone}", "prod", "eu")
    assert (r.consul_datacenter, r.datacenters, r.kv_prefix) == ("dc2", ("eu-dc",), "ng")
    built = build(EXAMPLE, cfg)
    job = next(j.api for j in built.jobs if j.id == "prod-psql-app")
    assert (job["Namespace"], job["Region"], job["Datacenters"]) == ("prod", "eu", ["eu-dc"])
    assert [g["Constraints"][0]["RTarget"] for g in job["TaskGroups"]] == ["eu-1", "eu-2"]
    assert {g["Constraints"][0]["LTarget"] for g in job["TaskGroups"]} == {"${meta.zone}"}
    app_ = next(j.api for j in built.jobs if j.id == "prod-app")
    tmpl = app_["TaskGroups"][0]["Tasks"][0]["Templates"][0]["EmbeddedTmpl"]
    assert '".prod-psql-app@dc2")' in tmpl  # dependents read the environment's Consul DC
    assert {k.key.split("/interfaces/")[0] for k in built.interfaces} == {"ng/dockland@prod"}
    # dev declares none of them: the top level's, as without environments
    dev = _cfg(tmp_path, text, environment="dev")
    assert dev.zones == ("zone-a", "zone-b", "zone-c") and dev.render.namespace == "top"
    assert (dev.render.region, dev.render.consul_datacenter, dev.render.kv_prefix) == (
        "",
        "",
        "nomadgen",
    )
    # flags and NOMADGEN_* still win over the environment; NOMAD_NAMESPACE and NOMAD_REGION
    # do not (--env is the explicit choice), though they do without one
    path = str(tmp_path / "nomadgen.toml")
    shell = {"NOMAD_NAMESPACE": "shell", "NOMAD_REGION": "shell", "NOMADGEN_ZONES": "z1,z2"}
    got = load_config(config=path, environment="prod", env=shell)
    assert (got.render.namespace, got.render.region, got.zones) == ("prod", "eu", ("z1", "z2"))
    flags = load_config(
        config=path, environment="prod", namespace="n", region="r", kv_prefix="k", env={}
    )
    assert (flags.render.namespace, flags.render.region, flags.render.kv_prefix) == (
        "n",
        "r",
        "k",
    )
    plain = load_config(config=path, env=shell)
    assert (plain.render.namespace, plain.render.region) == ("shell", "shell")


def test_environment_values_apply_and_nomadgen_env_selects(tmp_path, monkeypatch):
    path = tmp_path / "nomadgen.toml"
    path.write_text(CONFIG)
    cfg = load_config(config=str(path), env={"NOMADGEN_ENV": "prod"})
    _, plan = build_resolution(EXAMPLE, cfg)
    assert plan.get("psql:app").run.image == "postgres:16.4-alpine"
    assert plan.get("psql:app").run.resources.memory == 2048
    assert plan.get("app").instance_count == 6 and plan.get("memcache:app").instance_count == 6
    _, dev = build_resolution(EXAMPLE, _cfg(tmp_path, environment="dev"))
    assert dev.get("psql:app").run.image == "postgres:16-alpine"  # the template's
    assert dev.get("app").instance_count == 3


def test_precedence_flag_over_var_file_over_environment_over_manifest_over_template(tmp_path):
    m = _manifest(
        tmp_path,
        {
            "app": {
                "depends": ["psql"],
                "overrides": {
                    "psql": {
                        "image": "postgres:17-alpine",
                        "env": {"A": "manifest", "B": "manifest"},
                    }
                },
            }
        },
    )
    text = (
        CONFIG
        + '\n[env.stage.overrides."psql:app"]\nimage = "postgres:16.1"\nenv = { A = "env" }\n'
    )
    json_vars = tmp_path / "vars.json"
    json_vars.write_text(
        json.dumps({"psql:app": {"image": "postgres:16.2", "resources": {"cpu": 900}}})
    )
    toml_vars = tmp_path / "vars.toml"
    toml_vars.write_text('["psql:app"]\nimage = "postgres:16.3"\n')

    def psql(**kw):
        return build_resolution(m, _cfg(tmp_path, text, **kw))[1].get("psql:app").run

    assert psql().image == "postgres:17-alpine"  # manifest over template
    assert dict(psql().env)["A"] == "manifest"
    stage = psql(environment="stage")
    assert stage.image == "postgres:16.1"  # environment over manifest
    assert dict(stage.env)["A"] == "env" and dict(stage.env)["B"] == "manifest"  # merged key by key
    files = psql(environment="stage", var_files=(str(json_vars),))
    assert files.image == "postgres:16.2" and files.resources.cpu == 900
    later = psql(environment="stage", var_files=(str(json_vars), str(toml_vars)))
    assert later.image == "postgres:16.3"  # a later var file wins
    flag = psql(
        environment="stage",
        var_files=(str(json_vars),),
        sets=("psql:app.image=postgres:16.9", "psql:app.resources.memory=4096"),
    )
    assert (
        flag.image == "postgres:16.9"
        and flag.resources.memory == 4096
        and flag.resources.cpu == 900
    )


def test_a_declared_service_takes_values_too(tmp_path):
    _, plan = build_resolution(
        EXAMPLE,
        _cfg(
            tmp_path,
            sets=("worker.image=busybox:1.37", 'worker.args=["-v"]', "worker.env.MODE=batch"),
        ),
    )
    w = plan.get("worker").run
    assert (w.image, w.args, dict(w.env)) == ("busybox:1.37", ("-v",), {"MODE": "batch"})


def test_unknown_environment_is_a_config_error_with_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path, environment="prd")
    assert "did you mean 'prod'" in e.value.hint and "dev, prod, stage" in e.value.hint
    assert e.value.location.endswith("nomadgen.toml:3:1")  # where the environments start
    other = tmp_path / "other.toml"
    other.write_text('zones = ["a"]\n')
    with pytest.raises(ConfigError) as e:
        load_config(config=str(other), env={"NOMADGEN_ENV": "prod"})  # this file declares none
    assert "from NOMADGEN_ENV" in e.value.subject and "declare [env.prod]" in e.value.hint


def test_bad_environment_tables_point_at_their_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path, '[env.prod]\nnamespce = "prod"\nscope = "Prod!"\nzones = "a"\n')
    got = [p.message for p in e.value.problems]
    locs = sorted(p.location.rsplit("/", 1)[-1] for p in e.value.problems)
    assert locs == ["nomadgen.toml:2:1", "nomadgen.toml:3:1", "nomadgen.toml:4:1"], got
    assert any("did you mean 'namespace'" in p.hint for p in e.value.problems)


def test_every_wrong_value_has_its_place_and_a_hint(tmp_path):
    vars_ = tmp_path / "prod.toml"
    vars_.write_text('[app]\nimage = "a b"\nargs = "-v"\nenv = 3\ntags = [1]\n')
    sets = ("worker.env.N=1", "worker.resources=2", 'blog.overrides={"psql": 1}')
    with pytest.raises(ConfigError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, var_files=(str(vars_),), sets=sets))
    # the hint, or an example in the message itself ("must be an object like {...}")
    got = {
        (p.location.rsplit("/", 1)[-1], p.message.split(":")[0]): p.hint
        or p.message.partition(" like ")[2]
        for p in e.value.problems
    }
    assert set(got) == {
        ("prod.toml:2:1", "app.image"),
        ("prod.toml:3:1", "app.args"),
        ("prod.toml:4:1", "app.env"),
        ("prod.toml:5:1", "app.tags"),
        ("--set 'worker.env.N=1'", "worker.env.N"),
        ("--set 'worker.resources=2'", "worker.resources"),
        ("--set 'blog.overrides={\"psql\": 1}'", "blog.overrides"),
    }, got
    assert all(got.values()), got
    # the shell took the user's quotes: the hint shows a --set that works
    assert got[("--set 'worker.env.N=1'", "worker.env.N")] == (
        """a --set value is read as JSON: --set 'worker.env.N="1"'"""
    )


def test_a_wrong_value_is_reported_even_when_a_later_source_overrides_it(tmp_path):
    text = CONFIG.replace("per_zone = 2", "per_zone = 0")
    with pytest.raises(ConfigError) as e:
        build_resolution(
            EXAMPLE, _cfg(tmp_path, text, environment="prod", sets=("app.per_zone=2",))
        )
    [p] = e.value.problems
    assert (
        p.location.endswith("nomadgen.toml:17:1") and "app.per_zone: 0 is out of range" in p.message
    )
    # the same value, right: the flag wins
    _, plan = build_resolution(
        EXAMPLE, _cfg(tmp_path, environment="prod", sets=("app.per_zone=1",))
    )
    assert plan.get("app").instance_count == 3


def test_a_set_that_runs_elsewhere_has_no_image(tmp_path):
    m = _manifest(
        tmp_path,
        {
            "app": {"depends": ["db"]},
            "db": {"external": {"address": "db.example.com", "port": 5432}},
        },
    )
    with pytest.raises(ConfigError) as e:
        build_resolution(m, _cfg(tmp_path, sets=("db.image=postgres:16",)))
    assert "db: runs elsewhere" in e.value.problems[0].message
    assert e.value.problems[0].location == "--set 'db.image=postgres:16'"


def test_a_var_file_error_points_at_its_line(tmp_path):
    vars_ = tmp_path / "prod.json"
    vars_.write_text('{\n  "app": {\n    "per_zone": "2"\n  }\n}\n')
    with pytest.raises(ConfigError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, var_files=(str(vars_),)))
    assert e.value.problems[0].location == f"{vars_}:3:5"
    assert e.value.exit_code == 6


def test_two_environments_with_one_scope_collide(tmp_path):
    text = '[env.blue]\nnamespace = "a"\nscope = "live"\n[env.green]\nnamespace = "b"\nscope = "live"\n'
    with pytest.raises(ResolutionError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, text, environment="blue"))
    msgs = " ".join(p.message for p in e.value.problems)
    # different namespaces keep the jobs apart, but not Consul's services and KV
    assert "environments blue and green would both write service 'live-app'" in msgs
    assert "KV root 'nomadgen/dockland@live'" in msgs
    assert "would both write job" not in msgs
    assert e.value.exit_code == 4


def test_one_scope_collides_across_consul_datacenters_and_regions(tmp_path):
    """Known-bad for a check that takes consul_datacenter or the region as a separate space:
    nomadgen writes KV through one Consul agent and Nomad ACL policies are global."""
    text = (
        '[env.blue]\nnamespace = "a"\nregion = "eu"\nconsul_datacenter = "dc1"\nscope = "live"\n'
        '[env.green]\nnamespace = "b"\nregion = "us"\nconsul_datacenter = "dc2"\nscope = "live"\n'
    )
    with pytest.raises(ResolutionError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, text, environment="green"))
    msgs = [p.message for p in e.value.problems]
    assert any("would both write service 'live-app'" in m and "in one Consul" in m for m in msgs)
    assert any("would both write KV root 'nomadgen/dockland@live'" in m for m in msgs)
    assert any("ACL policy 'nomadgen-dockland--live'" in m and "global" in m for m in msgs)
    assert not any("would both write job" in m or "variable" in m for m in msgs), msgs
    # a scope of its own for each: no collision, whatever else they share
    build_resolution(
        EXAMPLE, _cfg(tmp_path, text.replace('scope = "live"\n', "", 1), environment="green")
    )


def test_a_kv_root_inside_another_environments_root_collides(tmp_path):
    text = (
        '[env.a]\nscope = ""\nnamespace = "a"\nkv_prefix = "nomadgen"\n'
        '[env.b]\nkv_prefix = "nomadgen/dockland"\n'
    )
    for env in ("a", "b"):
        with pytest.raises(ResolutionError) as e:
            build_resolution(EXAMPLE, _cfg(tmp_path, text, environment=env))
        [p] = e.value.problems
        assert "would write KV roots one inside the other" in p.message, p.message
        assert "'nomadgen/dockland'" in p.message and "'nomadgen/dockland/dockland@b'" in p.message
    # a prefix beside the root, not inside it: no collision
    build_resolution(
        EXAMPLE, _cfg(tmp_path, text.replace("nomadgen/dockland", "ng"), environment="b")
    )


def test_unscoped_environments_in_one_namespace_collide_on_jobs(tmp_path):
    text = '[env.a]\nscope = ""\n[env.b]\nscope = ""\n'
    with pytest.raises(ResolutionError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, text, environment="a"))
    assert "would both write job 'app'" in " ".join(p.message for p in e.value.problems)


def test_distinct_environments_write_disjoint_names(tmp_path):
    from nomadgen.envplan import written_names

    got = {}
    for env in ("dev", "stage", "prod"):
        cfg = _cfg(tmp_path, environment=env)
        got[env] = written_names(build_resolution(EXAMPLE, cfg)[1], cfg.render)
    for a in got:
        for b in got:
            if a < b:
                for what in got[a]:
                    assert not got[a][what] & got[b][what], (a, b, what)


class FakeConsul:
    def __init__(self, tree):
        self.tree = tree

    def kv_tree(self, prefix):
        return {k: v for k, v in self.tree.items() if k.startswith(prefix)}

    def kv_get(self, key):
        return self.tree.get(key)

    def healthy(self, service):
        return [
            {
                "Node": {"Node": f"n-{service}", "Address": "10.0.0.1"},
                "Service": {"Address": "", "Port": 1, "Tags": []},
            }
        ]


def test_interface_get_reads_the_environments_own_document(tmp_path):
    tree = {}
    for env in ("dev", "prod"):
        r = build(EXAMPLE, _cfg(tmp_path, environment=env))
        tree.update({k.key: (k.value, 1) for k in r.interfaces})
    view = interface_get("psql:app", _cfg(tmp_path, environment="prod"), FakeConsul(tree))
    assert view.key == "nomadgen/dockland@prod/interfaces/prod-psql-app"
    assert view.document["service"] == "prod-psql-app"
    assert view.instances[0]["node"] == "n-prod-psql-app"
    named = interface_get(
        "psql:app", _cfg(tmp_path, environment="dev"), FakeConsul(tree), "dockland"
    )
    assert named.key == "nomadgen/dockland@dev/interfaces/dev-psql-app"


def test_discovery_scope_is_the_environment_name_or_the_configured_scope(tmp_path):
    from nomadgen.discovery import _env_settings

    # no nomadgen.toml: the default scope, KV prefix and domain
    assert _env_settings("prod", None) == ("prod", "nomadgen", "consul")
    (tmp_path / "nomadgen.toml").write_text(
        'consul_domain = "corp"\n[env.prod]\nscope = "p"\nkv_prefix = "ng"\n'
    )
    assert _env_settings("prod", None) == ("p", "ng", "corp")


def test_diff_shows_what_prod_gets_that_stage_has_not(tmp_path):
    (tmp_path / "nomadgen.toml").write_text(CONFIG)
    res = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prod", "--json"])
    assert res.exit_code == 1, res.output
    sets = json.loads(res.stdout)["sets"]
    assert sets["psql:app"]["image"] == ["postgres:16-alpine", "postgres:16.4-alpine"]
    assert sets["psql:app"]["memory"][1] == 2048
    assert sets["app"]["count"] == [3, 6]
    assert "storage" not in sets["psql:app"]  # same storage in both
    assert "blog" not in sets and "worker" not in sets
    same = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "dev", "--env", "stage"])
    assert same.exit_code == 0 and "render the same sets" in same.stdout
    text = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prod"])
    assert 'image: stage "postgres:16-alpine"  ->  prod "postgres:16.4-alpine"' in text.stdout
    one = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "prod"])
    assert one.exit_code == 2 and "exactly two" in one.stderr
    (tmp_path / "nomadgen.toml").write_text(
        CONFIG + '\n[env.prod.overrides."psql:blog"]\nstate = { storage = "host", size = 4096 }\n'
    )
    disk = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prod", "--json"])
    assert disk.exit_code == 1, disk.output
    assert json.loads(disk.stdout)["sets"]["psql:blog"] == {
        "storage": ["ephemeral 1024 MB", "host 4096 MB"]
    }
    (tmp_path / "nomadgen.toml").write_text(
        CONFIG.replace("[env.prod]\n", '[env.prod]\nzones = ["zone-a", "zone-b", "zone-d"]\n')
    )
    moved = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prod", "--json"])
    got = json.loads(moved.stdout)["sets"]
    assert got["psql:blog"] == {  # the same count, in another zone: not the same job
        "zones": [{"zone-a": 1, "zone-b": 1, "zone-c": 1}, {"zone-a": 1, "zone-b": 1, "zone-d": 1}]
    }
    assert got["memcache:app"]["zones"][1] == {"zone-a": 2, "zone-b": 2, "zone-d": 2}
    nope = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prd"])
    assert nope.exit_code == 6 and "did you mean 'prod'" in nope.stderr


def test_every_command_takes_env(tmp_path):
    (tmp_path / "nomadgen.toml").write_text(CONFIG)
    res = CliRunner().invoke(
        app, ["resolve", EXAMPLE, "--env", "prod", "--set", "blog.per_zone=2", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["manifest"] == "dockland@prod"
    g = CliRunner().invoke(app, ["graph", EXAMPLE, "--env", "prod"])
    assert (
        g.exit_code == 0 and 'digraph "dockland@prod"' in g.stdout and 'label="prod-app' in g.stdout
    )
    # (plan, submit, status, destroy and interface get with --env: tests/test_env_cluster.py)
    for cmd in ("render", "resolve", "graph", "plan", "submit", "status", "destroy"):
        h = CliRunner().invoke(app, [cmd, "--help"])
        assert "--env" in h.stdout and "--var-file" in h.stdout and "--set" in h.stdout, cmd
    assert "--env" in CliRunner().invoke(app, ["interface", "get", "--help"]).stdout


def test_scoped_root_never_under_unscoped():
    assert not names.kv_root("nomadgen", "dockland", "prod").startswith(
        names.kv_root("nomadgen", "dockland") + "/"
    )


def test_tags_per_environment_on_services_of_the_manifest_only(tmp_path):
    _, plan = build_resolution(EXAMPLE, _cfg(tmp_path, sets=('app.tags=["traefik.enable=true"]',)))
    assert plan.get("app").tags == ("traefik.enable=true",)
    with pytest.raises(ConfigError) as e:
        build_resolution(EXAMPLE, _cfg(tmp_path, sets=('psql:app.tags=["x"]',)))
    assert "extra Consul tags belong to services of the manifest" in e.value.problems[0].message


def test_an_environment_has_its_own_storage_table(tmp_path):
    text = CONFIG + '\n[env.prod.storage]\nmode = "host"\n[storage]\nmode = "ephemeral"\n'
    assert _cfg(tmp_path, text, environment="prod").render.storage == "host"
    assert _cfg(tmp_path, text, environment="dev").render.storage == "ephemeral"
    with pytest.raises(ConfigError):
        _cfg(tmp_path, text.replace('mode = "host"', 'mode = "nfs"'), environment="prod")


def test_the_readme_example_works_as_written(tmp_path):
    """The dev/stage/prod nomadgen.toml of the README's Environments section, as printed there."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Environments: dev, stage and prod") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    (tmp_path / "nomadgen.toml").write_text(block[: block.index("```")])
    jobs = {}
    for env in ("dev", "stage", "prod"):
        cfg = load_config(environment=env, env={})
        assert cfg.render.namespace == env
        jobs[env] = {j.id: j.api for j in build(EXAMPLE, cfg).jobs}
    assert sorted(jobs["prod"]) == [
        f"prod-{j}" for j in ("app", "blog", "psql-app", "psql-blog", "worker")
    ]
    psql = jobs["prod"]["prod-psql-app"]["TaskGroups"][0]
    assert psql["Tasks"][0]["Config"]["image"] == "postgres:16.4-alpine"
    assert psql["Tasks"][0]["Resources"]["MemoryMB"] == 2048
    assert psql["Volumes"]["data"]["Type"] == "host"
    res = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "stage", "--env", "prod", "--json"])
    sets = json.loads(res.stdout)["sets"]
    assert res.exit_code == 1 and sorted(sets) == ["app", "memcache:app", "psql:app"], sets
    assert sets["app"]["env"] == [{}, {"LOG_LEVEL": "warn"}] and sets["app"]["count"] == [3, 6]
    same = CliRunner().invoke(app, ["diff", EXAMPLE, "--env", "dev", "--env", "stage"])
    assert same.exit_code == 0, same.output
