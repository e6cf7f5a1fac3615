"""The seed's semantics, rule by rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nomadgen.catalog import Catalog
from nomadgen.errors import ConfigError, ResolutionError
from nomadgen.manifest import parse
from nomadgen.model import EXTERNAL, NODE_LOCAL, PER_ZONE
from nomadgen.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]


def plan_of(manifest: dict, zones=("zone-a", "zone-b", "zone-c"), templates=None):
    m = parse(json.dumps(manifest, indent=2), "m.json", "m")
    return resolve(m, Catalog(templates), zones)


def test_seed_example_contract():
    m = parse((ROOT / "examples/dockland.json").read_text(), "dockland.json", "dockland")
    plan = resolve(m, Catalog())
    names = [s.name for s in plan.sets]
    assert names == [
        "app",
        "blog",
        "memcache:app",
        "memcache:blog",
        "psql:app",
        "psql:blog",
        "worker",
    ]
    # app and blog each get their own psql and memcache; worker shares app's psql.
    assert plan.get("app").depends == ("memcache:app", "psql:app")
    assert plan.get("blog").depends == ("memcache:blog", "psql:blog")
    assert plan.get("worker").depends == ("psql:app",)
    assert plan.get("psql:app").users == ("app", "worker")
    # psql is one instance in each zone; memcache is on the node of each app instance.
    zones = sorted(i.zone for i in plan.instances if i.set == "psql:app")
    assert zones == ["zone-a", "zone-b", "zone-c"]
    mc = plan.get("memcache:app")
    assert (
        mc.scheduling == NODE_LOCAL
        and mc.host == "app"
        and mc.instance_count == plan.get("app").instance_count
    )
    assert plan.get("app").embedded == ("memcache:app",)
    assert plan.layers == (("psql:app", "psql:blog"), ("app", "blog", "worker"))


def test_generic_dependency_is_dedicated_per_dependent():
    plan = plan_of({"a": {"depends": ["redis"]}, "b": {"depends": ["redis"]}})
    assert {s.name for s in plan.sets} == {"a", "b", "redis:a", "redis:b"}
    assert plan.get("redis:a").users == ("a",)


def test_specific_set_is_shared():
    plan = plan_of({"a": {"depends": ["redis"]}, "b": {"depends": ["redis:a"]}})
    assert "redis:b" not in {s.name for s in plan.sets}
    assert plan.get("redis:a").users == ("a", "b")


def test_missing_specific_set_names_both_sides():
    with pytest.raises(ResolutionError) as e:
        plan_of({"app": {}, "worker": {"depends": ["psql:app"]}})
    text = str(e.value)
    assert "worker depends on psql:app, but nothing creates set psql:app" in text
    assert 'app does not depend on psql; add "psql" to app\'s depends' in text


def test_declared_service_dependency_shares_its_set():
    plan = plan_of({"checkout": {"depends": ["cart"]}, "cart": {}, "web": {"depends": ["cart"]}})
    assert plan.get("cart").users == ("checkout", "web")
    assert not any(":" in s.name for s in plan.sets)
    assert plan.layers == (("cart",), ("checkout", "web"))


def test_declared_service_wins_over_template_of_same_name():
    plan = plan_of({"redis": {"image": "example/my-redis:1"}, "app": {"depends": ["redis"]}})
    assert plan.get("app").depends == ("redis",)
    assert plan.get("redis").declared


def test_template_dependencies_resolve_recursively(tmp_path):
    (tmp_path / "pool.toml").write_text(
        'depends = ["psql"]\n[run]\nimage = "x/pool:1"\nports = { pg = 5432 }\n'
        '[interface]\nprotocol = "postgresql"\nport = "pg"\n'
    )
    plan = plan_of({"app": {"depends": ["pool"]}}, templates=tmp_path)
    assert plan.get("pool:app").depends == ("psql:pool:app",)
    assert plan.get("psql:pool:app").owner == "pool:app"
    assert plan.layers == (("psql:pool:app",), ("pool:app",), ("app",))


def test_cycle_is_printed():
    with pytest.raises(ResolutionError) as e:
        plan_of({"a": {"depends": ["b"]}, "b": {"depends": ["c"]}, "c": {"depends": ["a"]}})
    assert "a -> b -> c -> a" in str(e.value)


def test_self_dependency_is_a_cycle():
    with pytest.raises(ResolutionError, match="a -> a"):
        plan_of({"a": {"depends": ["a"]}})


def test_unknown_generic_service_suggests():
    with pytest.raises(ResolutionError) as e:
        plan_of({"a": {"depends": ["postgres"]}, "b": {"depends": ["memcahe"]}})
    text = str(e.value)
    assert "'postgres', which is neither a service in the manifest nor a known template" in text
    assert "did you mean 'memcache'?" in text


def test_dns_collision_is_an_error():
    with pytest.raises(ResolutionError, match="both become job and service 'redis-a'"):
        plan_of({"a": {"depends": ["redis"]}, "redis-a": {}})


def test_too_long_set_name_is_an_error():
    long = "a" * 60
    with pytest.raises(ResolutionError, match="not a valid Nomad job ID"):
        plan_of({long: {"depends": ["redis"]}})


def test_several_sets_of_one_type_get_names_after_the_set():
    plan = plan_of({"a": {"depends": ["psql"]}, "b": {"depends": ["psql", "psql:a"]}})
    assert plan.get("b").prefixes == (("psql:a", "PSQL_A"), ("psql:b", "PSQL_B"))
    assert plan.get("a").prefixes == (("psql:a", "PSQL"),)


def test_counts_and_per_zone():
    plan = plan_of({"web": {"count": 5}, "q": {"per_zone": 2}}, zones=("z1", "z2"))
    assert plan.get("web").instance_count == 5 and plan.get("web").per_zone_max == 3
    assert plan.get("q").instance_count == 4 and plan.get("q").per_zone_max == 2
    per_zone = [i.zone for i in plan.instances if i.set == "web"]
    assert per_zone.count("z1") == 3 and per_zone.count("z2") == 2


def test_template_scheduling_per_zone_count_follows_zones():
    plan = plan_of({"a": {"depends": ["psql"]}}, zones=("z1", "z2", "z3", "z4"))
    assert plan.get("psql:a").instance_count == 4 and plan.get("psql:a").scheduling == PER_ZONE


@pytest.mark.parametrize("zones", [(), ("a", "a"), ("a b",), ("a,b",)])
def test_bad_zones(zones):
    with pytest.raises(ConfigError):
        plan_of({"a": {}}, zones=zones)


def test_resolution_is_deterministic():
    doc = {"z": {"depends": ["psql", "memcache"]}, "a": {"depends": ["psql:z", "redis"]}}
    p1 = plan_of(doc)
    p2 = plan_of(dict(reversed(list(doc.items()))))
    assert p1.sets == p2.sets and p1.instances == p2.instances and p1.layers == p2.layers


def test_overrides_tune_only_the_dependents_own_set():
    plan = plan_of(
        {
            "app": {
                "depends": ["psql"],
                "overrides": {
                    "psql": {"image": "postgres:17-alpine", "per_zone": 2, "env": {"TZ": "UTC"}}
                },
            },
            "blog": {"depends": ["psql"]},
        }
    )
    a, b = plan.get("psql:app"), plan.get("psql:blog")
    assert (
        a.run.image == "postgres:17-alpine" and a.instance_count == 6 and ("TZ", "UTC") in a.run.env
    )
    assert ("POSTGRES_DB", "app") in a.run.env  # merged over the template's env
    assert b.run.image == "postgres:16-alpine" and b.instance_count == 3


def test_overrides_must_name_a_generic_dependency():
    from nomadgen.errors import ManifestError

    with pytest.raises(ManifestError, match="not a generic dependency"):
        plan_of({"app": {"depends": ["psql"], "overrides": {"redis": {"image": "r:1"}}}})
    with pytest.raises(ResolutionError, match="app overrides 'cart'"):
        plan_of({"app": {"depends": ["cart"], "overrides": {"cart": {"image": "c:2"}}}, "cart": {}})


def test_every_set_has_an_explicit_kind_and_one_answer_for_its_job():
    plan = plan_of(
        {
            "app": {"image": "app:1", "depends": ["psql", "memcache", "legacy"]},
            "legacy": {"external": {"address": "10.0.0.9", "port": 5432}},
        }
    )
    kinds = {s.name: s.kind for s in plan.sets}
    assert kinds == {
        "app": PER_ZONE,
        "psql:app": PER_ZONE,
        "memcache:app": NODE_LOCAL,
        "legacy": EXTERNAL,
    }
    # The job a set's tasks run in: its own, its host's, or none of ours.
    assert plan.job_of("psql:app") == "psql-app"
    assert plan.job_of("memcache:app") == "app"
    assert plan.job_of("legacy") == ""
    assert [s.name for s in plan.sets if s.job_hosted] == ["app", "psql:app"]
    assert not [i for i in plan.instances if i.set == "legacy"]
    assert plan.layers == (("psql:app",), ("app",))
