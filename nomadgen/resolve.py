"""Resolution: a pure function from a manifest (and the templates, and the zones) to a Resolution.

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
import re
from collections import defaultdict
from typing import Any, NamedTuple

from .catalog import Catalog
from .errors import ConfigError, Problem, ResolutionError
from .kinds import EXTERNAL, KINDS, NODE_LOCAL, PER_ZONE
from .manifest import NAME_RE, where
from .model import (
    Instance,
    Link,
    Manifest,
    Resolution,
    Runnable,
    Service,
    ServiceSet,
    State,
    Wiring,
)
from .names import DEFAULT_ZONES, dns_name, env_prefix
from .refs import Ref


class _Node(NamedTuple):
    """A set before it is built: what it runs and what it asked for."""

    name: str
    type: str  # the service or template name
    owner: str  # the dependent a dedicated set is made for; "" for declared services
    wants: tuple[str, ...]  # its dependencies as written (`psql`, `cart`, `psql:app`)


class _Graph(NamedTuple):
    nodes: dict[str, _Node]
    edges: dict[str, list[str]]  # dependent -> set names


def resolve(
    manifest: Manifest, catalog: Catalog, zones: tuple[str, ...] = DEFAULT_ZONES
) -> Resolution:
    _check_zones(zones)
    graph = _expand(manifest, catalog)
    _check_cycles(graph.edges, manifest)
    _check_names(graph, manifest)
    built = _build(graph, manifest, catalog, zones)
    built = _node_local_counts(built)
    built = _links(built, manifest)
    return Resolution(
        manifest=manifest.name,
        zones=tuple(zones),
        sets=tuple(built[n] for n in sorted(built)),
        instances=_instances(built, zones),
        layers=_layers(built),
        by_name=built,
    )


def _check_zones(zones: tuple[str, ...]) -> None:
    if not zones:
        raise ConfigError("no zones to schedule into", hint="pass --zones zone-a,zone-b,zone-c")
    bad = [z for z in zones if not z or any(c in z for c in ' ,"\\')]
    if bad or len(set(zones)) != len(zones):
        raise ConfigError(
            f"invalid zone list: {', '.join(zones)}",
            hint="zones are distinct names without spaces, commas or quotes",
        )


def _expand(manifest: Manifest, catalog: Catalog) -> _Graph:
    """Every set the manifest creates (declared services, then the dedicated sets their generic
    dependencies make, recursively) and the edges between them; unknown names fail here."""
    problems: list[Problem] = []
    declared = {s.name: s for s in manifest.services}
    nodes = {s.name: _Node(s.name, s.name, "", s.depends) for s in manifest.services}
    edges: dict[str, list[str]] = defaultdict(list)
    specific: list[tuple[str, str]] = []  # (dependent, set ref) checked once all sets exist

    queue = sorted(nodes)
    while queue:
        dependent = queue.pop()
        for dep in nodes[dependent].wants:
            if ":" in dep:
                specific.append((dependent, dep))
            elif dep in declared:
                edges[dependent].append(dep)
                if dependent in declared and dep in dict(declared[dependent].overrides):
                    problems.append(
                        Problem(
                            f"{dependent} overrides {dep!r}, but {dep} is a service of the manifest, "
                            "shared by its dependents",
                            _loc(manifest, dependent),
                            f"change {dep} itself in the manifest",
                        )
                    )
            elif dep in catalog:
                name = f"{dep}:{dependent}"
                edges[dependent].append(name)
                if name not in nodes:
                    nodes[name] = _Node(name, dep, dependent, catalog.get(dep).depends)
                    queue.append(name)
            else:
                known = sorted(set(declared) | set(catalog.names()))
                close = difflib.get_close_matches(dep, known, n=1)
                problems.append(
                    Problem(
                        f"{_who(dependent)} depends on {dep!r}, which is neither a service in the "
                        f"manifest nor a known template",
                        _loc(manifest, dependent, dep),
                        f"did you mean {close[0]!r}?"
                        if close
                        else "known: "
                        + ", ".join(known)
                        + " (add a template with --templates DIR)",
                    )
                )

    for dependent, ref in specific:
        if ref in nodes:
            edges[dependent].append(ref)
        else:
            problems.append(_no_creator(manifest, catalog, nodes, dependent, ref))
    if problems:
        raise ResolutionError(f"cannot resolve {manifest.path}", problems)
    return _Graph(nodes, edges)


def _no_creator(
    manifest: Manifest, catalog: Catalog, nodes: dict[str, _Node], dependent: str, ref: str
) -> Problem:
    known = sorted(n for n in nodes if ":" in n)
    hint = f"known sets: {', '.join(known)}" if known else "no set is created yet"
    typ, _, owner = ref.partition(":")
    if owner in nodes and typ in catalog:
        hint = (
            f'{owner} does not depend on {typ}; add "{typ}" to {owner}\'s depends to '
            f'create {ref}, or depend on "{typ}" for a dedicated set. ' + hint
        )
    else:
        close = difflib.get_close_matches(ref, known, n=1)
        if close:
            hint = f"did you mean {close[0]!r}? " + hint
        elif typ in catalog:
            hint = f'depend on "{typ}" to give {dependent} a {typ} set of its own; ' + hint
    return Problem(
        f"{_who(dependent)} depends on {ref}, but nothing creates set {ref}",
        _loc(manifest, dependent, ref),
        hint,
    )


def _check_names(graph: _Graph, manifest: Manifest) -> None:
    """Names after the DNS mapping (`psql:app` -> `psql-app`) must stay unique and valid."""
    problems: list[Problem] = []
    by_dns: dict[str, str] = {}
    for name in sorted(graph.nodes):
        d = dns_name(name)
        if not NAME_RE.match(d):
            problems.append(
                Problem(
                    f"set {name} becomes {d!r}, which is not a valid Nomad job ID / Consul service name",
                    manifest.path,
                    "shorten the service names: the set name must fit in 63 characters",
                )
            )
        if d in by_dns:
            problems.append(
                Problem(
                    f"sets {by_dns[d]} and {name} both become job and service {d!r}",
                    where(manifest, by_dns[d] if not graph.nodes[by_dns[d]].owner else name),
                    f"rename the service {d!r} in the manifest",
                )
            )
        by_dns[d] = name
    if problems:
        raise ResolutionError("name collision", problems)


def _kind(node: _Node, declared: dict[str, Service], catalog: Catalog) -> str:
    if node.owner:
        return catalog.get(node.type).scheduling
    return EXTERNAL if declared[node.name].external else PER_ZONE


def _build(
    graph: _Graph, manifest: Manifest, catalog: Catalog, zones: tuple[str, ...]
) -> dict[str, ServiceSet]:
    """The sets, with what they run (a dependent's overrides applied), their kind, count, users
    and, for node-local sets, the host whose group carries them (the dependent they serve)."""
    nodes, edges = graph
    declared = {s.name: s for s in manifest.services}
    users: dict[str, set[str]] = defaultdict(set)
    for src, dsts in edges.items():
        for d in dsts:
            users[d].add(src)
    kinds = {n: _kind(nodes[n], declared, catalog) for n in nodes}
    hosts = {n: nodes[n].owner for n in nodes if kinds[n] == NODE_LOCAL}
    embedded: dict[str, list[str]] = defaultdict(list)
    for n, h in hosts.items():
        embedded[h].append(n)

    nz = len(zones)
    built: dict[str, ServiceSet] = {}
    problems: list[Problem] = []
    for name in sorted(nodes):
        node = nodes[name]
        if node.owner:
            tpl = catalog.get(node.type)
            run, iface, per_zone, count = tpl.run, tpl.interface, tpl.per_zone, None
            svc = declared.get(node.owner)
            ov = dict(svc.overrides).get(node.type) if svc is not None else None
            if ov is not None:
                run = run._replace(
                    image=ov.image or run.image,
                    args=run.args if ov.args is None else ov.args,
                    env=tuple(sorted({**dict(run.env), **dict(ov.env)}.items())),
                    resources=ov.resources or run.resources,
                )
                per_zone = ov.per_zone or per_zone
                if ov.state:
                    run = _override_state(
                        run,
                        dict(ov.state),
                        node.type,
                        node.owner,
                        manifest,
                        problems,
                        tpl.scheduling == NODE_LOCAL,
                    )
        else:
            svc = declared[name]
            run, iface, per_zone, count = svc.run, svc.interface, svc.per_zone, svc.total
        kind = kinds[name]
        total = KINDS[kind].total(count if count is not None else per_zone * nz)
        built[name] = ServiceSet(
            name=name,
            type=node.type,
            owner=node.owner,
            declared=not node.owner,
            kind=kind,
            instance_count=total,
            per_zone_max=math.ceil(total / nz),
            depends=tuple(sorted(set(edges.get(name, ())))),
            users=tuple(sorted(users.get(name, ()))),
            run=run,
            interface=iface,
            host=hosts.get(name, ""),
            embedded=tuple(sorted(embedded.get(name, ()))),
            external=None if node.owner else declared[name].external,
            tags=() if node.owner else declared[name].tags,
            constraints=() if node.owner else declared[name].constraints,
            node_pool="" if node.owner else declared[name].node_pool,
        )
    if problems:
        raise ResolutionError("invalid overrides", problems)
    return built


def _node_local_counts(built: dict[str, ServiceSet]) -> dict[str, ServiceSet]:
    """Node-local sets take their host's count: one beside each host instance."""
    out = dict(built)
    for name, s in built.items():
        host = _job_set(built, name)
        if s.kind == NODE_LOCAL and host is not None:
            out[name] = s._replace(
                instance_count=host.instance_count, per_zone_max=host.per_zone_max
            )
    return out


def _links(built: dict[str, ServiceSet], manifest: Manifest) -> dict[str, ServiceSet]:
    """Each dependent's view of its dependencies: default env names (PSQL_ for a psql set; the set
    name, MYSQL_BLOG1_, when it has several of one kind), wiring, and its own names bound to sets."""
    problems: list[Problem] = []
    out = {}
    for name, s in built.items():
        svc = manifest.service(name) if s.declared else None
        by_type: dict[str, int] = defaultdict(int)
        for dep in s.depends:
            by_type[env_prefix(built[dep].type)] += 1
        mapped_env, used = _bind(s, svc, built, manifest, problems) if svc else ((), set())
        wiring = dict(svc.wiring) if svc else {}
        seen: dict[str, str] = {}
        links = []
        for dep in s.depends:
            t = env_prefix(built[dep].type)
            p = t if by_type[t] == 1 else env_prefix(dep)
            if p in seen:
                problems.append(
                    Problem(
                        f"{_who(name)} depends on {seen[p]} and {dep}; both would set {p}_* variables",
                        _loc(manifest, name),
                        "map the fields you need to names of your own in env, "
                        "or rename one of the services",
                    )
                )
            seen[p] = dep
            written = _as_written(svc, dep) if svc else dep
            links.append(Link(dep, p, wiring.get(written, Wiring()), dep in used))
        out[name] = s._replace(
            prefixes=tuple((lk.set, lk.prefix) for lk in links),
            links=tuple(links),
            mapped_env=mapped_env,
        )
    if problems:
        raise ResolutionError(f"cannot wire the dependencies in {manifest.path}", problems)
    return out


_LIVE = re.compile(r"\{(host|port|secret\.[A-Za-z0-9_]+)\}")


def _is_live(dep: ServiceSet, field: str) -> bool:
    """The field is read at run time (an instance's address, a credential), not fixed text."""
    if field == "addrs":
        return True
    pattern = dict((k.lower(), v) for k, v in dep.interface.env + dep.interface.extra).get(
        field, ""
    )
    return bool(_LIVE.search(pattern))


def _as_written(svc: Service, set_name: str) -> str:
    """The `depends` entry that made `set_name` a dependency of svc."""
    if set_name in svc.depends:
        return set_name
    return set_name.split(":")[0]  # a generic dependency: psql -> psql:<svc>


def _bind(
    s: ServiceSet,
    svc: Service,
    built: dict[str, ServiceSet],
    manifest: Manifest,
    problems: list[Problem],
) -> tuple[tuple[Any, ...], set[str]]:
    """${psql.url} in the dependent's env -> (set psql:app, field url); one problem per bad ref."""
    by_written = {_as_written(svc, d): d for d in s.depends}
    by_type: dict[str, list[str]] = defaultdict(list)
    for d in s.depends:
        by_type[built[d].type].append(d)
    out, used = [], set()
    for var, parts in svc.env_refs:
        bound: list[Any] = []
        for part in parts:
            if not isinstance(part, Ref):
                bound.append(part)
                continue
            loc = where(manifest, svc.name, "env", var)
            target = by_written.get(part.dep) or (part.dep if part.dep in s.depends else None)
            if target is None and len(by_type.get(part.dep, ())) == 1:
                target = by_type[part.dep][0]
            if target is None:
                if len(by_type.get(part.dep, ())) > 1:
                    hint = "name one set: " + ", ".join(
                        f"${{{d}.{part.field}}}" for d in by_type[part.dep]
                    )
                else:
                    known = sorted(set(by_written) | set(s.depends))
                    close = difflib.get_close_matches(part.dep, known, n=1)
                    hint = (f"did you mean {close[0]!r}? " if close else "") + (
                        "dependencies: " + ", ".join(known) if known else "add it to depends first"
                    )
                problems.append(
                    Problem(
                        f"{svc.name}.env.{var}: ${{{part.dep}.{part.field}}} refers to {part.dep!r}, "
                        f"which is not a dependency of {svc.name}",
                        loc,
                        hint,
                    )
                )
                continue
            fields = built[target].fields
            if part.field not in fields:
                close = difflib.get_close_matches(part.field, fields, n=1)
                problems.append(
                    Problem(
                        f"{svc.name}.env.{var}: {target} has no field {part.field!r}",
                        loc,
                        (f"did you mean ${{{part.dep}.{close[0]}}}? " if close else "")
                        + "fields: "
                        + ", ".join(fields),
                    )
                )
                continue
            used.add(target)
            bound.append(part._replace(dep=target))
        live = {
            r.dep
            for r in bound
            if isinstance(r, Ref)
            and built[r.dep].host != s.name
            and _is_live(built[r.dep], r.field)
        }
        if len(live) > 1:
            problems.append(
                Problem(
                    f"{svc.name}.env.{var}: reads the instances of {' and '.join(sorted(live))}",
                    where(manifest, svc.name, "env", var),
                    "each variable reads the instances of one dependency; use one variable per dependency",
                )
            )
        out.append((var, tuple(bound)))
    return tuple(out), used


def _instances(built: dict[str, ServiceSet], zones: tuple[str, ...]) -> tuple[Instance, ...]:
    out: list[Instance] = []
    for name in sorted(built):
        s = built[name]
        host = built[s.host] if s.host else None
        out.extend(Instance(name, z, i) for z, i in KINDS[s.kind].instance_slots(s, host, zones))
    return tuple(sorted(out, key=lambda i: (i.set, i.zone, i.ordinal)))


def _job_set(built: dict[str, ServiceSet], name: str) -> ServiceSet | None:
    return KINDS[built[name].kind].job_set(built.__getitem__, built[name])


def _layers(built: dict[str, ServiceSet]) -> tuple[tuple[str, ...], ...]:
    """Job-hosting sets in dependency order; a node-local dependency counts as its host."""

    def jobs(names: tuple[str, ...]) -> set[str]:
        return {j.name for j in (_job_set(built, d) for d in names) if j is not None}

    graph: dict[str, set[str]] = {}
    for n, s in built.items():
        if not KINDS[s.kind].own_job:
            continue
        deps = jobs(s.depends)
        for e in s.embedded:
            deps |= jobs(built[e].depends)
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
            [
                Problem(
                    " -> ".join(cycle),
                    _loc(manifest, cycle[0], cycle[1]),
                    "remove one of these dependencies",
                )
            ],
        ) from None


def _override_state(
    run: Runnable,
    fields: dict[str, Any],
    typ: str,
    owner: str,
    manifest: Manifest,
    problems: list[Problem],
    node_local: bool = False,
) -> Runnable:
    base = run.state
    if node_local:
        problems.append(
            Problem(
                f"{owner} overrides {typ}.state, but {typ} is node-local and cannot keep data",
                where(manifest, owner, "overrides", typ, "state"),
                "it runs as a sidecar in your group; use a per-zone service for data",
            )
        )
        return run
    if base is None and "path" not in fields:
        problems.append(
            Problem(
                f"{owner} overrides {typ}.state, but the {typ} template keeps no data",
                where(manifest, owner, "overrides", typ, "state"),
                'give the path where it keeps data: "state": {"path": "/data", ...}',
            )
        )
        return run
    if base is None:
        base = State(str(fields["path"]))
    return run._replace(state=base._replace(**fields))


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
