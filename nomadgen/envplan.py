"""Applying an environment (pure): its per-set values over the manifest, its scope over every
name nomadgen writes, the check that two environments never write the same name, and the
comparison of two environments' rendered sets (`nomadgen diff`)."""

from __future__ import annotations

import difflib
from typing import Any

from . import names
from .catalog import Catalog
from .environments import Value
from .errors import ConfigError, Problem, ResolutionError
from .fields import NAME_RE, cut
from .kinds import EXTERNAL, NODE_LOCAL
from .manifest import OVERRIDE_FIELDS, _Checker
from .model import Manifest, Override, RenderSettings, Resolution, Resources, ServiceSet
from .resolve import resolve

_HOLE = "\x00"  # stands for the dependency name in manifest-shaped override checks
SET_FIELDS = OVERRIDE_FIELDS | {"tags"}  # what an environment may set per set


class _ValueChecker(_Checker):
    """The manifest's own override checks, pointed at where each value came from."""

    def __init__(self, locations: dict[tuple[Any, ...], str]) -> None:
        super().__init__("", "overrides")
        self.locations = locations

    def where(self, path: tuple[Any, ...], dup: bool = False) -> str:
        for n in range(len(path), 0, -1):
            if path[:n] in self.locations:
                return self.locations[path[:n]]
        return "overrides"

    def add(self, path: tuple[Any, ...], message: str, hint: str = "") -> None:
        loc = self.where(path)
        if loc.startswith("--set ") and hint.endswith(" in quotes"):
            # the shell has eaten the user's quotes already; a --set value is read as JSON
            key, _, raw = loc[len("--set ") :].strip("'").partition("=")
            hint = f"""a --set value is read as JSON: --set '{key}="{raw}"'"""
        super().add(tuple(p for p in path if p != _HOLE), message, hint)


def _bodies(
    values: tuple[Value, ...],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[Any, ...], str]]:
    """Values in precedence order -> one body per set (later values win, env and resources
    merge key by key) and the location of each key."""
    bodies: dict[str, dict[str, Any]] = {}
    where: dict[tuple[Any, ...], str] = {}
    for v in values:
        d = bodies.setdefault(v.set, {})
        for k in v.path[:-1]:
            if not isinstance(d.get(k), dict):
                d[k] = {}
            d = d[k]
        d[v.path[-1]] = v.value
        where.setdefault((v.set,), v.location)
        for n in range(1, len(v.path) + 1):
            where[(v.set, *v.path[:n])] = v.location
    return bodies, where


def apply_overrides(
    manifest: Manifest, catalog: Catalog, zones: tuple[str, ...], values: tuple[Value, ...]
) -> Manifest:
    """The manifest with the environment's, var files' and --set values applied, each in the
    manifest's own terms: a declared service's fields, or its override of a dedicated set."""
    if not values:
        return manifest
    base = resolve(manifest, catalog, zones)
    bodies, where = _bodies(values)
    check = _ValueChecker(where)
    services = {s.name: s for s in manifest.services}
    problems = check.problems
    for set_name in sorted(bodies):
        body = bodies[set_name]
        loc = where[(set_name,)]
        s = base.by_name.get(set_name)
        if s is None:
            close = difflib.get_close_matches(set_name, list(base.by_name), n=1)
            problems.append(
                Problem(
                    f"{cut(set_name)}: no such set in {manifest.path}",
                    loc,
                    f"did you mean {close[0]!r}?"
                    if close
                    else "sets: " + ", ".join(sorted(base.by_name)),
                )
            )
            continue
        body = dict(body)
        tags = check.tags(body.pop("tags"), (set_name, "tags")) if "tags" in body else None
        got = dict(check.overrides({_HOLE: body}, (set_name, _HOLE), (_HOLE,)))
        ov = got.get(_HOLE)
        if ov is None:
            continue
        if s.kind == EXTERNAL:
            fields = sorted(set(body) | ({"tags"} if tags is not None else set()))
            problems.append(
                Problem(
                    f"{set_name}: runs elsewhere, it has no {', '.join(fields)}",
                    loc,
                    "change its address in the manifest's external field",
                )
            )
            continue
        if tags is not None and not s.declared:
            problems.append(
                Problem(
                    f"{set_name}.tags: extra Consul tags belong to services of the manifest",
                    where[(set_name, "tags")],
                    f"tag {s.owner}, or declare {s.type} as a service",
                )
            )
            continue
        if s.kind == NODE_LOCAL and "per_zone" in body:
            problems.append(
                Problem(
                    f"{set_name}.per_zone: {set_name} is node-local, one beside each "
                    f"{s.host} instance",
                    where[(set_name, "per_zone")],
                    f"change the count of {s.host} instead",
                )
            )
            continue
        if s.declared:
            if "state" in body:
                problems.append(
                    Problem(
                        f"{set_name}.state: {set_name} is a service of the manifest",
                        where[(set_name, "state")],
                        "storage applies to template sets like psql:app",
                    )
                )
                continue
            svc = services[set_name]
            run = svc.run._replace(
                image=ov.image or svc.run.image,
                args=svc.run.args if ov.args is None else ov.args,
                env=tuple(sorted({**dict(svc.run.env), **dict(ov.env)}.items())),
                resources=_resources(body, svc.run.resources),
            )
            services[set_name] = svc._replace(
                run=run,
                per_zone=ov.per_zone or svc.per_zone,
                total=None if ov.per_zone else svc.total,
                tags=svc.tags if tags is None else tags,
            )
            continue
        owner = services.get(s.owner)
        if owner is None or s.type not in owner.depends:
            problems.append(
                Problem(
                    f"{set_name}: made for {s.owner}, which is not a service of the manifest",
                    loc,
                    f"override it in the template that depends on {s.type}, or "
                    "declare that service in the manifest",
                )
            )
            continue
        mine = dict(owner.overrides)
        old = mine.get(s.type, Override())
        mine[s.type] = Override(
            image=ov.image or old.image,
            args=old.args if ov.args is None else ov.args,
            env=tuple(sorted({**dict(old.env), **dict(ov.env)}.items())),
            resources=_resources(body, s.run.resources) if "resources" in body else old.resources,
            per_zone=ov.per_zone or old.per_zone,
            state=tuple(sorted({**dict(old.state), **dict(ov.state)}.items())),
        )
        services[owner.name] = owner._replace(overrides=tuple(sorted(mine.items())))
    # A value a later source overrides is checked too, where it was written: a wrong value in
    # nomadgen.toml must not wait for the day no --set hides it.
    seen = {(p.message, p.location) for p in problems}
    for v in values:
        if v.set not in base.by_name:
            continue  # said once above
        one, at = _bodies((v,))
        alone = _ValueChecker(at)
        body = dict(one[v.set])
        if "tags" in body:
            alone.tags(body.pop("tags"), (v.set, "tags"))
        alone.overrides({_HOLE: body}, (v.set, _HOLE), (_HOLE,))
        for p in alone.problems:
            if (p.message, p.location) not in seen:
                seen.add((p.message, p.location))
                problems.append(p)
    if problems:
        n = len(problems)
        raise ConfigError(
            f"{n} problem{'s' if n > 1 else ''} in the set values", sorted(problems, key=_order)
        )
    return manifest._replace(services=tuple(services[s.name] for s in manifest.services))


def _order(p: Problem) -> tuple[Any, ...]:
    """By file, then line and column (a --set value has no line: after the files)."""
    parts = p.location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return (0, parts[0], int(parts[1]), int(parts[2]))
    return (1, p.location, 0, 0)


def _resources(body: dict[str, Any], base: Resources) -> Resources:
    r = body.get("resources")
    if not isinstance(r, dict):  # not a table: the checker has said so; keep the base
        r = {}
    return Resources(cpu=r.get("cpu", base.cpu), memory=r.get("memory", base.memory))


def scoped(plan: Resolution, scope: str, manifest: Manifest) -> Resolution:
    """Every set's names in the environment's scope (`prod-psql-app`); the plan's owner is
    `dockland@prod`, so job meta, service meta, KV root and push records are the scope's own."""
    if not scope and not any(s.scope for s in plan.sets):
        return plan
    problems = []
    sets = tuple(s._replace(scope=scope) for s in plan.sets)
    for s in sets:
        if not NAME_RE.match(s.job_id):
            problems.append(
                Problem(
                    f"set {s.name} becomes {s.job_id!r} in scope {scope}, which is not a "
                    "valid Nomad job ID / Consul service name",
                    manifest.path,
                    "use a shorter scope (env.NAME.scope) or shorter service names",
                )
            )
    if problems:
        raise ResolutionError("name too long in this environment", problems)
    return plan._replace(
        manifest=names.owner(manifest.name, scope), sets=sets, by_name={s.name: s for s in sets}
    )


def written_names(plan: Resolution, settings: RenderSettings) -> dict[str, set[tuple[str, ...]]]:
    """What a deployment writes, each with the space it lives in: two deployments collide when
    they share any entry. Jobs and variables live in a Nomad region and namespace. Consul names
    are keyed by name alone: nomadgen writes KV and reads service health through one agent,
    without `?dc=`, whatever consul_datacenter the templates read; and Nomad ACL policies are
    global, replicated from the authoritative region (nomad/leader.go replicateACLPolicies)."""
    ns = (settings.region or "global", settings.namespace or "default")
    out: dict[str, set[tuple[str, ...]]] = {
        "job": set(),
        "service": set(),
        "KV root": set(),
        "variable": set(),
        "ACL policy": set(),
    }
    for s in plan.sets:
        if s.job_hosted:
            out["job"].add((*ns, s.job_id))
        if s.kind == EXTERNAL or s.interface.port:
            out["service"].add((s.job_id,))
        if s.run.secret_items:
            out["variable"].add((*ns, names.credentials_path(s.interface.credentials, s.job_id)))
    out["KV root"].add((names.kv_root(settings.kv_prefix, plan.manifest),))
    out["ACL policy"].add((names.policy_name(plan.manifest),))
    return out


def check_collisions(
    mine: tuple[str, Resolution, RenderSettings],
    others: list[tuple[str, Resolution, RenderSettings]],
) -> None:
    """Refuse an environment that would write a name another declared environment writes."""
    name, plan, settings = mine
    have = written_names(plan, settings)
    problems = []
    for other, oplan, osettings in others:
        theirs = written_names(oplan, osettings)
        # a KV root inside the other's tree is the same as a shared one: a destroy of the outer
        # deletes the tree (kv_prefix "nomadgen/dockland" beside an unscoped dockland)
        (mine_root,) = have["KV root"]
        (their_root,) = theirs["KV root"]
        if mine_root != their_root and (
            mine_root[0].startswith(their_root[0] + "/")
            or their_root[0].startswith(mine_root[0] + "/")
        ):
            problems.append(
                Problem(
                    f"environments {name} and {other} would write KV roots one inside the "
                    f"other: {mine_root[0]!r} and {their_root[0]!r}",
                    hint=f"give env.{name}.kv_prefix a path outside the other's root",
                )
            )
        for what in have:
            both = sorted(have[what] & theirs[what])
            if both:
                why = (
                    "the same scope" if settings.scope == osettings.scope else "the same names"
                ) + (
                    " and the same namespace"
                    if what in ("job", "variable")
                    else " in one Consul (a namespace or consul_datacenter does not keep them apart)"
                    if what in ("service", "KV root")
                    else " (Nomad ACL policies are global to every region)"
                )
                problems.append(
                    Problem(
                        f"environments {name} and {other} would both write {what} {both[0][-1]!r}"
                        + (f" (and {len(both) - 1} more)" if len(both) > 1 else "")
                        + f": {why}",
                        hint=f"give each environment its own scope (env.{name}.scope)",
                    )
                )
    if problems:
        raise ResolutionError(f"environment {name} collides with another one", problems)


def _storage(s: ServiceSet, settings: RenderSettings) -> str:
    if s.run.state is None:
        return ""
    from .stateful import storage_mode

    return f"{storage_mode(s, settings)} {s.run.state.size_mb} MB"


def set_summary(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> dict[str, Any]:
    """The values of a set that a release compares between environments."""
    out: dict[str, Any] = {"kind": s.kind, "count": s.instance_count}
    if s.kind != EXTERNAL:
        # where the instances run: the same count in other zones is still another job
        placed = s.host if s.kind == NODE_LOCAL else s.name
        zones: dict[str, int] = {}
        for i in plan.instances:
            if i.set == placed and i.zone:
                zones[i.zone] = zones.get(i.zone, 0) + 1
        out["zones"] = zones
        out.update(
            {
                "image": s.run.image,
                "args": list(s.run.args),
                "env": dict(s.run.env),
                "cpu": s.run.resources.cpu,
                "memory": s.run.resources.memory,
                "per_zone_max": s.per_zone_max,
                "job": plan.job_of(s.name),
                "tags": list(s.tags),
            }
        )
        if s.run.state is not None:
            out["storage"] = _storage(s, settings)
    else:
        out["address"] = f"{s.external[0]}:{s.external[1]}" if s.external else ""
    return out


def compare(
    a: tuple[Resolution, RenderSettings], b: tuple[Resolution, RenderSettings]
) -> dict[str, dict[str, list[Any]]]:
    """Per set: the fields whose values differ, as [a's, b's]; sets only one side has too."""
    pa, sa = a
    pb, sb = b
    out: dict[str, dict[str, list[Any]]] = {}
    for name in sorted(set(pa.by_name) | set(pb.by_name)):
        x = set_summary(pa, pa.by_name[name], sa) if name in pa.by_name else {}
        y = set_summary(pb, pb.by_name[name], sb) if name in pb.by_name else {}
        diff = {
            k: [x.get(k), y.get(k)]
            for k in sorted(set(x) | set(y))
            if x.get(k) != y.get(k) and k != "job"
        }
        if diff:
            out[name] = diff
    return out
