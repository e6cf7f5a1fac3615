"""Every address a dependent is given reaches a task of the set it depends on (issue 7, point 5).

The stand-in's network model (dev/standin/nomad_standin/network.py) knows each allocation's port
mappings, as Docker and Nomad's client set them up. Here a manifest with every kind of set
(per-zone: stateful with and without zone fallback, stateless; node-local; external) is pushed,
and every address in each dependent's environment and rendered templates, default names and
mapped ones, is dialled from that dependent's task: it must reach a running task of the very set
it names (in the dependent's own zone for per-zone sets, beside it for a node-local one)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from nomadgen import render as render_mod
from nomadgen.backends import connect
from nomadgen.converge import apply
from nomadgen.operations import prepare
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

LEGACY = ("10.20.30.40", 5432)
DOC: dict[str, Any] = {
    # Default names for every field of every dependency (PSQL_HOST, MEMCACHE_ADDR, ...).
    "app": {"depends": ["psql", "redis", "memcache", "search", "legacy-db"]},
    # Names of its own: URLs with a password, host and port apart, instance lists.
    "billing": {
        "depends": ["psql:app", "memcache", "search", "legacy-db"],
        "env": {
            "DATABASE_URL": "${psql:app.url_with_password}",
            "DB": "${psql:app.host}:${psql:app.port}",
            "CACHE": "${memcache.addr}",
            "SEARCH_URL": "http://${search.host}:${search.port}/",
            "SEARCH_ALL": "${search.addrs}",
            "LEGACY": "${legacy-db.addr}",
        },
    },
    "search": {"image": "elasticsearch:8.13.0", "ports": {"http": 9200}},
    "legacy-db": {"external": {"address": LEGACY[0], "port": LEGACY[1]}, "protocol": "postgresql"},
}
# Which set each variable of a dependent names: (job of the set, kind).
EXPECT = {
    "app": {
        "PSQL": ("psql-app", "per-zone"),
        "REDIS": ("redis-app", "per-zone"),
        "MEMCACHE": ("memcache-app", "node-local"),
        "SEARCH": ("search", "per-zone"),
        "LEGACY_DB": ("legacy-db", "external"),
    },
    "billing": {
        "DATABASE_URL": ("psql-app", "per-zone"),
        "DB": ("psql-app", "per-zone"),
        "CACHE": ("memcache-billing", "node-local"),
        "SEARCH_URL": ("search", "per-zone"),
        "SEARCH_ALL": ("search", "any-zone"),
        "LEGACY": ("legacy-db", "external"),
    },
}

# host:port, where host is an IPv4 address or a Consul DNS name (reach() resolves those).
_ADDR = re.compile(
    r"(?<![\w.-])((?:\d{1,3}\.){3}\d{1,3}|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.consul):(\d{1,5})(?!\d)"
)


def given_addresses(env: dict[str, str], templates: list[dict]) -> list[tuple[str, str]]:
    """(variable, host:port) for every address a task is given: inside each value of its
    environment and of its rendered templates' KEY=VALUE lines, and each X_HOST with its X_PORT.
    Nomad's own NOMAD_* variables (the task's own ports) are not what a dependency gives."""
    values: dict[str, str] = {}
    for t in templates:
        for line in (t.get("Rendered") or "").splitlines():
            key, eq, value = line.partition("=")
            if not eq:
                assert not _ADDR.search(line), f"{t['DestPath']}: an address without a name"
                continue
            values[key.strip()] = json.loads(value) if value.startswith('"') else value
    values.update(env)
    out = []
    for key, value in sorted(values.items()):
        if key.startswith("NOMAD_"):
            continue
        out += [(key, f"{host}:{port}") for host, port in _ADDR.findall(value)]
        if key.endswith("_HOST") and f"{key[:-5]}_PORT" in values:
            out.append((key[:-5], f"{value}:{values[key[:-5] + '_PORT']}"))
    return out


def _expected(table: dict[str, tuple[str, str]], var: str) -> tuple[str, str]:
    if var in table:
        return table[var]
    prefix = max((p for p in table if var.startswith(p + "_")), key=len, default="")
    assert prefix, f"{var} carries an address no dependency explains"
    return table[prefix]


def judge(s, alloc, task: str, given, expect: dict[str, tuple[str, str]]) -> list[str]:
    """What is wrong with the addresses `given` to a task (`expect`: variable or prefix ->
    the job of the set it names, its kind): an address that reaches nothing, a task of another
    set, another zone's instance of a per-zone set, or a dependency that gave no address."""
    bad = []
    for var, addr in given:
        job, kind = _expected(expect, var)
        ep = s.reach(addr, source=(alloc.id, task))
        if ep is None:
            bad.append(f"{var}={addr} reaches nothing")
        elif kind == "node-local" and (ep.alloc_id, ep.task) != (alloc.id, job):
            bad.append(f"{var}={addr} reaches {ep.job_id}/{ep.task}, not its own {job}")
        elif kind != "node-local" and ep.job_id != job:
            bad.append(f"{var}={addr} reaches {ep.job_id}/{ep.task}, not {job}")
        elif (
            kind == "per-zone"
            and s.nomad.node_by_name(ep.node)["Datacenter"] != (alloc.node["Datacenter"])
        ):
            bad.append(f"{var}={addr} reaches {job} on {ep.node}, not in its own zone")
    # Every dependency gave something: a variable that silently went missing is a failure too.
    for prefix in expect:
        if not any(v == prefix or v.startswith(prefix + "_") for v, _ in given):
            bad.append(f"{prefix}: no address at all")
    return bad


def unreachable(s, alloc, task: str, expect: dict[str, tuple[str, str]]) -> list[str]:
    """judge() over what the task sees now."""
    view = s.task_view(alloc.id, task)
    return judge(s, alloc, task, given_addresses(view["Env"], view["Templates"]), expect)


def _push(s, doc: dict, tmp_path) -> None:
    path = tmp_path / "dockland.json"
    path.write_text(json.dumps(doc))
    cfg = load_config(env={})
    nomad, consul = connect(
        nomad_endpoint(address=s.nomad_addr, env={}), consul_endpoint(address=s.consul_addr, env={})
    )
    prep = prepare(str(path), cfg, nomad, consul, name="dockland")
    report = apply(prep.changes, nomad, consul, cfg.render, wait=True, timeout=60)
    assert report.ok, report


def _allocs(s, job: str) -> list:
    return [a for a in list(s.nomad.allocs.values()) if a.job_id == job and a.desired == "run"]


def _settled(s, dependent: str, n: int) -> list:
    """The dependent's n allocations once each task runs with every template rendered."""

    def ready():
        allocs = _allocs(s, dependent)
        if len(allocs) != n:
            return None
        for a in allocs:
            view = s.task_view(a.id, dependent)
            if view["State"] != "running" or any(
                t.get("Error") or "Rendered" not in t for t in view["Templates"]
            ):
                return None
        return allocs

    return s.wait_for(ready, timeout=30)


def test_every_address_a_dependent_is_given_reaches_the_set_it_depends_on(cluster, tmp_path):
    s = cluster.standin
    if s is None:
        pytest.skip("reads the stand-in's network model")
    s.add_external(f"{LEGACY[0]}:{LEGACY[1]}", "legacy-db")
    _push(s, DOC, tmp_path)
    for dependent in ("app", "billing"):
        allocs = _settled(s, dependent, 3)
        assert {a.node["Datacenter"] for a in allocs} == {"zone-a", "zone-b", "zone-c"}
        for a in allocs:
            assert unreachable(s, a, dependent, EXPECT[dependent]) == [], a.node["Name"]
    # Known-bad: the judge refuses another set's task, another zone's instance, a dependency
    # that gave nothing (and, below, an address that reaches nothing).
    by_zone = {a.node["Datacenter"]: a for a in _allocs(s, "app")}
    a, b = by_zone["zone-a"], by_zone["zone-b"]
    env_a, env_b = (s.task_view(x.id, "app")["Env"] for x in (a, b))
    other_set = [("PSQL", f"{env_a['REDIS_HOST']}:{env_a['REDIS_PORT']}")]
    other_zone = [("PSQL", f"{env_b['PSQL_HOST']}:{env_b['PSQL_PORT']}")]
    psql = {"PSQL": EXPECT["app"]["PSQL"]}
    assert judge(s, a, "app", other_set, psql) == [
        f"PSQL={other_set[0][1]} reaches redis-app/redis, not psql-app"
    ]
    assert judge(s, a, "app", other_zone, psql) == [
        f"PSQL={other_zone[0][1]} reaches psql-app on {b.node['Name']}, not in its own zone"
    ]
    assert judge(s, a, "app", [], psql) == ["PSQL: no address at all"]


@pytest.fixture
def old_local_ref(monkeypatch):
    """The render before the fix: a node-local sidecar's port as ${NOMAD_PORT_<label>}, the
    port inside its container, beside the node's IP (reaches nothing under Docker's mapping)."""
    real = render_mod._local_ref

    def old(dep, what):
        if what == "port":
            return "${NOMAD_PORT_%s}" % render_mod.port_label(dep)
        return real(dep, what)

    monkeypatch.setattr(render_mod, "_local_ref", old)


def test_the_check_catches_the_container_port_of_a_node_local_sidecar(
    cluster, tmp_path, old_local_ref
):
    """Known-bad for the test above: the render nomadgen once had (`${NOMAD_IP_memcache_app}:
    ${NOMAD_PORT_memcache_app}`) gives addresses that reach nothing, and the check says so."""
    s = cluster.standin
    if s is None:
        pytest.skip("reads the stand-in's network model")
    _push(s, {"app": {"depends": ["memcache"]}}, tmp_path)
    a = _settled(s, "app", 3)[0]
    env = s.task_view(a.id, "app")["Env"]
    assert env["MEMCACHE_PORT"] == env["NOMAD_PORT_memcache_app"] == "11211"
    assert unreachable(s, a, "app", {"MEMCACHE": ("memcache-app", "node-local")}) == [
        f"MEMCACHE_ADDR={env['MEMCACHE_HOST']}:11211 reaches nothing",
        f"MEMCACHE={env['MEMCACHE_HOST']}:11211 reaches nothing",
    ]
