"""Resolution: a pure function from a manifest (and the templates, and the zones) to a Plan.

The rules (the seed's semantics):
1. Every service the manifest declares is a set named after it (`app`).
2. A dependency naming a declared service (`cart`) shares that set.
3. A dependency naming a generic service from the templates (`psql`) creates a set dedicated to
   the dependent (`psql:app`), scheduled by the template: per-zone, or node-local.
4. A dependency naming a set (`psql:app`) shares it; if nothing creates it, resolution fails.
5. Templates may depend on other services; those resolve by the same rules, recursively
   (`pgbouncer` depending on `psql` gives `psql:pgbouncer:app`).
Declared services take precedence over templates of the same name.
"""

from __future__ import annotations

import difflib
import graphlib
import math
from collections import defaultdict

from .catalog import Catalog
from .errors import ConfigError, Problem, ResolutionError
from .manifest import NAME_RE, where
from .model import (
    NODE_LOCAL,
    PER_ZONE,
    Instance,
    Manifest,
    Plan,
    ServiceSet,
    dns_name,
    env_prefix,
)

DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")  # the seed: three zones, one node each


def resolve(manifest: Manifest, catalog: Catalog, zones: tuple[str, ...] = DEFAULT_ZONES) -> Plan:
    if not zones:
        raise ConfigError("no zones to schedule into", hint="pass --zones zone-a,zone-b,zone-c")
    bad = [z for z in zones if not z or any(c in z for c in ' ,"\\')]
    if bad or len(set(zones)) != len(zones):
        raise ConfigError(f"invalid zone list: {', '.join(zones)}",
                          hint="zones are distinct names without spaces, commas or quotes")
    problems: list[Problem] = []
    declared = {s.name: s for s in manifest.services}

    # name -> (type, owner, raw dependency list)
    sets: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for s in manifest.services:
        sets[s.name] = (s.name, "", s.depends)
    edges: dict[str, list[str]] = defaultdict(list)
    specific: list[tuple[str, str]] = []  # (dependent, set ref) checked once all sets exist

    queue = sorted(sets)
    while queue:
        dependent = queue.pop()
        for dep in sets[dependent][2]:
            if ":" in dep:
                specific.append((dependent, dep))
            elif dep in declared:
                edges[dependent].append(dep)
                if dependent in declared and dep in dict(declared[dependent].overrides):
                    problems.append(Problem(
                        f"{dependent} overrides {dep!r}, but {dep} is a service of the manifest, "
                        "shared by its dependents", _loc(manifest, dependent),
                        f"change {dep} itself in the manifest"))
            elif dep in catalog:
                name = f"{dep}:{dependent}"
                edges[dependent].append(name)
                if name not in sets:
                    sets[name] = (dep, dependent, catalog.get(dep).depends)
                    queue.append(name)
            else:
                known = sorted(set(declared) | set(catalog.names()))
                close = difflib.get_close_matches(dep, known, n=1)
                problems.append(Problem(
                    f"{_who(dependent)} depends on {dep!r}, which is neither a service in the "
                    f"manifest nor a known template",
                    _loc(manifest, dependent, dep),
                    f"did you mean {close[0]!r}?" if close else
                    "known: " + ", ".join(known) + " (add a template with --templates DIR)"))

    for dependent, ref in specific:
        if ref in sets:
            edges[dependent].append(ref)
            continue
        known = sorted(n for n in sets if ":" in n)
        hint = f"known sets: {', '.join(known)}" if known else "no set is created yet"
        typ, _, owner = ref.partition(":")
        if owner in sets and typ in catalog:
            hint = (f"{owner} does not depend on {typ}; add \"{typ}\" to {owner}'s depends to "
                    f"create {ref}, or depend on \"{typ}\" for a dedicated set. " + hint)
        else:
            close = difflib.get_close_matches(ref, known, n=1)
            if close:
                hint = f"did you mean {close[0]!r}? " + hint
            elif typ in catalog:
                hint = f"depend on \"{typ}\" to give {dependent} a {typ} set of its own; " + hint
        problems.append(Problem(
            f"{_who(dependent)} depends on {ref}, but nothing creates set {ref}",
            _loc(manifest, dependent, ref), hint))

    if problems:
        raise ResolutionError(f"cannot resolve {manifest.path}", problems)

    _check_cycles(edges, manifest)

    # Names after the DNS mapping must stay unique and valid.
    by_dns: dict[str, str] = {}
    for name in sorted(sets):
        d = dns_name(name)
        if not NAME_RE.match(d):
            problems.append(Problem(
                f"set {name} becomes {d!r}, which is not a valid Nomad job ID / Consul service name",
                manifest.path, "shorten the service names: the set name must fit in 63 characters"))
        if d in by_dns:
            problems.append(Problem(
                f"sets {by_dns[d]} and {name} both become job and service {d!r}",
                where(manifest, by_dns[d] if by_dns[d] in declared else name),
                f"rename the service {d!r} in the manifest"))
        by_dns[d] = name
    if problems:
        raise ResolutionError("name collision", problems)

    users: dict[str, list[str]] = defaultdict(list)
    for src, dsts in edges.items():
        for d in dsts:
            users[d].append(src)

    # Node-local sets live in their owner's group; everything else hosts its own job.
    def scheduling(name: str) -> str:
        typ, owner, _ = sets[name]
        return catalog.get(typ).scheduling if owner else PER_ZONE

    hosts = {n: sets[n][1] for n in sets if scheduling(n) == NODE_LOCAL}
    embedded: dict[str, list[str]] = defaultdict(list)
    for n, h in hosts.items():
        embedded[h].append(n)

    nz = len(zones)
    built: dict[str, ServiceSet] = {}
    instances: list[Instance] = []
    order = list(graphlib.TopologicalSorter({n: edges.get(n, []) for n in sets}).static_order())

    for name in order:  # dependencies first, so a node-local set can read its host's count later
        typ, owner, _ = sets[name]
        if owner:
            tpl = catalog.get(typ)
            run, iface, per_zone, count = tpl.run, tpl.interface, tpl.per_zone, None
            ov = dict(declared[owner].overrides).get(typ) if owner in declared else None
            if ov is not None:
                run = run._replace(
                    image=ov.image or run.image,
                    args=run.args if ov.args is None else ov.args,
                    env=tuple(sorted({**dict(run.env), **dict(ov.env)}.items())),
                    resources=ov.resources or run.resources)
                per_zone = ov.per_zone or per_zone
        else:
            svc = declared[name]
            run, iface, per_zone, count = svc.run, svc.interface, svc.per_zone, svc.count
        total = count if count is not None else per_zone * nz
        if not owner and declared[name].external:
            total = 1
        built[name] = ServiceSet(
            name=name, type=typ, owner=owner, declared=not owner,
            scheduling=scheduling(name), count=total,
            per_zone_max=math.ceil(total / nz),
            depends=tuple(sorted(set(edges.get(name, ())))),
            users=tuple(sorted(set(users.get(name, ())))),
            run=run, interface=iface, host=hosts.get(name, ""),
            embedded=tuple(sorted(embedded.get(name, ()))),
            external=None if owner else declared[name].external,
        )

    # Node-local sets take their host's count: one beside each host instance.
    for name in sorted(hosts):
        host = hosts[name]
        while host in hosts:
            host = hosts[host]
        s = built[name]
        built[name] = _replace(s, count=built[host].count, per_zone_max=built[host].per_zone_max)

    # Env prefixes: PSQL_ for any psql set, CART_ for the declared service cart.
    for name, s in list(built.items()):
        seen: dict[str, str] = {}
        pairs = []
        for dep in s.depends:
            p = env_prefix(built[dep].type)
            if p in seen:
                problems.append(Problem(
                    f"{_who(name)} depends on {seen[p]} and {dep}; both would set {p}_* variables",
                    _loc(manifest, name),
                    f"depend on one {built[dep].type} set only"))
            seen[p] = dep
            pairs.append((dep, p))
        built[name] = _replace(s, prefixes=tuple(pairs))
    if problems:
        raise ResolutionError("conflicting interfaces", problems)

    for name in sorted(built):
        s = built[name]
        if s.external:
            continue  # runs elsewhere: no instances of ours
        if s.host:
            host = built[s.host]
            for inst in _spread(host.name, host.count, zones):
                instances.append(Instance(name, inst.zone, inst.index))
        else:
            instances.extend(_spread(name, s.count, zones))

    layers = _layers(built)
    return Plan(manifest=manifest.name, zones=tuple(zones),
                sets=tuple(built[n] for n in sorted(built)),
                instances=tuple(sorted(instances, key=lambda i: (i.set, i.zone, i.index))),
                layers=layers, by_name=built)


def _spread(name: str, count: int, zones: tuple[str, ...]) -> list[Instance]:
    return [Instance(name, zones[i % len(zones)], i // len(zones)) for i in range(count)]


def _layers(built: dict[str, ServiceSet]) -> tuple[tuple[str, ...], ...]:
    """Job-hosting sets in dependency order; a node-local dependency counts as its host."""

    def job_of(n: str) -> str:
        while built[n].host:
            n = built[n].host
        return n

    graph: dict[str, set[str]] = {}
    for n, s in built.items():
        if s.host or s.external:
            continue
        deps = {job_of(d) for d in s.depends if not built[d].external}
        for e in s.embedded:
            deps |= {job_of(d) for d in built[e].depends if not built[d].external}
        deps.discard(n)
        graph[n] = deps
    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    out = []
    while ts.is_active():
        ready = tuple(sorted(ts.get_ready()))
        out.append(ready)
        ts.done(*ready)
    return tuple(out)


def _check_cycles(edges: dict[str, list[str]], manifest: Manifest) -> None:
    try:
        graphlib.TopologicalSorter({k: v for k, v in sorted(edges.items())}).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        raise ResolutionError(
            f"dependency cycle in {manifest.path}",
            [Problem(" -> ".join(cycle), _loc(manifest, cycle[0], cycle[1]),
                     "remove one of these dependencies")],
        ) from None


def _who(name: str) -> str:
    return name if ":" not in name else f"set {name}"


def _loc(manifest: Manifest, name: str, dep: str | None = None) -> str:
    root = name.split(":")[-1]  # a dedicated set's dependencies come from its template
    svc = manifest.service(root)
    if svc is None:
        return manifest.path
    if dep is not None and root == name and dep in svc.depends:
        return where(manifest, root, "depends", svc.depends.index(dep))
    return where(manifest, root, "depends")


def _replace(s: ServiceSet, **kw) -> ServiceSet:
    return s._replace(**kw)
