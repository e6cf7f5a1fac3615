"""The library calls behind the commands that talk to a cluster: plan, submit, status, destroy,
interface get. They take backends (anything with NomadBackend's and ConsulBackend's methods), so
tests can pass fakes; the CLI only formats what they return."""

from __future__ import annotations

import json
from collections import Counter
from typing import NamedTuple

from . import converge, names
from .errors import ConfigError, NomadgenError, Problem, ResolutionError
from .pipeline import Rendered, build_plan, no_gc
from .render import META_HASH, META_MANIFEST, interfaces, render
from .settings import Config


class Prepared(NamedTuple):
    rendered: Rendered
    changes: converge.ChangeSet
    zones_source: str


def cluster_zones(nomad, cfg: Config) -> tuple[tuple[str, ...], str]:
    """Zones to resolve against: the cluster's own, or the configured ones checked against it."""
    attr = cfg.render.zone_attribute
    nodes = nomad.nodes(with_meta=not attr.startswith("${node."))
    have = converge.zones_from_nodes(nodes, attr)
    if not have:
        raise ResolutionError(
            "the cluster has no ready, eligible node with a zone; nothing was written",
            [Problem(f"{len(nodes)} node(s) seen; zone attribute {attr}")],
            hint="start Nomad clients, or set the zone attribute (--zone-attribute, e.g. ${meta.zone})")
    if cfg.zones_source == "default":
        return have, "cluster"
    missing = [z for z in cfg.zones if z not in have]
    if missing:
        raise ConfigError(f"zone(s) {', '.join(missing)} ({cfg.zones_source}) are not in the cluster",
                          hint=f"the cluster's zones by {attr}: {', '.join(have)}")
    return cfg.zones, cfg.zones_source


def prepare(manifest_path: str, cfg: Config, nomad, consul, *, name: str | None = None,
            prune: bool = False, nomad_plan: bool = True, concurrency: int = 16) -> Prepared:
    zones, source = cluster_zones(nomad, cfg)
    with no_gc():
        manifest, plan = build_plan(manifest_path, cfg, name, zones)
        jobs = tuple(render(plan, cfg.render))
        ifaces = tuple(interfaces(plan, cfg.render))
    cs = converge.observe(plan, jobs, ifaces, nomad, consul, cfg.render, manifest_text=manifest.text,
                          prune=prune, nomad_plan=nomad_plan, concurrency=concurrency)
    return Prepared(Rendered(manifest, plan, jobs, ifaces), cs, source)


class SetStatus(NamedTuple):
    set: str
    job: str
    state: str
    placements: tuple[tuple[str, str, str], ...]  # (zone, node, client status)
    healthy: int
    expected: int
    interface: bool
    drift: str


def status(manifest_name: str, cfg: Config, nomad, consul) -> tuple[list[SetStatus], dict]:
    root = converge.prefix_of(manifest_name, cfg.render)
    tree = consul.kv_tree(root)
    record_raw = tree.get(names.push_key(root, "plan"))
    if record_raw is None:
        raise NomadgenError(f"nothing was pushed for manifest {manifest_name!r}",
                            hint="run `nomadgen submit MANIFEST` first (the manifest name is its file name)")
    record = json.loads(record_raw[0])
    jobs = nomad.jobs()
    nodes = {n.id: n for n in nomad.nodes(with_meta=True)}
    attr = cfg.render.zone_attribute
    rows = []
    for name, info in sorted(record["sets"].items()):
        if info.get("external"):
            healthy = len(consul.healthy(names.job_id(name)))
            rows.append(SetStatus(name, "", "external", (), healthy, 1,
                                  names.interface_key(root, names.job_id(name)) in tree,
                                  "in sync" if healthy else "not registered"))
            continue
        job_id = info["job"] or names.job_id(_host_root(record, name))
        stub = jobs.get(job_id)
        expected = info["count"]
        if stub is None:
            state, drift, placements = "missing", "job missing", ()
        else:
            stopped = stub.get("Stop")
            state = "stopped" if stopped else stub.get("Status", "?")
            meta = stub.get("Meta") or {}
            pushed = record["jobs"].get(job_id)
            if meta.get(META_MANIFEST) != manifest_name:
                drift = "not ours"
            elif pushed and meta.get(META_HASH) != pushed:
                drift = "changed since push"
            else:
                drift = "in sync"
            placements = tuple(sorted(
                (_zone(nodes.get(a.get("NodeID")), attr), a.get("NodeName", "?"), a.get("ClientStatus", "?"))
                for a in nomad.allocations(job_id) if a.get("DesiredStatus") == "run"))
        healthy = len(consul.healthy(names.job_id(name)))
        rows.append(SetStatus(name, job_id, state, placements, healthy, expected,
                              names.interface_key(root, names.job_id(name)) in tree, drift))
    return rows, record


def _host_root(record: dict, name: str) -> str:
    while record["sets"][name]["host"]:
        name = record["sets"][name]["host"]
    return name


def _zone(node, attr: str) -> str:
    return (names.node_zone(node, attr) if node is not None else None) or "?"


class Destroyed(NamedTuple):
    jobs: tuple[str, ...]
    keys: int


def owned_jobs(manifest_name: str, nomad) -> list[str]:
    return sorted(jid for jid, s in nomad.jobs().items()
                  if (s.get("Meta") or {}).get(META_MANIFEST) == manifest_name)


def destroy(manifest_name: str, cfg: Config, nomad, consul) -> Destroyed:
    jobs = owned_jobs(manifest_name, nomad)
    for jid in jobs:
        nomad.stop(jid, purge=True)
    for sid, svc in sorted(consul.services().items()):
        if (svc.get("Meta") or {}).get(META_MANIFEST) == manifest_name:
            consul.deregister_service(sid)
    root = converge.prefix_of(manifest_name, cfg.render)
    tree = consul.kv_tree(root)
    if tree:
        consul.txn([{"Verb": "delete-tree", "Key": root + "/"}])
    return Destroyed(tuple(jobs), len(tree))


class InterfaceView(NamedTuple):
    key: str
    document: dict
    instances: tuple[dict, ...]


def interface_get(set_name: str, cfg: Config, consul, manifest_name: str | None = None) -> InterfaceView:
    job_id = names.job_id(set_name)
    if manifest_name:
        key = names.interface_key(converge.prefix_of(manifest_name, cfg.render), job_id)
        got = consul.kv_get(key)
        found = {key: got} if got else {}
    else:
        tree = consul.kv_tree(cfg.render.kv_prefix)
        found = {k: v for k, v in tree.items() if names.is_interface_of(k, job_id)}
    if not found:
        raise NomadgenError(f"no interface published for {set_name}",
                            hint="check the set name (`nomadgen resolve MANIFEST`) and that it was submitted")
    if len(found) > 1:
        raise NomadgenError(f"{set_name} is published by several manifests: " +
                            ", ".join(names.owner_of_key(k) for k in sorted(found)),
                            hint="pick one with --manifest")
    key, (value, _) = next(iter(found.items()))
    instances = tuple(
        {"node": e["Node"]["Node"], "address": e["Service"]["Address"] or e["Node"]["Address"],
         "port": e["Service"]["Port"], "tags": e["Service"].get("Tags") or []}
        for e in consul.healthy(job_id))
    return InterfaceView(key, json.loads(value), tuple(sorted(instances, key=lambda i: (i["node"], i["port"]))))


def plan_counts(cs: converge.ChangeSet) -> Counter:
    return Counter(j.action for j in cs.jobs)

