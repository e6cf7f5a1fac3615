"""Converging a cluster on a plan, the pyinfra way: observe what is, compare it with what is
wanted (a ChangeSet), show it, then apply it set by set (a Report).

    observe(...)  -> ChangeSet   reads jobs, KV and (optionally) Nomad's own plan for each job
    apply(...)    -> Report      writes interfaces, registers jobs layer by layer, waits for health

Only jobs whose meta names this manifest are ever updated or stopped. Unchanged jobs (same spec
hash) are never registered again; changed ones are registered with check-and-set on
JobModifyIndex. Interface documents are written in Consul transactions (<= 128 ops) with
check-and-set on each key's ModifyIndex.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from . import names
from .errors import (
    Conflict,
    NomadgenError,
    NotHealthy,
    Problem,
    ResolutionError,
    Unavailable,
    Unplaceable,
)
from .model import EXTERNAL, Job, KVEntry, RenderSettings, Resolution
from .render import META_MANIFEST, META_SET, pretty_json, reads, workload_policies

if TYPE_CHECKING:
    from .backends import ConsulAPI, Node, NomadAPI


class Action(StrEnum):
    """What a change does to a job, a KV key, a policy or a service; converge decides it, console
    shows it. The values are the words of the JSON output."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    STOP = "stop"  # pruned: owned, no longer declared
    STALE = "stale"  # owned, no longer declared, kept (no --prune)
    REGISTER = "register"
    DEREGISTER = "deregister"
    PUT = "put"
    DELETE = "delete"


CREATE, UPDATE, UNCHANGED, STOP, STALE = (
    Action.CREATE,
    Action.UPDATE,
    Action.UNCHANGED,
    Action.STOP,
    Action.STALE,
)
REGISTER, DEREGISTER = Action.REGISTER, Action.DEREGISTER
PUT, DELETE = Action.PUT, Action.DELETE


class JobChange(NamedTuple):
    id: str
    set: str
    action: Action  # create | update | unchanged | stop (prune) | stale (owned, dropped, kept)
    layer: int
    job: dict[str, Any] | None  # the desired API job
    modify_index: int  # JobModifyIndex read at observe time (0: absent)
    dry_run: dict[str, Any] | None = None  # Nomad's own dry run, with Diff and FailedTGAllocs


class KVChange(NamedTuple):
    key: str
    action: Action  # put | delete | unchanged
    value: bytes | None
    modify_index: int  # ModifyIndex read at observe time (0: absent)


class ServiceChange(NamedTuple):
    """An external service nomadgen registers through the Consul agent API."""

    id: str  # nomadgen:<manifest>:<service>
    name: str
    action: Action  # register | unchanged | deregister | stale
    address: str = ""
    port: int = 0
    tags: tuple[str, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()


class PolicyChange(NamedTuple):
    """A job-scoped Nomad ACL policy letting a dependent read its dependencies' credentials."""

    name: str
    job: str
    action: Action  # put | delete | unchanged
    paths: tuple[str, ...] = ()
    body: dict[str, Any] | None = None


class Reload(NamedTuple):
    set: str
    job: str
    how: str  # "rolling update" | "template change (change_mode restart)"
    because: tuple[str, ...]  # the changed sets it depends on (itself when its own job changed)


class ChangeSet(NamedTuple):
    manifest: str
    plan: Resolution
    jobs: tuple[JobChange, ...]
    kv: tuple[KVChange, ...]
    reloads: tuple[Reload, ...]
    push: tuple[KVChange, ...]  # the record of this push: manifest text and resolved plan
    services: tuple[ServiceChange, ...] = ()
    credentials: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (variable path, items) to generate
    policies: tuple[PolicyChange, ...] = ()  # only on clusters with ACLs

    @property
    def changed(self) -> bool:
        return (
            any(j.action not in (UNCHANGED, STALE) for j in self.jobs)
            or any(k.action != UNCHANGED for k in self.kv)
            or any(s.action in (REGISTER, DEREGISTER) for s in self.services)
            or bool(self.credentials)
            or any(p.action != UNCHANGED for p in self.policies)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "changed": self.changed,
            "jobs": [
                {
                    "job": j.id,
                    "set": j.set,
                    "action": j.action,
                    "layer": j.layer,
                    "diff": diff_summary(j.dry_run),
                    "placement_failures": placement_failures(j.dry_run),
                }
                for j in self.jobs
            ],
            "interfaces": [{"key": k.key, "action": k.action} for k in self.kv],
            "credentials_to_create": [path for path, _ in self.credentials],
            "acl_policies": [
                {"policy": p.name, "job": p.job, "action": p.action, "reads": list(p.paths)}
                for p in self.policies
            ],
            "external_services": [
                {
                    "service": s.name,
                    "id": s.id,
                    "action": s.action,
                    "address": s.address,
                    "port": s.port,
                }
                for s in self.services
            ],
            "reloads": [
                {"set": r.set, "job": r.job, "how": r.how, "because": list(r.because)}
                for r in self.reloads
            ],
        }


class Step(NamedTuple):
    what: str  # "interfaces" | "register" | "healthy" | "stop" | "push record"
    target: str
    ok: bool
    detail: str = ""


class Report(NamedTuple):
    manifest: str
    steps: tuple[Step, ...]
    not_applied: tuple[str, ...]
    reloads: tuple[Reload, ...]
    writes: int
    transactions: int
    seconds: float
    ok: bool
    waited: bool = True  # False with --no-wait: nothing is known about health yet

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "health": "checked" if self.waited else "not known yet (--no-wait)",
            "writes": self.writes,
            "transactions": self.transactions,
            "applied": [s._asdict() for s in self.steps if s.ok],
            "failed": [s._asdict() for s in self.steps if not s.ok],
            "not_applied": list(self.not_applied),
            "reloads": [r._asdict() for r in self.reloads],
        }


class ApplyError(NomadgenError):
    """A submit stopped part way: the original error plus what was and was not applied."""

    def __init__(self, cause: NomadgenError, report: Report) -> None:
        applied = [f"{s.what} {s.target}" for s in report.steps if s.ok]
        problems = list(cause.problems) + [
            Problem("applied: " + _summary(applied)),
            Problem("not applied: " + _summary(list(report.not_applied))),
        ]
        super().__init__(
            f"submit stopped: {cause.subject}",
            problems,
            hint=(cause.hint + "; " if cause.hint else "")
            + "running submit again converges from here",
        )
        self.exit_code = cause.exit_code
        self.report = report


def _summary(items: list[str], shown: int = 6) -> str:
    """A count and the first few: a 500-job failure stays a few lines (--json has them all)."""
    if not items:
        return "nothing"
    if len(items) <= shown:
        return ", ".join(items)
    return (
        f"{len(items)}: "
        + ", ".join(items[:shown])
        + f" and {len(items) - shown} more (--json lists all)"
    )


def prefix_of(manifest: str, settings: RenderSettings) -> str:
    return names.kv_root(settings.kv_prefix, manifest)


def zones_from_nodes(nodes: Iterable[Node], zone_attribute: str) -> tuple[str, ...]:
    """The cluster's zones: the distinct values of the zone attribute over ready, eligible nodes."""
    values = set()
    for n in nodes:
        if n.status != "ready" or not n.eligible:
            continue
        v = names.node_zone(n, zone_attribute)
        if v:
            values.add(v)
    return tuple(sorted(values))


def observe(
    plan: Resolution,
    jobs: Iterable[Job],
    interfaces: Iterable[KVEntry],
    nomad: NomadAPI,
    consul: ConsulAPI,
    settings: RenderSettings,
    *,
    manifest_text: str = "",
    prune: bool = False,
    dry_run: bool = True,
    concurrency: int = 16,
) -> ChangeSet:
    jobs = list(jobs)
    layer_of = {name: i for i, layer in enumerate(plan.layers) for name in layer}
    current = nomad.jobs()
    problems = []
    changes: list[JobChange] = []
    for j in jobs:
        stub = current.get(j.id)
        layer = layer_of.get(j.set, 0)
        if stub is None:
            changes.append(JobChange(j.id, j.set, CREATE, layer, j.api, 0))
            continue
        meta = stub.get("Meta") or {}
        if meta.get(META_MANIFEST) != plan.manifest:
            owner = meta.get(META_MANIFEST)
            problems.append(
                Problem(
                    f"job {j.id} already exists and is "
                    + (f"owned by manifest {owner!r}" if owner else "not managed by nomadgen"),
                    hint="rename the service, or stop that job first; nomadgen never touches jobs it does not own",
                )
            )
            continue
        # Changed or not is decided below from Nomad's plan diff against the live job, so a
        # change made by hand (count, image, constraint) is drift that submit converges back.
        changes.append(
            JobChange(j.id, j.set, UPDATE, layer, j.api, int(stub.get("JobModifyIndex") or 0))
        )
    if problems:
        raise Conflict("jobs in the way", problems)
    wanted = {j.id for j in jobs}
    for jid in sorted(current):
        meta = current[jid].get("Meta") or {}
        if (
            meta.get(META_MANIFEST) == plan.manifest
            and jid not in wanted
            and not current[jid].get("Stop")
        ):
            changes.append(
                JobChange(
                    jid,
                    meta.get(META_SET, jid),
                    STOP if prune else STALE,
                    len(plan.layers),
                    None,
                    int(current[jid].get("JobModifyIndex") or 0),
                )
            )

    # Existing jobs are always planned: the diff is what says "changed". dry_run=False only
    # skips the dry runs of new jobs (a quick re-read that compares job indexes).
    todo = [c for c in changes if c.action == UPDATE or (dry_run and c.action == CREATE)]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        plans = list(pool.map(lambda c: nomad.plan(c.job), todo))
    done = {c.id: p for c, p in zip(todo, plans, strict=True)}
    changes = [judge_change(c, done.get(c.id), current.get(c.id)) for c in changes]

    root = prefix_of(plan.manifest, settings)
    tree = consul.kv_tree(root)
    kv: list[KVChange] = []
    want = {e.key: e.value for e in interfaces}
    for key, value in sorted(want.items()):
        have = tree.get(key)
        if have is None:
            kv.append(KVChange(key, PUT, value, 0))
        elif have[0] != value:
            kv.append(KVChange(key, PUT, value, have[1]))
        else:
            kv.append(KVChange(key, UNCHANGED, value, have[1]))
    iface_root = names.interfaces_root(root)
    for key in sorted(tree):
        if key.startswith(iface_root) and key not in want:
            kv.append(KVChange(key, DELETE if prune else UNCHANGED, None, tree[key][1]))

    push = []
    for key, value in (
        (names.push_key(root, "manifest"), manifest_text.encode()),
        (names.push_key(root, "plan"), plan_record(plan, jobs)),
    ):
        have = tree.get(key)
        push.append(
            KVChange(
                key, UNCHANGED if have and have[0] == value else PUT, value, have[1] if have else 0
            )
        )

    creds = []
    for s in plan.sets:
        if s.run.secret_items and s.job_hosted:
            path = names.credentials_path(s.interface.credentials, s.job_id)
            if not nomad.variable_exists(path):
                creds.append((path, s.run.secret_items))
    ordered = sorted(changes, key=lambda c: (c.layer, c.id))
    services = _external_changes(plan, consul, prune)
    return ChangeSet(
        plan.manifest,
        plan,
        tuple(ordered),
        tuple(kv),
        _reloads(plan, ordered, kv, settings, services),
        tuple(push),
        services,
        tuple(sorted(creds)),
        _policy_changes(plan, jobs, nomad, settings, prune),
    )


def _policy_changes(
    plan: Resolution, jobs: list[Job], nomad: NomadAPI, settings: RenderSettings, prune: bool
) -> tuple[PolicyChange, ...]:
    """On a cluster with ACLs, the job-scoped policies dependents need; none without ACLs."""
    have = nomad.acl_policies()
    if have is None:
        return ()
    namespace = settings.namespace or "default"
    out = []
    wanted = {p.name: p for p in workload_policies(plan.manifest, jobs)}
    for name, p in sorted(wanted.items()):
        body = p.body(namespace)
        cur = nomad.acl_policy(name) if name in have else None
        same = (
            cur is not None
            and all(cur.get(k) == body[k] for k in ("Description", "Rules"))
            and {k: (cur.get("JobACL") or {}).get(k, "") for k in body["JobACL"]} == body["JobACL"]
        )
        out.append(PolicyChange(name, p.job, UNCHANGED if same else PUT, p.paths, body))
    for name, stub in sorted(have.items()):
        if name not in wanted and names.owns_policy(stub.get("Description", ""), plan.manifest):
            out.append(
                PolicyChange(
                    name,
                    ((stub.get("JobACL") or {}).get("JobID", "")),
                    DELETE if prune else UNCHANGED,
                )
            )
    return tuple(out)


def judge_change(
    c: JobChange, dry_run: dict[str, Any] | None, stub: dict[str, Any] | None
) -> JobChange:
    """Pure: an owned, live job is unchanged when Nomad's plan diff against it is empty (Type
    None) and it is not stopped; anything else the diff shows is a change (ours or drift)."""
    c = c._replace(dry_run=dry_run)
    if c.action != UPDATE or dry_run is None or stub is None:
        return c
    stopped = bool(stub.get("Stop")) or stub.get("Status") == "dead"
    diff_type = ((dry_run.get("Diff") or {}).get("Type")) or "None"
    return c._replace(action=UNCHANGED) if diff_type == "None" and not stopped else c


def owned_external(services: dict[str, dict[str, Any]], manifest: str) -> dict[str, dict[str, Any]]:
    """The agent services that are this manifest's external services: our ID prefix and our
    meta, never an instance Nomad registered (`external-source = nomad`) nor anyone else's."""
    out = {}
    for sid, svc in services.items():
        meta = svc.get("Meta") or {}
        if not names.is_external_of(sid, manifest) or meta.get("external-source"):
            continue
        if meta.get(META_MANIFEST) == manifest:
            out[sid] = svc
    return out


def _external_changes(
    plan: Resolution, consul: ConsulAPI, prune: bool
) -> tuple[ServiceChange, ...]:
    wanted = {}
    for s in plan.sets:
        if s.kind == EXTERNAL:
            sid = names.external_id(plan.manifest, s.job_id)
            assert s.external is not None  # resolve gives every external set its address
            wanted[sid] = ServiceChange(
                sid,
                s.job_id,
                REGISTER,
                s.external[0],
                s.external[1],
                (f"set-{s.job_id}", "external"),
                ((META_MANIFEST, plan.manifest), (META_SET, s.name)),
            )
    have = owned_external(consul.services(), plan.manifest) if wanted or prune else {}
    out = []
    taken = [
        (want.name, (have[sid].get("Meta") or {}).get(META_MANIFEST))
        for sid, want in sorted(wanted.items())
        if sid in have and (have[sid].get("Meta") or {}).get(META_MANIFEST) != plan.manifest
    ]
    if taken:
        raise Conflict(
            "external services in the way",
            [
                Problem(
                    f"service ID for {name} is registered by "
                    + (f"manifest {owner!r}" if owner else "someone other than nomadgen"),
                    hint="nomadgen never replaces a service it does not own",
                )
                for name, owner in taken
            ],
        )
    for sid, want in sorted(wanted.items()):
        cur = have.get(sid)
        same = (
            cur is not None
            and cur.get("Address") == want.address
            and cur.get("Port") == want.port
            and tuple(cur.get("Tags") or ()) == want.tags
            and dict(cur.get("Meta") or {}) == dict(want.meta)
        )
        out.append(want._replace(action=UNCHANGED) if same else want)
    for sid, cur in sorted(have.items()):
        if sid not in wanted:
            out.append(ServiceChange(sid, cur.get("Service", sid), DEREGISTER if prune else STALE))
    return tuple(out)


def plan_record(plan: Resolution, jobs: Iterable[Job]) -> bytes:
    """What `status` compares against: the resolved sets and each job's spec hash."""
    doc = {
        "manifest": plan.manifest,
        "zones": list(plan.zones),
        "sets": {
            s.name: {
                "job": s.job_id if s.job_hosted else "",
                "host": s.host,
                "depends": list(s.depends),
                "count": s.instance_count,
                "external": s.kind == EXTERNAL,
            }
            for s in plan.sets
        },
        "jobs": {j.id: j.spec_hash for j in jobs},
    }
    return pretty_json(doc).encode() + b"\n"


def _reloads(
    plan: Resolution,
    changes: list[JobChange],
    kv: list[KVChange],
    settings: RenderSettings,
    services: tuple[ServiceChange, ...] = (),
) -> tuple[Reload, ...]:
    """What restarts. A job whose tasks change is replaced, instance by instance (rolling
    update); an in-place update (tags, count) replaces nothing. A dependent's template
    re-renders, and runs its change_mode, when the instances it reads change: those of a
    replaced job, the list of all instances when any is added or removed, an external service's
    address. No template reads interface documents, so a new consumer or a removed service
    reloads nothing else. Nothing propagates further: a restarted task keeps its address."""
    by_id = {c.id: c for c in changes}
    replaced = {c.id for c in changes if c.action == UPDATE and _replaces(c.dry_run)}
    resized = {c.id for c in changes if c.action == UPDATE and _resizes(c.dry_run)}
    moved_ext = {sc.name for sc in services if sc.action == REGISTER}
    out: dict[str, Reload] = {}
    for s in plan.sets:
        if plan.job_of(s.name) in replaced:
            out[s.name] = Reload(s.name, plan.job_of(s.name), "rolling update", (s.name,))
    for s in plan.sets:
        job = plan.job_of(s.name)
        if (
            not s.job_hosted
            or s.name in out
            or by_id.get(job, JobChange("", "", CREATE, 0, None, 0)).action == CREATE
        ):
            continue
        because = []
        for r in reads(plan, s, settings):
            dep = plan.get(r.set)
            djob = plan.job_of(r.set)
            if (
                (r.instance or r.all_instances)
                and (djob in replaced or dep.job_id in moved_ext and dep.kind == EXTERNAL)
                or (r.all_instances and djob in resized)
            ):
                if r.change_mode == "restart":
                    because.append((r.set, "template change (change_mode restart)"))
                elif r.change_mode == "signal":
                    because.append((r.set, f"template change (change_mode signal {r.signal})"))
        if because:
            out[s.name] = Reload(s.name, job, because[0][1], tuple(sorted({b for b, _ in because})))
    return tuple(out[n] for n in sorted(out))


def _replaces(p: dict[str, Any] | None) -> bool:
    """Nomad's plan says the update replaces allocations (or there is no plan to ask)."""
    if p is None:
        return True
    for tg in (p.get("Diff") or {}).get("TaskGroups") or ():
        if (tg.get("Updates") or {}).get("create/destroy update"):
            return True
    return False


def _resizes(p: dict[str, Any] | None) -> bool:
    if p is None:
        return True
    return any(
        (tg.get("Updates") or {}).get(k)
        for tg in (p.get("Diff") or {}).get("TaskGroups") or ()
        for k in ("create", "destroy")
    )


def apply(
    cs: ChangeSet,
    nomad: NomadAPI,
    consul: ConsulAPI,
    settings: RenderSettings,
    *,
    wait: bool = True,
    timeout: float = 300.0,
    concurrency: int = 16,
    progress: Callable[[Step], None] = lambda s: None,
) -> Report:
    t0 = time.monotonic()
    steps: list[Step] = []
    transactions = 0
    writes_before = consul.writes

    def record(step: Step) -> None:
        steps.append(step)
        progress(step)

    infeasible = [
        (c.id, placement_failures(c.dry_run))
        for c in cs.jobs
        if c.action in (CREATE, UPDATE) and placement_failures(c.dry_run)
    ]
    if infeasible:
        raise ResolutionError(
            "the cluster cannot place this manifest; nothing was written",
            [Problem(f"job {jid}: {', '.join(f)}") for jid, f in infeasible],
            hint="add nodes or zones, lower per_zone/count, or relax the constraints",
        )

    pending = [f"interfaces ({sum(1 for k in cs.kv if k.action != UNCHANGED)})"] + [
        f"{c.action} {c.id}" for c in cs.jobs if c.action in (CREATE, UPDATE, STOP)
    ]
    try:
        # 1. Interfaces first: dependents' templates read them before their tasks start.
        ops = [_kv_op(k) for k in cs.kv if k.action != UNCHANGED]
        if ops:
            transactions += consul.txn(ops)
            record(Step("interfaces", f"{len(ops)} key(s)", True, f"{transactions} transaction(s)"))
        pending.pop(0)

        # 1a. Missing credentials: random values straight into Nomad Variables, create-only,
        # never printed; the tasks read them through their templates.
        for path, items in cs.credentials:
            made = nomad.create_variable(path, {i: secrets.token_urlsafe(24) for i in items})
            record(Step("credentials", path, True, "generated" if made else "already there"))

        # 1a'. Job-scoped ACL policies: a dependent's template reads its dependencies'
        # credentials as soon as its task starts.
        for pc in cs.policies:
            if pc.action == PUT and pc.body is not None:
                nomad.put_acl_policy(pc.body)
                record(Step("acl policy", pc.name, True, f"{pc.job} reads {', '.join(pc.paths)}"))

        # 1b. External services: registered through the agent, as nothing else runs them.
        for sc in cs.services:
            if sc.action == REGISTER:
                consul.register_service(
                    sc.name, sc.id, sc.address, sc.port, list(sc.tags), dict(sc.meta)
                )
                record(Step("register service", sc.name, True, f"{sc.address}:{sc.port}"))

        # 2. Jobs, layer by layer: a layer starts when the one before is healthy. Every set of
        # the manifest is judged, the unchanged ones too: exit 0 means all of them are healthy.
        deadline = t0 + timeout
        wants = services_by_job(cs.plan)
        for layer in sorted({c.layer for c in cs.jobs if c.action in (CREATE, UPDATE, UNCHANGED)}):
            todo = [c for c in cs.jobs if c.layer == layer and c.action in (CREATE, UPDATE)]
            with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                results = list(pool.map(lambda c: _register(nomad, c), todo))
            errors = [r for r in results if isinstance(r, NomadgenError)]
            registered: dict[str, dict[str, Any]] = {}
            for c, r in zip(todo, results, strict=True):
                if not isinstance(r, NomadgenError):
                    registered[c.id] = r
                    record(
                        Step(
                            "register",
                            c.id,
                            True,
                            f"{c.action}, "
                            + (
                                f"version {r['Version']}"
                                if r.get("Version") is not None
                                else f"job modify index {r.get('JobModifyIndex', '?')}"
                            ),
                        )
                    )
                    pending.remove(f"{c.action} {c.id}")
            if errors:
                raise errors[0]
            if not wait:
                continue
            judged = [
                c for c in cs.jobs if c.layer == layer and c.action in (CREATE, UPDATE, UNCHANGED)
            ]
            progress(
                Step(
                    "waiting",
                    ", ".join(c.id for c in judged),
                    True,
                    f"layer {layer + 1}: evaluations, deployments, allocations, Consul checks",
                )
            )
            with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                waited = list(
                    pool.map(
                        lambda c, reg=registered: _wait_healthy(
                            nomad,
                            consul,
                            cs.plan,
                            c,
                            reg.get(c.id),
                            deadline,
                            progress,
                            want=wants.get(c.id, {}),
                        ),
                        judged,
                    )
                )
            for c, w in zip(judged, waited, strict=True):
                if isinstance(w, NomadgenError):
                    record(Step("healthy", c.id, False, w.subject))
                else:
                    record(Step("healthy", c.id, True, w))
            errors = [w for w in waited if isinstance(w, NomadgenError)]
            if errors:
                if len(errors) == 1:
                    raise errors[0]
                first = errors[0]
                raise type(first)(
                    f"{len(errors)} jobs of layer {layer + 1} are not healthy",
                    [Problem(e.subject) for e in errors] + [p for e in errors for p in e.problems],
                    hint=first.hint,
                )

        # 3. Prune: only jobs this manifest owns and no longer declares.
        for c in cs.jobs:
            if c.action == STOP:
                stop_owned(nomad, c.id, cs.manifest)
                record(Step("stop", c.id, True))
                pending.remove(f"stop {c.id}")
        for sc in cs.services:
            if sc.action == DEREGISTER:
                consul.deregister_service(sc.id)
                record(Step("deregister service", sc.name, True))
        for pc in cs.policies:
            if pc.action == DELETE:
                nomad.delete_acl_policy(pc.name)
                record(Step("delete acl policy", pc.name, True))

        # 4. The record of this push, last, so it only ever describes a completed push.
        ops = [_kv_op(k) for k in cs.push if k.action != UNCHANGED]
        if ops:
            transactions += consul.txn(ops)
            record(Step("push record", "manifest and plan", True))
    except NomadgenError as exc:
        report = Report(
            cs.manifest,
            tuple(steps),
            tuple(pending),
            cs.reloads,
            consul.writes - writes_before + _job_writes(steps),
            transactions,
            time.monotonic() - t0,
            False,
        )
        raise ApplyError(exc, report) from exc
    return Report(
        cs.manifest,
        tuple(steps),
        (),
        cs.reloads,
        consul.writes - writes_before + _job_writes(steps),
        transactions,
        time.monotonic() - t0,
        True,
        wait,
    )


def _job_writes(steps: list[Step]) -> int:
    return sum(1 for s in steps if s.what in ("register", "stop") and s.ok)


def _kv_op(k: KVChange) -> dict[str, Any]:
    if k.action == DELETE:
        return {"Verb": "delete-cas", "Key": k.key, "Index": k.modify_index}
    # cas with Index 0 creates only if absent; otherwise only from the version we read.
    return {"Verb": "cas", "Key": k.key, "Value": k.value or b"", "Index": k.modify_index}


def stop_owned(nomad: NomadAPI, job_id: str, manifest: str, purge: bool = False) -> bool:
    """Stop (or purge) a job only if it is still this manifest's, read again right before
    the request. Nomad's deregister takes no check-and-set, so one window remains: a job
    re-registered by another owner between this read and the stop (one round trip)."""
    job = nomad.job(job_id)
    if job is None:
        return False
    owner = (job.get("Meta") or {}).get(META_MANIFEST)
    if owner != manifest:
        raise Conflict(
            f"job {job_id} is no longer owned by manifest {manifest!r} "
            + (f"(now {owner!r})" if owner else "(now not managed by nomadgen)")
            + "; it was left alone",
            hint="someone registered a job with that ID in between; nomadgen never "
            "stops jobs it does not own",
        )
    nomad.stop(job_id, purge=purge)
    return True


REGISTER_RETRIES = 2


def _register(nomad: NomadAPI, c: JobChange) -> dict[str, Any] | NomadgenError:
    """Register with check-and-set. A register that timed out (or met a 5xx) may still have
    landed: read the job back; ours, moved past the index we read and with nothing left in
    Nomad's plan diff means done, else check-and-set makes sending it again safe (a change
    made in between is a Conflict, never overwritten)."""
    assert c.job is not None  # only creates and updates are registered
    job_spec = c.job
    want = job_spec.get("Meta") or {}

    def landed() -> dict[str, Any] | None:
        try:
            cur = nomad.job(c.id)
            if (
                cur is None
                or cur.get("Stop")
                or (cur.get("Meta") or {}).get(META_MANIFEST) != want.get(META_MANIFEST)
                or int(cur.get("JobModifyIndex") or 0) == c.modify_index
            ):
                return None
            diff = (nomad.plan(job_spec).get("Diff") or {}).get("Type") or "None"
        except NomadgenError:
            return None
        return (
            {"JobModifyIndex": cur.get("JobModifyIndex", "?"), "Version": cur.get("Version")}
            if diff == "None"
            else None
        )

    for attempt in range(1 + REGISTER_RETRIES):
        try:
            r = dict(nomad.register(job_spec, c.modify_index))
            job = nomad.job(c.id)  # the response names the JobModifyIndex; the version is the job's
            if job is not None and job.get("JobModifyIndex") == r.get("JobModifyIndex"):
                r["Version"] = job.get("Version")
            return r
        except Unavailable as exc:
            done = landed()
            if done is not None:
                return done
            if attempt == REGISTER_RETRIES:
                return exc
            time.sleep(0.2 * (attempt + 1))
        except Conflict as exc:  # after a retry: the first attempt may have landed meanwhile
            return (landed() if attempt else None) or exc
        except NomadgenError as exc:
            return exc
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


def services_by_job(plan: Resolution) -> dict[str, dict[str, int]]:
    """Per job: the Consul services it registers, and how many passing instances make it
    healthy. One walk over the sets for the whole push (not one per job)."""
    out: dict[str, dict[str, int]] = {}
    for s in plan.sets:
        if s.interface.port and s.run.check is not None:
            # a node-local set has its host's count
            out.setdefault(plan.job_of(s.name), {})[s.job_id] = s.instance_count
    return out


def expected_services(plan: Resolution, job_id: str) -> dict[str, int]:
    """Consul services a job registers, and how many passing instances make it healthy."""
    return services_by_job(plan).get(job_id, {})


_EVAL_DONE = ("complete", "failed", "canceled", "cancelled", "blocked")


def _wait_healthy(
    nomad: NomadAPI,
    consul: ConsulAPI,
    plan: Resolution,
    c: JobChange,
    reg: dict[str, Any] | None,
    deadline: float,
    progress: Callable[[Step], None] = lambda s: None,
    want: dict[str, int] | None = None,
) -> str | NomadgenError:
    """Healthy = the version just registered (or, for an unchanged job, the live one) is
    placed, its deployment (if it has one) succeeded, and its Consul checks pass.

    Bound to what was registered: the evaluation register returned is followed until the
    scheduler has processed it (Nomad creates the deployment then, not in register); the
    deployment is the one that evaluation names. Placement failures stop the wait at once."""
    state: dict[str, Any] = {"delay": 0.05, "last": ""}

    def waiting(what: str) -> None:
        if what != state["last"]:
            state["last"] = what
            progress(Step("progress", c.id, True, what))
        if time.monotonic() > deadline:
            raise NotHealthy(
                f"{c.id} did not become healthy in time ({what})",
                _failure_details(nomad, consul, plan, c.id),
                hint="raise --timeout, or look at the job's allocations and checks",
            )
        time.sleep(state["delay"])
        state["delay"] = min(state["delay"] * 1.5, 1.0)

    try:
        want = expected_services(plan, c.id) if want is None else want
        dep_id = None  # None: find the deployment of the live version; "": it has none
        if reg is not None:
            while True:
                ev = nomad.evaluation(reg["EvalID"]) or {}
                if ev.get("Status") in _EVAL_DONE:
                    break
                waiting(f"evaluation {reg['EvalID'][:8]} {ev.get('Status') or 'not found'}")
            if ev["Status"] == "failed":
                raise NotHealthy(
                    f"Nomad's scheduler failed the evaluation of {c.id}: "
                    f"{ev.get('StatusDescription') or 'no reason given'}"
                )
            failures = placement_failures(ev)
            if failures:
                raise _unplaceable(c.id, failures)
            dep_id = ev.get("DeploymentID") or ""
        else:
            failures = _blocked(nomad, c.id)
            if failures:
                raise _unplaceable(c.id, failures)
        job = _still_there(nomad, c.id)  # one read: a purge between two reads is a race
        if dep_id is None:
            latest = nomad.deployment(c.id)
            dep_id = (
                (latest or {}).get("ID", "")
                if (latest or {}).get("JobSpecModifyIndex") == job.get("JobModifyIndex")
                else ""
            )
        while dep_id:
            dep = nomad.deployment_by_id(dep_id) or {}
            status = dep.get("Status")
            if status == "successful":
                break
            if status in ("failed", "cancelled", "canceled"):
                _still_there(nomad, c.id)  # a stop by someone else cancels it too
                raise NotHealthy(
                    f"deployment {dep_id[:8]} of {c.id} (version {dep.get('JobVersion')}) {status}: "
                    f"{dep.get('StatusDescription', '')}",
                    _failure_details(nomad, consul, plan, c.id, dep_id),
                    hint=f"see `nomad job status {c.id}`; with auto_revert Nomad rolls back to "
                    "the last stable version",
                )
            if not status:
                _still_there(nomad, c.id)
            waiting(f"deployment {dep_id[:8]} {status or 'not found'}: " + _dep_progress(dep))
        total = sum(int(g.get("Count") or 0) for g in job.get("TaskGroups") or ())
        while not dep_id:  # no deployment: judged by the allocations of the live version
            allocs = [
                a
                for a in nomad.allocations(c.id)
                if a.get("DesiredStatus") == "run" and a.get("JobVersion") == job.get("Version")
            ]
            failed = [a for a in allocs if a.get("ClientStatus") in ("failed", "lost")]
            if failed:
                raise NotHealthy(
                    f"{len(failed)} allocation(s) of {c.id} failed",
                    _failure_details(nomad, consul, plan, c.id),
                )
            running = sum(1 for a in allocs if a.get("ClientStatus") == "running")
            if running >= total:
                break
            failures = _blocked(nomad, c.id)
            if failures:
                raise _unplaceable(c.id, failures)
            _still_there(nomad, c.id)
            waiting(f"allocations: {running}/{total} running")
        while True:
            counts = {svc: len(consul.healthy(svc)) for svc in want}
            if all(counts[s] >= n for s, n in want.items()):
                return (
                    ", ".join(f"{s} {counts[s]}/{n} passing" for s, n in sorted(want.items()))
                    or f"{total} allocation(s) running, no Consul check to wait for"
                )
            waiting(
                "Consul checks: "
                + ", ".join(f"{s} {counts[s]}/{n} passing" for s, n in sorted(want.items()))
            )
    except NomadgenError as exc:
        return exc


def _still_there(nomad: NomadAPI, job_id: str) -> dict[str, Any]:
    """A job purged or stopped by someone else while submit waits is said, not waited out."""
    job = nomad.job(job_id)
    if job is None or job.get("Stop"):
        gone = "purged" if job is None else "stopped"
        raise Conflict(
            f"job {job_id} was {gone} by someone else while submit waited for it",
            hint="another `nomadgen destroy` or `nomad job stop` ran at the same time; "
            "run submit again to bring it back",
        )
    return job


def _dep_progress(dep: dict[str, Any]) -> str:
    parts = []
    for name, tg in sorted((dep.get("TaskGroups") or {}).items()):
        parts.append(
            f"group {name} {tg.get('PlacedAllocs', 0)} placed, {tg.get('HealthyAllocs', 0)} "
            f"healthy, {tg.get('UnhealthyAllocs', 0)} unhealthy of {tg.get('DesiredTotal', 0)}"
        )
    return "; ".join(parts) or "no groups"


def _unplaceable(job_id: str, failures: list[str]) -> Unplaceable:
    return Unplaceable(
        f"Nomad cannot place job {job_id}",
        [Problem(f) for f in failures],
        hint="add nodes or capacity, lower per_zone/count or resources, or relax the "
        "constraints; `nomad job status` shows the blocked evaluation",
    )


def _blocked(nomad: NomadAPI, job_id: str) -> list[str]:
    """Placement failures behind a job's blocked evaluation (Nomad keeps the reasons on the
    evaluation that created it)."""
    evals = nomad.evaluations(job_id)
    by_id = {e.get("ID"): e for e in evals}
    for e in evals:
        if e.get("Status") == "blocked":
            prev = by_id.get(e.get("PreviousEval")) or {}
            return (
                placement_failures(prev)
                or placement_failures(e)
                or ["an evaluation is blocked: allocations are queued"]
            )
    return []


def _failure_details(
    nomad: NomadAPI, consul: ConsulAPI, plan: Resolution, job_id: str, dep_id: str = ""
) -> list[Problem]:
    """What Levant showed: the failing allocations' last task events and the checks' output."""
    out = []
    try:
        allocs = [
            a
            for a in nomad.allocations(job_id)
            if (a.get("DeploymentID", dep_id) == dep_id if dep_id else True)
            and a.get("DesiredStatus") == "run"
        ]
        bad = [
            a
            for a in allocs
            if a.get("ClientStatus") in ("failed", "lost", "pending")
            or (a.get("DeploymentStatus") or {}).get("Healthy") is False
        ]
        for a in sorted(bad, key=lambda a: a.get("Name", ""))[:3]:
            health = (a.get("DeploymentStatus") or {}).get("Healthy")
            head = (
                f"allocation {a.get('ID', '')[:8]} ({a.get('Name')}) on {a.get('NodeName')}: "
                f"{a.get('ClientStatus')}" + (", unhealthy" if health is False else "")
            )
            events = []
            for task, st in sorted((a.get("TaskStates") or {}).items()):
                last = [
                    f"{e.get('Type')}: {e.get('DisplayMessage')}"
                    for e in (st.get("Events") or ())[-3:]
                ]
                events.append(f"task {task}: " + ("; ".join(last) or "no events"))
            out.append(Problem(head + ("; " + " | ".join(events) if events else "")))
        for svc in sorted(expected_services(plan, job_id)):
            for entry in consul.service_health(svc):
                for chk in entry.get("Checks") or ():
                    if chk.get("ServiceID") and chk.get("Status") != "passing":
                        out.append(
                            Problem(
                                f"check {chk.get('Name')!r} of {svc} on "
                                f"{entry['Node']['Node']}: {chk.get('Status')}"
                                + (f": {chk['Output'].strip()}" if chk.get("Output") else "")
                            )
                        )
    except NomadgenError:
        pass  # details are a courtesy: the failure itself is reported either way
    return out[:8]


def placement_failures(p: dict[str, Any] | None) -> list[str]:
    out = []
    for tg, metric in sorted(((p or {}).get("FailedTGAllocs") or {}).items()):
        reasons = []
        for k in ("ConstraintFiltered", "DimensionExhausted", "ClassFiltered"):
            for reason, n in sorted((metric.get(k) or {}).items()):
                reasons.append(f"{reason} filtered {n} node(s)")
        if metric.get("NodesEvaluated") == 0:
            reasons.append("no eligible node")
        coalesced = metric.get("CoalescedFailures") or 0
        out.append(
            f"group {tg}: {coalesced + 1} allocation(s) cannot be placed"
            + (f" ({'; '.join(reasons)})" if reasons else "")
        )
    return out


def diff_summary(p: dict[str, Any] | None, verbose: bool = False) -> list[str]:
    """Nomad's plan diff, flattened to lines like `~ group app / task app / Env[X]: "1" => "2"`.
    A new job lists its groups and tasks only (every field is new); --verbose shows them all."""
    if not p or not p.get("Diff"):
        return []
    added = p["Diff"].get("Type") == "Added" and not verbose
    out: list[str] = []
    sign = {"Added": "+", "Deleted": "-", "Edited": "~", "None": " "}

    def fields(prefix: str, node: dict[str, Any]) -> None:
        if added:
            return
        for f in node.get("Fields") or ():
            if f.get("Type") == "None":
                continue
            ann = f" ({', '.join(f['Annotations'])})" if f.get("Annotations") else ""
            out.append(
                f"{sign.get(f['Type'], '?')} {prefix}{f['Name']}: {json.dumps(f.get('Old'))} => "
                f"{json.dumps(f.get('New'))}{ann}"
            )
        for o in node.get("Objects") or ():
            if o.get("Type") == "None":
                continue
            fields(f"{prefix}{o['Name']} / ", o)

    d = p["Diff"]
    fields("", d)
    for tg in d.get("TaskGroups") or ():
        if tg.get("Type") == "None":
            continue
        updates = ", ".join(f"{n} {k}" for k, n in sorted((tg.get("Updates") or {}).items()))
        out.append(
            f"{sign.get(tg['Type'], '?')} group {tg['Name']}" + (f" ({updates})" if updates else "")
        )
        fields(f"group {tg['Name']} / ", tg)
        for t in tg.get("Tasks") or ():
            if t.get("Type") == "None":
                continue
            ann = f" ({', '.join(t['Annotations'])})" if t.get("Annotations") else ""
            out.append(f"{sign.get(t['Type'], '?')} group {tg['Name']} / task {t['Name']}{ann}")
            fields(f"group {tg['Name']} / task {t['Name']} / ", t)
    return out
