"""The library calls behind the commands that talk to a cluster: plan, submit, status, destroy,
interface get. They take backends (anything with NomadBackend's and ConsulBackend's methods), so
tests can pass fakes; the CLI only formats what they return."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

from . import converge, data, names, preflight
from .diff import (
    DEGRADED,
    HEALTHY,
    Home,
    diff,
    diff_summary,
    foreign_records,
    job_health,
    other_namespace,
)
from .errors import (
    ConfigError,
    Conflict,
    DataLoss,
    Locked,
    ManifestError,
    NomadgenError,
    NotHealthy,
    NothingOwned,
    PermissionDenied,
    Problem,
    ResolutionError,
    Unplaceable,
)
from .fields import NAME_RE, cut
from .manifest import load as load_manifest
from .model import EXTERNAL, Job
from .observe import Observed, needs_management, observe, observe_owned
from .pipeline import Rendered, build_resolution, no_gc
from .render import META_MANIFEST, META_SET, interfaces, render, workload_policies
from .settings import Config

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .backends import ConsulAPI, Node, NomadAPI
    from .model import Job


class Prepared(NamedTuple):
    rendered: Rendered
    changes: converge.ChangeSet
    zones_source: str
    data: tuple[data.DataStatement, ...] = ()  # what the change does to stateful sets' data
    observed: Observed | None = None  # what the change set was computed from
    preflight: tuple[preflight.Shortfall, ...] = ()  # what of the manifest does not fit


def read_nodes(nomad: NomadAPI, cfg: Config) -> list[Node]:
    return nomad.nodes(with_meta=not cfg.render.zone_attribute.startswith("${node."))


def cluster_zones(
    nomad: NomadAPI, cfg: Config, nodes: list[Node] | None = None
) -> tuple[tuple[str, ...], str]:
    """Zones to resolve against: the cluster's own, or the configured ones checked against it."""
    attr = cfg.render.zone_attribute
    nodes = read_nodes(nomad, cfg) if nodes is None else nodes
    have = converge.zones_from_nodes(nodes, attr)
    if not have:
        raise ResolutionError(
            "the cluster has no ready, eligible node with a zone; nothing was written",
            [Problem(f"{len(nodes)} node(s) seen; zone attribute {attr}")],
            hint="start Nomad clients, or set the zone attribute (--zone-attribute, e.g. ${meta.zone})",
        )
    if cfg.zones_source == "default":
        return have, "cluster"
    missing = [z for z in cfg.zones if z not in have]
    if missing:
        raise ConfigError(
            f"zone(s) {', '.join(missing)} ({cfg.zones_source}) are not in the cluster",
            hint=f"the cluster's zones by {attr}: {', '.join(have)}",
        )
    return cfg.zones, cfg.zones_source


def prepare(
    manifest_path: str,
    cfg: Config,
    nomad: NomadAPI,
    consul: ConsulAPI,
    *,
    name: str | None = None,
    prune: bool = False,
    dry_run: bool = True,
    health: bool = False,
    concurrency: int = 16,
) -> Prepared:
    """Resolve and render against the cluster's zones, observe the cluster once, then diff."""
    # A manifest that does not parse is the user's first problem, whatever the cluster says.
    with no_gc():
        loaded = load_manifest(manifest_path, name)
    nodes = read_nodes(nomad, cfg)
    zones, source = cluster_zones(nomad, cfg, nodes)
    with no_gc():
        manifest, plan = build_resolution(loaded, cfg, name, zones)
        jobs = tuple(render(plan, cfg.render))
        ifaces = tuple(interfaces(plan, cfg.render))
    seen = observe(
        plan,
        jobs,
        nomad,
        consul,
        cfg.render,
        prune=prune,
        dry_run=dry_run,
        health=health,
        nodes=nodes,
        concurrency=concurrency,
    )
    cs = diff(plan, jobs, ifaces, seen, cfg.render, manifest_text=manifest.text, prune=prune)
    record, recorded = data_record(cs, seen, nomad, cfg)
    if record is not None:
        cs = cs._replace(push=(*cs.push, record))
    return Prepared(
        Rendered(manifest, plan, jobs, ifaces),
        cs,
        source,
        data_statements(cs, nomad) + recorded,
        seen,
        preflight_check(jobs, cs, nomad, cfg),
    )


def preflight_check(
    jobs: tuple[Job, ...], cs: converge.ChangeSet, nomad: NomadAPI, cfg: Config
) -> tuple[preflight.Shortfall, ...]:
    """The whole manifest against the cluster's free room: the jobs this push registers (in
    submit order), around every allocation it does not replace. Read here, decided in
    nomadgen.preflight."""
    place = [c for c in cs.jobs if c.action in (converge.CREATE, converge.UPDATE)]
    if not place:
        return ()
    by_id = {j.id: j.api for j in jobs}
    todo = [by_id[c.id] for c in place if c.id in by_id]
    attr = cfg.render.zone_attribute
    # Meta and attributes come only with each node's full record: read them when a zone or a
    # constraint needs them (one request per node), else the node list is enough.
    full = preflight.needs_node_details(todo, attr)
    ns = cfg.render.namespace or "default"
    return tuple(
        preflight.check(
            todo,
            nomad.node_records(full),
            nomad.cluster_allocations(),
            zone_attribute=attr,
            replaced=[(ns, c.id) for c in place],
        )
    )


def refuse_unplaceable(prep: Prepared) -> None:
    """submit: what does not fit the cluster stops the push before anything is written."""
    if prep.preflight:
        sets = sorted({s.set for s in prep.preflight})
        raise Unplaceable(
            f"the manifest does not fit the cluster: {', '.join(sets)} cannot be placed in full; "
            "nothing was written",
            preflight.problems(prep.preflight),
            hint="`nomadgen plan` shows the same; free or add capacity, then submit again",
        )


def data_record(
    cs: converge.ChangeSet, seen: Observed, nomad: NomadAPI, cfg: Config
) -> tuple[converge.KVChange | None, tuple[data.DataStatement, ...]]:
    """The push record of instances that started empty (push/data): submit writes it, so from
    then on `status` reads the set in sync again (data.acknowledged has the rule). Returns the
    key's change (None: absent and nothing to record) and plan's statements for what is new."""
    key = names.push_key(converge.prefix_of(cs.plan.manifest, cfg.render), "data")
    have = seen.kv.get(key)
    old: dict[str, list[str]] = json.loads(have[0]).get("acknowledged", {}) if have else {}
    want: dict[str, list[str]] = {}
    out: list[data.DataStatement] = []
    node_status: dict[str, str] | None = None
    for s in cs.plan.sets:
        if not (s.job_hosted and s.run.state is not None):
            continue
        history = nomad.allocations(s.job_id)
        alloc_names = [a.get("Name") for a in history]
        if len(set(alloc_names)) == len(alloc_names):
            continue  # no instance has had a second allocation: none can have started empty
        if node_status is None:
            node_status = {n.id: n.status for n in seen.nodes or nomad.nodes(with_meta=False)}
        empty = [
            d for d in instance_data(nomad, history, node_status) if d.outcome == data.STARTED_EMPTY
        ]
        if empty:
            want[s.job_id] = sorted({d.origin for d in empty})
        new = [d for d in empty if d.origin not in old.get(s.job_id, ())]
        if new:
            out.append(
                data.DataStatement(
                    s.name,
                    s.job_id,
                    new[0].storage,
                    data.RECORDED,
                    len(new),
                    "started empty earlier ("
                    + ", ".join(d.name for d in new)
                    + "): submit records it, and status then reads the set in sync",
                )
            )
    if have is None and not want:
        return None, ()
    value = (json.dumps({"acknowledged": want}, indent=2, sort_keys=True) + "\n").encode()
    if have is not None and have[0] == value:
        return converge.KVChange(key, converge.UNCHANGED, value, have[1]), ()
    return converge.KVChange(key, converge.PUT, value, have[1] if have else 0), tuple(out)


def data_statements(cs: converge.ChangeSet, nomad: NomadAPI) -> tuple[data.DataStatement, ...]:
    """For each changed job of a stateful set: Nomad's plan annotations, the live job, its
    allocations and the nodes they run on, read into data.predict."""
    stateful = {s.job_id: s.name for s in cs.plan.sets if s.job_hosted and s.run.state is not None}
    todo = [c for c in cs.jobs if c.id in stateful and c.dry_run and c.modify_index and c.job]
    if not todo:
        return ()
    nodes = {
        n.id: data.NodeView(n.name, n.status != "down", n.status == "ready" and n.eligible)
        for n in nomad.nodes(with_meta=False)
    }
    out: list[data.DataStatement] = []
    for c in todo:
        dry_run, job = c.dry_run or {}, c.job or {}  # both set: see todo
        updates = (dry_run.get("Annotations") or {}).get("DesiredTGUpdates")
        allocs = [a for a in nomad.allocations(c.id) if a.get("DesiredStatus") == "run"]
        changed = ((dry_run.get("Diff") or {}).get("Type") or "None") != "None"
        if any(
            u.get("DestructiveUpdate")
            or (changed and u.get("Ignore") and not u.get("InPlaceUpdate"))
            for u in (updates or {}).values()
        ):  # replacements: does each still fit on its node? (data.py _replaced)
            for node_id in sorted({a.get("NodeID", "") for a in allocs} & nodes.keys()):
                if nodes[node_id].room is None:
                    nodes[node_id] = nodes[node_id]._replace(room=nomad.node_room(node_id))
        out += data.predict(stateful[c.id], job, nomad.job(c.id), updates, allocs, nodes, changed)
    return tuple(out)


def refuse_data_loss(prep: Prepared) -> None:
    """submit without --allow-data-loss: nothing is written when a stateful set would lose data."""
    lost = data.losses(prep.data)
    if lost:
        raise DataLoss(
            "this change would lose the data of "
            + ", ".join(sorted({d.set for d in lost}))
            + "; nothing was written",
            [data_problem(d) for d in lost],
            hint="back the data up, then pass --allow-data-loss; or keep the instances in place "
            "(see `nomadgen plan`)",
        )


def data_problem(d: data.DataStatement) -> Problem:
    return Problem(f"{d.set} ({d.storage}): {d.instances} instance(s): {d.how}")


def needs_lock(cs: converge.ChangeSet) -> bool:
    """Whether applying `cs` writes anything. Not when nothing changed, nor when Nomad's plan
    says a job cannot be placed (apply refuses before its first write)."""
    if any(
        converge.placement_failures(c.dry_run)
        for c in cs.jobs
        if c.action in (converge.CREATE, converge.UPDATE)
    ):
        return False
    return cs.changed or any(k.action != converge.UNCHANGED for k in cs.push)


def probe_submit_writes(cs: converge.ChangeSet, nomad: NomadAPI) -> None:
    """Ask, before submit's first write, what Nomad can answer without a write: whether the
    token may create the credentials submit will generate (else the interface documents would
    be written, then the run stop). Consul's key:write is checked by the interface transaction,
    the first write; service:write on a new external service cannot be asked (Consul checks
    it only against a registered service), so that refusal still comes at its write."""
    for path, _ in cs.credentials:
        nomad.may_write_variable(path)


def fingerprint(cs: converge.ChangeSet) -> tuple[Any, ...]:
    """What a change set was computed from: each job's and key's action and index."""
    # A job's index says whether it changed since; its action is derived from it and the fixed
    # desired job (a re-read without dry runs cannot tell "unchanged" from "update").
    return (
        tuple((c.id, c.modify_index) for c in cs.jobs),
        tuple((k.key, k.action, k.modify_index) for k in cs.kv + cs.push),
        tuple((s.id, s.action) for s in cs.services),
        cs.credentials,
    )


class SetStatus(NamedTuple):
    set: str
    job: str
    state: str
    placements: tuple[tuple[str, str, str], ...]  # (zone, node, client status)
    healthy: int
    expected: int
    interface: bool
    drift: str
    data: tuple[
        data.InstanceData, ...
    ] = ()  # stateful sets: per instance, continued or started empty
    waiting: tuple[str, ...] = ()  # tasks that cannot start yet, and why (their template events)
    health: str = ""  # healthy | pending | degraded | missing | stopped (as submit judges)
    why: str = ""
    deployment: str = ""  # the live version's deployment ID
    allocations: tuple[str, ...] = ()  # IDs of the allocations meant to run

    @property
    def ok(self) -> bool:
        """Healthy and as the manifest (or the push) says: what exit 0 of status means."""
        return self.health in ("healthy", "") and self.drift in ("in sync", DRIFT_UNKNOWN)


DRIFT_UNKNOWN = "not checked (give the manifest file)"


class _SetInfo(NamedTuple):
    name: str
    job: str  # the job hosting it ("" for an external set)
    expected: int
    external: bool


def status(
    manifest_name: str,
    cfg: Config,
    nomad: NomadAPI,
    consul: ConsulAPI,
    manifest_path: str | None = None,
) -> tuple[list[SetStatus], dict[str, Any]]:
    """Per set: state, placements, deployment and allocation IDs, health as submit judges it, the
    interface, and drift. Built on one Observed read. The sets come from the manifest file when
    given (then drift is Nomad's plan diff of the desired job, as in `plan`), else from the push
    record, else from the jobs and external services this manifest owns (by their meta)."""
    root = converge.prefix_of(manifest_name, cfg.render)
    scope = cfg.render.scope
    nodes_list = read_nodes(nomad, cfg)
    drift_of: dict[str, str] = {}
    if manifest_path is not None:
        prep = prepare(
            manifest_path, cfg, nomad, consul, name=_base_name(manifest_name), health=True
        )
        assert prep.observed is not None  # prepare always observes
        seen = prep.observed
        plan = prep.rendered.plan
        sets = [
            _SetInfo(
                s.name,
                "" if s.kind == EXTERNAL else plan.job_of(s.name),
                s.instance_count,
                s.kind == EXTERNAL,
            )
            for s in plan.sets
        ]
        for c in prep.changes.jobs:
            if c.action == converge.UPDATE:
                lines = [x.strip() for x in diff_summary(c.dry_run) if ": " in x]
                drift_of[c.id] = "differs from the manifest" + (f": {lines[0]}" if lines else "")
        record: dict[str, Any] = {"manifest": manifest_name}
    else:
        seen = observe_owned(manifest_name, nomad, consul, cfg.render, nodes=nodes_list)
        if not seen.kv and not getattr(getattr(consul, "ep", None), "token", "set"):
            # Consul with ACLs hides keys from a request without a token: say so rather than
            # report every set unhealthy and unpublished.
            raise NomadgenError(
                f"nothing of manifest {manifest_name!r} is readable in Consul, and no Consul "
                "token is set",
                hint="with Consul ACLs, set CONSUL_HTTP_TOKEN (or --consul-token-file); without "
                "ACLs, run `nomadgen submit MANIFEST` first",
            )
        foreign = foreign_records(root, seen.kv, cfg.render, bool(seen.owned()))
        if foreign:  # another namespace's deployment: its sets are not missing, just not here
            raise other_namespace(manifest_name, root, foreign, cfg.render)
        raw = seen.kv.get(names.push_key(root, "plan"))
        record = json.loads(raw[0]) if raw is not None else {"manifest": manifest_name}
        if raw is not None:
            sets = [
                _SetInfo(
                    name,
                    ""
                    if info.get("external")
                    else info["job"] or names.job_id(_host_root(record, name), scope),
                    info["count"],
                    bool(info.get("external")),
                )
                for name, info in record["sets"].items()
            ]
        else:  # no push record: what the jobs' and services' meta say this manifest owns
            sets = [
                _SetInfo(
                    (seen.jobs[jid].get("Meta") or {}).get(META_SET) or jid,
                    jid,
                    sum(seen.groups.get(jid, {}).values()),
                    False,
                )
                for jid in seen.owned()
            ] + [
                _SetInfo(
                    (svc.get("Meta") or {}).get(META_SET) or svc.get("Service", sid), "", 1, True
                )
                for sid, svc in converge.owned_external(seen.services, manifest_name).items()
            ]
    if not sets:
        raise NomadgenError(
            f"manifest {manifest_name!r} owns no job and no service on this cluster",
            hint="run `nomadgen submit MANIFEST` first (the manifest name is its file name)",
        )
    data_raw = seen.kv.get(names.push_key(root, "data"))
    recorded: dict[str, list[str]] = (
        json.loads(data_raw[0]).get("acknowledged", {}) if data_raw else {}
    )
    nodes = {n.id: n for n in nodes_list}
    attr = cfg.render.zone_attribute
    rows = []
    for info in sorted(sets, key=lambda i: i.name):
        svc = names.job_id(info.name, scope)
        interface = names.interface_key(root, svc) in seen.kv
        passing = seen.passing.get(svc, 0)
        if info.external:
            ok = passing > 0 or svc not in seen.passing
            registered = any(
                (x.get("Meta") or {}).get(META_SET) == info.name
                for x in converge.owned_external(seen.services, manifest_name).values()
            )
            rows.append(
                SetStatus(
                    info.name,
                    "",
                    "external",
                    (),
                    passing,
                    1,
                    interface,
                    "in sync" if registered else "not registered",
                    health="healthy" if registered and ok else "degraded",
                    why="registered with the Consul agent" if registered else "not registered",
                )
            )
            continue
        job_id = info.job
        stub = seen.jobs.get(job_id)
        history = seen.allocations.get(job_id, [])
        live = [a for a in history if a.get("DesiredStatus") == "run"]
        total = sum(seen.groups.get(job_id, {}).values())
        h = job_health(stub, seen.deployments.get(job_id), history, total)
        instances: tuple[data.InstanceData, ...] = ()
        if stub is None:
            state, drift = "missing", "job missing"
        else:
            state = "stopped" if stub.get("Stop") else stub.get("Status", "?")
            meta = stub.get("Meta") or {}
            if meta.get(META_MANIFEST) != manifest_name:
                drift = "not ours"
            else:
                # Without the manifest file, the push record's counts are what can be compared;
                # without either, drift is not known.
                pushed = "sets" in record
                drift = drift_of.get(
                    job_id, "in sync" if manifest_path or pushed else DRIFT_UNKNOWN
                )
                own = info.job == names.job_id(info.name, scope)
                if not manifest_path and pushed and own and total != info.expected:
                    drift = f"count changed: {total} live, {info.expected} pushed"
            if info.job == names.job_id(info.name, scope):  # the set's own job
                instances = data.acknowledged(
                    instance_data(nomad, history, {n.id: n.status for n in nodes.values()}),
                    recorded.get(job_id, ()),
                )
            empty = data.unacknowledged(instances)
            if empty and drift in ("in sync", DRIFT_UNKNOWN):
                drift = "data lost: " + ", ".join(d.name for d in empty) + " started empty"
        checked = svc in seen.checked.get(job_id, ())
        # A set without checks is judged by its allocations running, as submit judges it.
        running = sum(
            1
            for a in live
            if a.get("ClientStatus") == "running"
            and (stub is None or a.get("JobVersion") == stub.get("Version"))
        )
        healthy = passing if checked else min(running, info.expected)
        health, why = h.state, h.why
        if health == HEALTHY and checked and passing < info.expected:
            health, why = DEGRADED, f"Consul checks of {svc}: {passing}/{info.expected} passing"
        rows.append(
            SetStatus(
                info.name,
                job_id,
                state,
                tuple(
                    sorted(
                        (
                            _zone(nodes.get(a.get("NodeID", "")), attr),
                            a.get("NodeName", "?"),
                            a.get("ClientStatus", "?"),
                        )
                        for a in live
                    )
                ),
                healthy,
                info.expected,
                interface,
                drift,
                instances,
                tuple(sorted(w for w in (_waiting(a, nodes, attr, root) for a in live) if w)),
                health,
                why,
                h.deployment,
                h.allocations,
            )
        )
    return rows, record


def _base_name(owner: str) -> str:
    return owner.partition("@")[0]


class _Allocs(dict[str, Any]):
    """Full allocations by ID, read when first asked for."""

    def __init__(self, nomad: NomadAPI) -> None:
        super().__init__()
        self.nomad = nomad

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = self.nomad.allocation(key)
        return super().get(key) or default


def instance_data(
    nomad: NomadAPI, history: list[dict[str, Any]], node_status: dict[str, str]
) -> tuple[data.InstanceData, ...]:
    """Per running instance of a stateful job: did its data continue or start empty?"""
    full = _Allocs(nomad)
    out = []
    for a in sorted(history, key=lambda a: a.get("Name", "")):
        if a.get("DesiredStatus") != "run":
            continue
        alloc = full.get(a["ID"])
        if alloc is None:
            continue
        d = data.continuity(alloc, full, history, node_status)
        if d.storage == "none":
            return ()  # a job that keeps no data
        out.append(d)
    return tuple(out)


def _waiting(alloc: dict[str, Any], nodes: dict[str, Any], attr: str, root: str) -> str:
    """Why a pending task waits: Nomad's last template event (`Missing: kv.block(...)`)."""
    for task, st in sorted((alloc.get("TaskStates") or {}).items()):
        if st.get("State") != "pending":
            continue
        events = [e for e in st.get("Events") or () if e.get("Type") == "Template"]
        msg = (events[-1].get("DisplayMessage") or "") if events else ""
        if not msg.startswith("Missing:"):
            continue
        where = f"{_zone(nodes.get(alloc.get('NodeID', '')), attr)}/{alloc.get('NodeName', '?')}"
        wait = names.wait_key(root, "")
        if f"kv.block({wait}" in msg:
            dep = msg.split(wait, 1)[1].split(")", 1)[0]
            return f"{where}: {task} waits for a healthy {dep} instance in its zone ({msg})"
        return f"{where}: {task} waits: {msg}"
    return ""


def _host_root(record: dict[str, Any], name: str) -> str:
    while record["sets"][name]["host"]:
        name = record["sets"][name]["host"]
    return name


def _zone(node: Node | None, attr: str) -> str:
    return (names.node_zone(node, attr) if node is not None else None) or "?"


class Destroyed(NamedTuple):
    jobs: tuple[str, ...]
    keys: int
    services: tuple[str, ...] = ()
    kept_keys: tuple[str, ...] = ()  # keys under the prefix nomadgen did not write
    credentials: tuple[str, ...] = ()  # generated credentials deleted (--delete-credentials)
    kept_credentials: tuple[str, ...] = ()  # generated credentials kept (the default)
    namespace: str = "default"  # where the credentials are


class Owned(NamedTuple):
    """What a manifest has on the cluster, as destroy finds it."""

    jobs: tuple[str, ...]
    services: tuple[str, ...]
    keys: dict[str, int]  # the keys nomadgen wrote (without the lock), with their ModifyIndex
    other_keys: tuple[str, ...]
    policies: tuple[str, ...]
    credentials: tuple[tuple[str, int], ...]  # generated variables: (path, ModifyIndex)
    locked: bool = False  # its lock key is there (a run in progress, or a crashed one's)
    foreign: tuple[Home, ...] = ()  # its KV records are another namespace's deployment

    @property
    def nothing(self) -> bool:
        return not (self.jobs or self.services or self.keys or self.policies or self.credentials)


def owned(manifest_name: str, cfg: Config, nomad: NomadAPI, consul: ConsulAPI) -> Owned:
    root = converge.prefix_of(manifest_name, cfg.render)
    tree = consul.kv_tree(root)
    jobs = owned_jobs(manifest_name, nomad)
    mine, other = ours(root, tree)
    locked = mine.pop(names.lock_key(root), None) is not None  # a lock alone owns nothing
    policies = tuple(
        name
        for name, stub in sorted((nomad.acl_policies() or {}).items())
        if names.owns_policy(stub.get("Description", ""), manifest_name)
    )
    return Owned(
        tuple(jobs),
        tuple(sorted(converge.owned_external(consul.services(), manifest_name))),
        mine,
        tuple(other),
        policies,
        generated_credentials(nomad, manifest_name),
        locked,
        tuple(foreign_records(root, tree, cfg.render, bool(jobs))),
    )


def generated_credentials(nomad: NomadAPI, manifest_name: str) -> tuple[tuple[str, int], ...]:
    """The Nomad Variables nomadgen generated for this manifest: those carrying its owner item
    (variables put by hand lack it). Read one by one, as the list has no items; after a
    destroy that kept them, the paths are known from nothing else."""
    out = []
    for meta in nomad.variables(""):
        path = str(meta.get("Path", ""))
        if path.startswith("nomad/") and not path.startswith("nomad/jobs"):
            continue  # Nomad's reserved paths other than the jobs' own
        var = nomad.variable(path)
        items = (var or {}).get("Items") or {}
        if var is not None and items.get(names.CREDENTIALS_OWNER_ITEM) == manifest_name:
            out.append((path, int(var.get("ModifyIndex") or 0)))
    return tuple(sorted(out))


def refuse_other_namespace(manifest_name: str, what: Owned, cfg: Config) -> None:
    """destroy: the manifest's keys (and external services) are another Nomad namespace's
    deployment; deleting them would take its interfaces away. Exit 10, before any write."""
    if what.foreign:
        root = converge.prefix_of(manifest_name, cfg.render)
        exc = other_namespace(manifest_name, root, list(what.foreign), cfg.render)
        if what.jobs:
            exc.problems = (
                *exc.problems,
                Problem(
                    f"jobs of {manifest_name} in this namespace: {_few(list(what.jobs))}; stop "
                    "them with `nomad job stop -purge` if they are a copy"
                ),
            )
        raise exc


def refuse_nothing_owned(manifest_name: str, what: Owned, *, locked_too: bool = False) -> None:
    """Exit 16 when the manifest owns nothing; while its lock key is there (another run may
    be creating things), only with `locked_too`, once destroy holds the lock itself."""
    if what.nothing and (locked_too or not what.locked):
        raise NothingOwned(
            f"manifest {manifest_name} owns nothing on this cluster (no job, external service, "
            "KV key, ACL policy or generated credential); nothing was done",
            hint="check the manifest name (its file name without .json), --env, and the "
            "namespace (NOMAD_NAMESPACE)",
        )


class DestroyError(NomadgenError):
    """destroy stopped part way: the cause, and exactly what was and was not done."""

    def __init__(self, cause: NomadgenError, done: list[str], not_done: list[str]) -> None:
        super().__init__(
            f"destroy stopped: {cause.subject}",
            list(cause.problems)
            + [Problem("done: " + _few(done)), Problem("not done: " + _few(not_done))],
            hint=(cause.hint + "; " if cause.hint else "")
            + "running destroy again finishes the rest",
        )
        self.exit_code = cause.exit_code


def _few(items: list[str], n: int = 8) -> str:
    if not items:
        return "nothing"
    more = len(items) - n
    return ", ".join(items[:n]) + (f" and {more} more" if more > 0 else "")


def check_manifest_name(name: str) -> str:
    """A manifest name is a DNS label, like a set name: `dockland/interfaces` is not one. In an
    environment the owner is `dockland@prod` (names.owner): each part a DNS label."""
    base, at, scope = name.partition("@")
    if not NAME_RE.match(base) or (at and not NAME_RE.match(scope)):
        raise ManifestError(
            f"invalid manifest name {cut(name)}",
            hint="a manifest name is lower-case letters, digits and '-' (1-63), "
            "like the file name dockland.json -> dockland",
        )
    return name


def owned_jobs(manifest_name: str, nomad: NomadAPI) -> list[str]:
    return sorted(
        jid
        for jid, s in nomad.jobs().items()
        if (s.get("Meta") or {}).get(META_MANIFEST) == manifest_name
    )


def ours(root: str, tree: dict[str, tuple[bytes, int]]) -> tuple[dict[str, int], list[str]]:
    """The keys nomadgen wrote under a manifest's prefix (its interface documents, the push
    record, the lock), with their ModifyIndex; and the other keys, which destroy leaves."""
    mine, other = {}, []
    fixed = {names.push_key(root, "manifest"), names.push_key(root, "plan"), names.lock_key(root)}
    iface_root = names.interfaces_root(root)
    for key, (value, index) in sorted(tree.items()):
        if key in fixed:
            mine[key] = index
            continue
        service = key[len(iface_root) :]
        if key.startswith(iface_root) and service and "/" not in service:
            try:
                doc = json.loads(value)
                if isinstance(doc, dict) and doc.get("service") == service and "set" in doc:
                    mine[key] = index
                    continue
            except ValueError:
                pass
        other.append(key)
    return mine, other


def destroy(
    manifest_name: str,
    cfg: Config,
    nomad: NomadAPI,
    consul: ConsulAPI,
    *,
    delete_credentials: bool = False,
    timeout: float = 300.0,
) -> Destroyed:
    """Purge the jobs this manifest owns (ownership read again right before each), deregister
    its external services, delete its job-scoped ACL policies and the keys it wrote; run under
    the manifest's lock, which is also the first write and so proves the Consul token can
    write before anything goes. The credentials it generated stay unless `delete_credentials`:
    a stateful set's data can outlive its job, and a database keeps the password it was
    initialised with, so new random ones would lock the next deployment out of it.
    A manifest that owns nothing is an error (NothingOwned); the CLI says so before any write."""
    check_manifest_name(manifest_name)
    root = converge.prefix_of(manifest_name, cfg.render)
    with ManifestLock(consul, root, manifest_name, "destroy") as lock:
        what = owned(manifest_name, cfg, nomad, consul)
        if what.nothing:
            lock.delete_on_release = True  # a crashed run's lock: tidied on the way out
            refuse_nothing_owned(manifest_name, what, locked_too=True)
        refuse_other_namespace(manifest_name, what, cfg)
        jobs, services, mine, other = list(what.jobs), what.services, what.keys, what.other_keys
        _probe_nomad_write(nomad, jobs)
        _probe_policy_rights(nomad, jobs, manifest_name)
        _probe_consul_write(consul, list(mine), services)
        creds = what.credentials if delete_credentials else ()
        todo = (
            [f"purge {j}" for j in jobs]
            + [f"deregister {s}" for s in services]
            + [f"delete acl policy {name}" for name in what.policies]
            + [f"delete variable {p}" for p, _ in creds]
            + ([f"delete {len(mine)} key(s)"] if mine else [])
        )
        done: list[str] = []
        purged, left_alone = [], []
        deleted: list[str] = []
        changed: list[str] = []
        try:
            for jid in jobs:
                lock.check()
                try:
                    if converge.stop_owned(nomad, jid, manifest_name, purge=True):
                        purged.append(jid)
                except Conflict as exc:
                    left_alone.append(exc)
                todo.remove(f"purge {jid}")
                done.append(f"purge {jid}")
            if purged:
                # exit 0 means they are gone: stopped on their clients, out of Consul
                todo.insert(0, "wait for the purged jobs' allocations to stop")
                running = converge.wait_stopped(nomad, purged, timeout)
                if running:
                    raise NotHealthy(
                        f"{len(running)} purged job(s) still have allocations running after "
                        f"{timeout:g} s: {_few(running)}",
                        hint="their clients may be down or slow to stop them; see `nomad job "
                        "status`, and run destroy again (or with a larger --timeout)",
                    )
                todo.pop(0)
                done.append("allocations stopped")
            for sid in services:
                lock.check()
                consul.deregister_service(sid)
                todo.remove(f"deregister {sid}")
                done.append(f"deregister {sid}")
            for name in what.policies:
                lock.check()
                nomad.delete_acl_policy(name)
                todo.remove(f"delete acl policy {name}")
                done.append(f"delete acl policy {name}")
            for path, index in creds:
                lock.check()
                # Check-and-set: a variable rewritten since it was read is someone else's now.
                (deleted if nomad.delete_variable(path, index) else changed).append(path)
                todo.remove(f"delete variable {path}")
                done.append(f"delete variable {path}")
            if mine:
                lock.check()
                # delete-cas: a key rewritten since it was read is someone else's now: kept.
                consul.txn([{"Verb": "delete-cas", "Key": k, "Index": i} for k, i in mine.items()])
                todo.pop()
                done.append(f"delete {len(mine)} key(s)")
        except NomadgenError as exc:
            raise DestroyError(exc, done, todo) from exc
        lock.delete_on_release = True
    if left_alone:
        raise Conflict(
            "destroy left jobs that changed owner alone",
            [Problem(e.subject) for e in left_alone] + [Problem("done: " + _few(done))],
            hint="nomadgen never stops jobs it does not own",
        )
    kept = tuple(p for p, _ in what.credentials if not delete_credentials) + tuple(changed)
    return Destroyed(
        tuple(purged),
        len(mine),
        tuple(services),
        tuple(other),
        tuple(deleted),
        kept,
        cfg.render.namespace or "default",
    )


def _probe_nomad_write(nomad: NomadAPI, jobs: list[str]) -> None:
    """Nomad's plan endpoint needs the submit-job capability, as stop and purge do: a dry
    run of one owned job checks the token before anything is purged."""
    if not jobs:
        return
    job = nomad.job(jobs[0])
    if job is None:
        return
    try:
        nomad.plan(job)
    except PermissionDenied:
        raise
    except NomadgenError:
        pass  # a plan the server finds fault with still passed the ACL check


def _probe_consul_write(consul: ConsulAPI, keys: list[str], services: Iterable[str]) -> None:
    """Consul refuses a write only at the write, so destroy asks first, with requests that pass
    the same ACL checks and change nothing: `check-not-exists` on keys that exist needs
    key:write and fails, rolling its transaction back (agent/consul/kvs_endpoint.go
    kvsPreApply); maintenance off needs service:write (ConsulAPI.may_write_service)."""
    for start in range(0, len(keys), 64):
        try:
            consul.txn([{"Verb": "check-not-exists", "Key": k} for k in keys[start : start + 64]])
        except Conflict:
            pass  # the keys exist: every op passed its ACL check, and nothing was written
        except PermissionDenied as exc:
            raise PermissionDenied(
                "the Consul token may not delete the manifest's keys ("
                + exc.subject.split(": ", 1)[-1]
                + ")",
                hint="it needs key:write on the manifest's keys (see ACL policies in the README)",
            ) from exc
    for sid in services:
        consul.may_write_service(sid)


def _probe_policy_rights(nomad: NomadAPI, jobs: list[str], manifest: str) -> None:
    """Jobs that read other jobs' credentials have job-scoped ACL policies, which a client token
    can neither see nor delete: refuse before anything is purged rather than leave them."""
    if not jobs or nomad.acl_policies() is None or nomad.acl_management():
        return
    live = [Job(jid, "", j) for jid in jobs if (j := nomad.job(jid)) is not None]
    wanted = workload_policies(manifest, live)
    if wanted:
        raise needs_management(wanted)


# --- The manifest lock ---------------------------------------------------------------------

LOCK_TTL_S = 15  # Consul invalidates a session after 2 x TTL without renewal: a crashed
LOCK_DELAY_S = 5  # holder's lock frees within 30 s, and can be taken again 5 s later
LOCK_RENEW_S = 5.0


def lock_holder(consul: ConsulAPI, key: str) -> str:
    """Who holds a manifest's lock, from the JSON its holder wrote into the key."""
    try:
        got = consul.kv_get(key)
        doc = json.loads(got[0]) if got and got[0] else {}
        since = time.strftime("%H:%M:%S", time.localtime(doc.get("since", 0)))
        return (
            f"{doc.get('command', '?')} on {doc.get('host', '?')}, pid {doc.get('pid', '?')}, "
            f"since {since}"
        )
    except (NomadgenError, ValueError, TypeError, AttributeError):
        return "holder unknown"


def refuse_if_locked(consul: ConsulAPI, root: str, manifest: str) -> None:
    """A submit with nothing to write takes no lock (a write), but must not call the manifest
    converged while another run holds it: a destroy under way would make that exit 0 a lie."""
    key = names.lock_key(root)
    if consul.kv_session(key):
        raise Locked(
            f"manifest {manifest} is locked by another nomadgen run ({lock_holder(consul, key)})",
            hint="wait for it to finish and run again; a run that was killed frees "
            f"its lock within {2 * LOCK_TTL_S + LOCK_DELAY_S} s",
        )


class ManifestLock:
    """`consul lock` for one manifest: a session with a TTL, `?acquire=` on
    <kv_prefix>/<manifest>/lock, renewed in the background, released (session destroyed) on
    exit. A crash leaves the session to expire. Every writing command holds it."""

    def __init__(self, consul: ConsulAPI, root: str, manifest: str, command: str) -> None:
        self.consul = consul
        self.key = names.lock_key(root)
        self.manifest = manifest
        self.command = command
        self.session = ""
        self.lost = False
        self.delete_on_release = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ManifestLock:
        import os
        import socket

        holder = json.dumps(
            {
                "command": self.command,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": int(time.time()),
            },
            sort_keys=True,
        )
        self.session = self.consul.session_create(
            f"nomadgen {self.command} {self.manifest}", LOCK_TTL_S, LOCK_DELAY_S
        )
        try:
            got = self.consul.kv_acquire(self.key, holder.encode(), self.session)
        except BaseException:
            self._end()
            raise
        if not got:
            self._end()
            raise Locked(
                f"manifest {self.manifest} is locked by another nomadgen run ({self._holder()})",
                hint="wait for it to finish and run again; a run that was killed frees "
                f"its lock within {2 * LOCK_TTL_S + LOCK_DELAY_S} s",
            )
        self._thread = threading.Thread(target=self._renew, daemon=True, name="nomadgen-lock")
        self._thread.start()
        return self

    def _holder(self) -> str:
        return lock_holder(self.consul, self.key)

    def _renew(self) -> None:
        while not self._stop.wait(LOCK_RENEW_S):
            try:
                if not self.consul.session_renew(self.session):
                    self.lost = True
                    return
            except NomadgenError:
                continue  # a failed renewal is tried again; the TTL leaves room for a few

    def check(self) -> None:
        """Called before each write: a lost lock (session expired) stops the run."""
        if self.lost:
            raise Locked(
                f"lost the lock of manifest {self.manifest} (its Consul session expired)",
                hint="another run may have taken over; run again",
            )

    def _end(self) -> None:
        try:
            self.consul.session_destroy(self.session)  # releases the lock, as in Consul
        except NomadgenError:
            pass  # the TTL ends it anyway

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.consul.kv_release(self.key, self.session) and self.delete_on_release:
                got = self.consul.kv_get(self.key)
                if got is not None:
                    self.consul.kv_delete_cas(self.key, got[1])
        except NomadgenError:
            pass
        self._end()


class InterfaceView(NamedTuple):
    key: str
    document: dict[str, Any]
    instances: tuple[dict[str, Any], ...]


def interface_get(
    set_name: str, cfg: Config, consul: ConsulAPI, manifest_name: str | None = None
) -> InterfaceView:
    job_id = names.job_id(set_name, cfg.render.scope)
    if manifest_name:
        owner = names.owner(manifest_name, cfg.render.scope)
        key = names.interface_key(converge.prefix_of(owner, cfg.render), job_id)
        got = consul.kv_get(key)
        found = {key: got} if got else {}
    else:
        tree = consul.kv_tree(cfg.render.kv_prefix)
        found = {k: v for k, v in tree.items() if names.is_interface_of(k, job_id)}
    if not found:
        raise NomadgenError(
            f"no interface published for {set_name}",
            hint="check the set name (`nomadgen resolve MANIFEST`) and that it was submitted",
        )
    if len(found) > 1:
        raise NomadgenError(
            f"{set_name} is published by several manifests: "
            + ", ".join(names.owner_of_key(k) for k in sorted(found)),
            hint="pick one with --manifest",
        )
    key, (value, _) = next(iter(found.items()))
    instances = tuple(
        {
            "node": e["Node"]["Node"],
            "address": e["Service"]["Address"] or e["Node"]["Address"],
            "port": e["Service"]["Port"],
            "tags": e["Service"].get("Tags") or [],
        }
        for e in consul.healthy(job_id)
    )
    return InterfaceView(
        key, json.loads(value), tuple(sorted(instances, key=lambda i: (i["node"], i["port"])))
    )


def plan_counts(cs: converge.ChangeSet) -> Counter[str]:
    return Counter(j.action for j in cs.jobs)
