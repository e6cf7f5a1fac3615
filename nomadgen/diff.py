"""The diff, pure: (resolved manifest, rendered jobs and interfaces, what is) -> ChangeSet.

No I/O and no backend: every fact about the cluster comes in the Observed record (observe.py
reads it, in one go), so each rule here is tested from golden cases (tests/diff_cases/) without
a server. converge.apply writes the ChangeSet; console shows it.

What is "changed" is Nomad's own word: the dry-run plan of the desired job against the live one
(Observed.plans). A count, image or constraint changed by hand is a diff like any other, so
`plan` shows it and `submit` converges it back. Only jobs whose meta names this manifest are
ever updated or stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from . import names
from .errors import Conflict, Problem
from .groups import zone_grouped
from .kinds import KINDS
from .model import EXTERNAL, Job, KVEntry, RenderSettings, Resolution, ServiceSet
from .render import META_MANIFEST, META_SET, Read, home, pretty_json, reads, workload_policies

if TYPE_CHECKING:  # the record's type only: diff never calls into observe
    from .observe import Observed


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
    health: str = ""  # unchanged but not healthy now: "degraded: deployment ... failed"


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
    group: str = ""
    task: str = ""

    @property
    def who(self) -> str:
        """`job app, group app-zone-a, task app`: what the policy is attached to."""
        return f"job {self.job}" + (f", group {self.group}, task {self.task}" if self.task else "")


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
                    "health": j.health,
                    "placement_failures": placement_failures(j.dry_run),
                    "group_replacement": group_replacement(j),
                }
                for j in self.jobs
            ],
            "interfaces": [{"key": k.key, "action": k.action} for k in self.kv],
            "credentials_to_create": [path for path, _ in self.credentials],
            "acl_policies": [
                {
                    "policy": p.name,
                    "job": p.job,
                    "group": p.group,
                    "task": p.task,
                    "action": p.action,
                    "reads": list(p.paths),
                }
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


def diff(
    plan: Resolution,
    jobs: Iterable[Job],
    interfaces: Iterable[KVEntry],
    observed: Observed,
    settings: RenderSettings,
    *,
    manifest_text: str = "",
    prune: bool = False,
) -> ChangeSet:
    """What submit would change, from what is. Raises Conflict for jobs in the way (live jobs
    with a desired ID that this manifest does not own), for a KV root whose records belong to
    another Nomad namespace, and for service names another manifest publishes."""
    jobs = list(jobs)
    layer_of = {name: i for i, layer in enumerate(plan.layers) for name in layer}
    current = observed.jobs
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
        # Changed or not is decided by judge_change from Nomad's plan diff against the live
        # job, so a change made by hand (count, image, constraint) is drift submit converges back.
        changes.append(
            JobChange(j.id, j.set, UPDATE, layer, j.api, int(stub.get("JobModifyIndex") or 0))
        )
    if problems:
        raise Conflict("jobs in the way", problems)
    root = names.kv_root(settings.kv_prefix, plan.manifest)
    foreign = foreign_records(root, observed.kv, settings, bool(observed.owned()))
    if foreign:
        raise other_namespace(plan.manifest, root, foreign, settings, plan)
    claimed = claimed_services(plan, observed)
    if claimed:
        raise claimed
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
    changes = [
        judge_health(
            judge_change(c, observed.plans.get(c.id), current.get(c.id)),
            current.get(c.id),
            observed,
        )
        for c in changes
    ]

    tree = observed.kv
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
        (names.push_key(root, "plan"), plan_record(plan, jobs, settings)),
    ):
        have = tree.get(key)
        push.append(
            KVChange(
                key, UNCHANGED if have and have[0] == value else PUT, value, have[1] if have else 0
            )
        )

    creds = [
        (path, items)
        for path, items in credentials_needed(plan)
        if not observed.variables.get(path, False)
    ]
    ordered = sorted(changes, key=lambda c: (c.layer, c.id))
    services = _external_changes(plan, observed, prune)
    return ChangeSet(
        plan.manifest,
        plan,
        tuple(ordered),
        tuple(kv),
        _reloads(plan, ordered, kv, settings, services),
        tuple(push),
        services,
        tuple(sorted(creds)),
        _policy_changes(plan, jobs, observed, settings, prune),
    )


class Home(NamedTuple):
    """Where a KV record says its deployment lives."""

    key: str
    namespace: str
    region: str  # "" when not recorded
    unrecorded: bool  # written without a namespace (default, or an older nomadgen)


def foreign_records(
    root: str,
    tree: dict[str, tuple[bytes, int]],
    settings: RenderSettings,
    owns_jobs_here: bool,
) -> list[Home]:
    """The records under a manifest's KV root (its interface documents and push record) that
    belong to another Nomad namespace (or another region, when both are known) than this run's.

    A record without a namespace is `default`'s (render.home leaves default out), or was written
    by a nomadgen that did not record one: then it is this namespace's when the manifest owns
    jobs here (its deployment is here), else default's."""
    here = settings.namespace or "default"
    out = []
    iface_root = names.interfaces_root(root)
    for key in sorted(tree):
        if key != names.push_key(root, "plan") and not key.startswith(iface_root):
            continue
        try:
            doc = json.loads(tree[key][0])
        except ValueError:
            continue
        if not isinstance(doc, dict) or "manifest" not in doc:
            continue  # not a record nomadgen wrote
        ns, region = doc.get("namespace"), doc.get("region")
        region = region if isinstance(region, str) else ""
        if isinstance(ns, str) and ns:
            h = Home(key, ns, region, False)
        else:
            h = Home(key, here if owns_jobs_here else "default", region, True)
        if h.namespace != here or (h.region and settings.region and h.region != settings.region):
            out.append(h)
    return out


def where(namespace: str, region: str) -> str:
    return f"namespace {namespace}" + (f" (region {region})" if region else "")


def other_namespace(
    manifest: str,
    root: str,
    foreign: list[Home],
    settings: RenderSettings,
    plan: Resolution | None = None,
) -> Conflict:
    """Exit 10: this manifest's Consul names and KV keys are another namespace's deployment."""
    here = where(settings.namespace or "default", settings.region)
    theirs = sorted({where(h.namespace, h.region) for h in foreign})
    problems = []
    for there in theirs:
        keys = [h for h in foreign if where(h.namespace, h.region) == there]
        note = (
            " (recorded without a namespace: default's, or an older nomadgen's)"
            if all(h.unrecorded for h in keys)
            else ""
        )
        problems.append(
            Problem(
                f"{len(keys)} record(s) under {root}/ belong to {there}{note}, e.g. {keys[0].key}"
            )
        )
    services = sorted(s.job_id for s in plan.sets) if plan is not None else []
    if services:
        shown = ", ".join(services[:4]) + (" ..." if len(services) > 4 else "")
        problems.append(
            Problem(f"this run ({here}) would write the same Consul service names: {shown}")
        )
    return Conflict(
        f"manifest {manifest} is deployed from {' and '.join(theirs)}, and this run is in {here}: "
        "Consul names and KV keys are shared by every Nomad namespace; nothing was written",
        problems,
        hint="deploy each copy as an environment (--env NAME, each with its own scope: README "
        "'Environments'), or give this copy a scope of its own (NOMADGEN_SCOPE, or scope = "
        '"..." in nomadgen.toml); to work on the existing copy, use its namespace '
        "(NOMAD_NAMESPACE)",
    )


def claimed_services(plan: Resolution, observed: Observed) -> Conflict | None:
    """Service names another manifest publishes (its interface document under the KV prefix):
    one Consul catalog serves every Nomad namespace, so two owners of a name would mix their
    instances. In one namespace the job in the way says it first; across namespaces, and for
    external services (agent services), this does."""
    mine = {s.job_id for s in plan.sets}
    taken = sorted(
        (c.get("service", ""), c.get("owner", ""), c.get("namespace") or "default")
        for c in observed.claims.values()
        if c.get("service") in mine and c.get("owner") != plan.manifest
    )
    if not taken:
        return None
    return Conflict(
        "service names published by other manifests",
        [
            Problem(
                f"service {svc} is published by manifest {owner!r} (namespace {ns})",
                hint=f"rename the service here, or drop it from {owner} and `nomadgen submit "
                f"--prune` that manifest (or `nomadgen destroy {owner}`)",
            )
            for svc, owner, ns in taken
        ],
        hint="Consul has one catalog for every Nomad namespace: a service name has one owner",
    )


def credentials_needed(plan: Resolution) -> list[tuple[str, tuple[str, ...]]]:
    """The Nomad Variables nomadgen generates (path, items): what observe checks for."""
    return [
        (names.credentials_path(s.interface.credentials, s.job_id), s.run.secret_items)
        for s in plan.sets
        if s.run.secret_items and s.kind != EXTERNAL  # node-local sets' too, in their host job
    ]


class Health(NamedTuple):
    """A live job's health as submit judges it: the deployment of the live version decides;
    without one (no update block), its allocations of the live version running."""

    state: str  # healthy | pending | degraded | stopped | missing
    why: str
    deployment: str = ""  # ID of the live version's deployment ("" none)
    allocations: tuple[str, ...] = ()  # IDs of the allocations meant to run


HEALTHY, PENDING, DEGRADED = "healthy", "pending", "degraded"


def job_health(
    stub: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
    allocations: Iterable[dict[str, Any]],
    total: int,
) -> Health:
    if stub is None:
        return Health("missing", "the job is not in Nomad")
    live = sorted(
        (a for a in allocations if a.get("DesiredStatus") == "run"),
        key=lambda a: (a.get("Name", ""), a.get("ID", "")),
    )
    ids = tuple(a.get("ID", "") for a in live)
    if stub.get("Stop") or stub.get("Status") == "dead":
        return Health("stopped", "the job is stopped", "", ids)
    dep = deployment or {}
    if dep.get("JobSpecModifyIndex") != stub.get("JobModifyIndex"):
        dep = {}  # an older version's deployment says nothing about this one
    dep_id = dep.get("ID", "")
    status = dep.get("Status", "")
    if status in ("failed", "cancelled", "canceled"):
        why = f"deployment {dep_id[:8]} {status}"
        if dep.get("StatusDescription"):
            why += f": {dep['StatusDescription']}"
        return Health(DEGRADED, why, dep_id, ids)
    if dep_id and status != "successful":
        return Health(PENDING, f"deployment {dep_id[:8]} {status or 'pending'}", dep_id, ids)
    current = [a for a in live if a.get("JobVersion") == stub.get("Version")]
    failed = [a for a in current if a.get("ClientStatus") in ("failed", "lost")]
    running = sum(1 for a in current if a.get("ClientStatus") == "running")
    counts = f"{running}/{total} allocation(s) running"
    if failed:
        return Health(DEGRADED, f"{len(failed)} allocation(s) failed; {counts}", dep_id, ids)
    if running >= total:
        return Health(HEALTHY, counts, dep_id, ids)
    # A successful deployment whose allocations are gone since (a node lost) is degraded; with
    # no deployment the allocations are still coming (or Nomad cannot place them yet).
    return Health(DEGRADED if dep_id else PENDING, counts, dep_id, ids)


def desired_count(job: dict[str, Any] | None) -> int:
    return sum(int(g.get("Count") or 0) for g in (job or {}).get("TaskGroups") or ())


def judge_health(c: JobChange, stub: dict[str, Any] | None, observed: Observed) -> JobChange:
    """An owned job that stays unchanged but is not healthy now is said (submit judges every
    set, so it fails on it unless it recovers). Only when observe read deployments."""
    if c.action != UNCHANGED or c.id not in observed.allocations:
        return c
    h = job_health(
        stub, observed.deployments.get(c.id), observed.allocations[c.id], desired_count(c.job)
    )
    return c if h.state == HEALTHY else c._replace(health=f"{h.state}: {h.why}")


def _policy_changes(
    plan: Resolution, jobs: list[Job], observed: Observed, settings: RenderSettings, prune: bool
) -> tuple[PolicyChange, ...]:
    """On a cluster with ACLs, the job-scoped policies dependents need; none without ACLs."""
    have = observed.policies
    if have is None:
        return ()
    namespace = settings.namespace or "default"
    out = []
    wanted = {p.name: p for p in workload_policies(plan.manifest, jobs)}
    for name, p in sorted(wanted.items()):
        body = p.body(namespace)
        cur = have.get(name)
        same = (
            cur is not None
            and all(cur.get(k) == body[k] for k in ("Description", "Rules"))
            and {k: (cur.get("JobACL") or {}).get(k, "") for k in body["JobACL"]} == body["JobACL"]
        )
        out.append(
            PolicyChange(name, p.job, UNCHANGED if same else PUT, p.paths, body, p.group, p.task)
        )
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
    plan: Resolution, observed: Observed, prune: bool
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
    have = owned_external(observed.services, plan.manifest)
    out = []
    # Our ID registered by someone else (another manifest, or by hand): never replaced.
    taken = [
        (want.name, (observed.services[sid].get("Meta") or {}).get(META_MANIFEST))
        for sid, want in sorted(wanted.items())
        if sid in observed.services and sid not in have
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


def plan_record(
    plan: Resolution, jobs: Iterable[Job], settings: RenderSettings | None = None
) -> bytes:
    """What `status` compares against: the resolved sets and each job's spec hash; and where
    the deployment lives (render.home: its namespace and region)."""
    doc: dict[str, Any] = {
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
    doc.update(home(settings) if settings is not None else {})
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
    regrouped = {c.id for c in changes if c.action == UPDATE and _regrouped(c.dry_run)[0]}
    resized = {c.id for c in changes if c.action == UPDATE and _resizes(c.dry_run)}
    moved_ext = {sc.name for sc in services if sc.action == REGISTER}
    out: dict[str, Reload] = {}
    for s in plan.sets:
        if plan.job_of(s.name) in replaced:
            how = "group replacement" if plan.job_of(s.name) in regrouped else "rolling update"
            out[s.name] = Reload(s.name, plan.job_of(s.name), how, (s.name,))
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
            if r.change_mode != "restart":
                continue  # noop: the template re-renders, the task runs on
            if (
                (r.instance or r.all_instances)
                and (djob in replaced or dep.job_id in moved_ext and dep.kind == EXTERNAL)
                or (r.all_instances and djob in resized)
            ):
                because.append((r.set, "template change (change_mode restart)"))
            elif r.instance and djob in resized and _zone_moves(plan, dep, r):
                # A set smaller than its zones (one group, at most one instance per zone)
                # that scales gains or loses an instance in a zone: a dependent instance there
                # moves from the fallback (the lowest index of all, which stays) to its own
                # zone's, or back. Nomad picks the zone of a new one: certain only for a
                # dependent with an instance in every zone.
                if zone_grouped(s, plan.zones):
                    because.append((r.set, "template change (change_mode restart)"))
                else:
                    because.append(
                        (
                            r.set,
                            "template change (change_mode restart) if the zone of one of "
                            f"its instances gains or loses an instance of {r.set}",
                        )
                    )
        if because:
            out[s.name] = Reload(s.name, job, because[0][1], tuple(sorted({b for b, _ in because})))
    return tuple(out[n] for n in sorted(out))


def _zone_moves(plan: Resolution, dep: ServiceSet, r: Read) -> bool:
    """Whether a scale of `dep` changes the zones that have an instance of it, for a dependent
    that falls back to another zone (one that waits neither restarts when its zone gains an
    instance, nor re-renders when it loses it: the template waits and keeps what it has)."""
    return (
        KINDS[dep.kind].zoned
        and dep.job_hosted
        and not zone_grouped(dep, plan.zones)
        and r.zone_fallback
    )


def _replaces(p: dict[str, Any] | None) -> bool:
    """Nomad's plan says the update replaces allocations (or there is no plan to ask); a
    group replacement (regrouping) replaces every instance."""
    if p is None:
        return True
    for tg in (p.get("Diff") or {}).get("TaskGroups") or ():
        if (tg.get("Updates") or {}).get("create/destroy update"):
            return True
    return bool(_regrouped(p)[0])


def _regrouped(p: dict[str, Any] | None) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(removed groups, added groups) with their instances, when an update of a live job both
    removes and adds task groups: a set moving between one group and one group per zone
    (groups.py). Empty lists otherwise."""
    d = (p or {}).get("Diff") or {}
    if d.get("Type") != "Edited":
        return [], []
    gone, new = [], []
    for tg in d.get("TaskGroups") or ():
        updates = tg.get("Updates") or {}
        if tg.get("Type") == "Deleted":
            gone.append((tg["Name"], int(updates.get("destroy") or 0)))
        elif tg.get("Type") == "Added":
            new.append((tg["Name"], int(updates.get("create") or 0)))
    return (gone, new) if gone and new else ([], [])


def group_replacement(c: JobChange) -> str:
    """What plan says of a regrouped job: its instances are replaced, none updated in place."""
    gone, new = _regrouped(c.dry_run)
    if not gone:
        return ""
    keeps = any(
        g.get("Volumes") or (g.get("EphemeralDisk") or {}).get("Sticky")
        for g in (c.job or {}).get("TaskGroups") or ()
    )

    def groups(gs: list[tuple[str, int]]) -> str:
        return ("group " if len(gs) == 1 else "groups ") + ", ".join(n for n, _ in gs)

    return (
        f"{groups(gone)} {'is' if len(gone) == 1 else 'are'} replaced by {groups(new)}: "
        f"{sum(n for _, n in gone)} instance(s) stop and {sum(n for _, n in new)} start "
        "(every instance restarts, none is updated in place)"
        + ("; see the data of stateful sets" if keeps else "; stateless: no data to keep")
    )


def _resizes(p: dict[str, Any] | None) -> bool:
    if p is None:
        return True
    return any(
        (tg.get("Updates") or {}).get(k)
        for tg in (p.get("Diff") or {}).get("TaskGroups") or ()
        for k in ("create", "destroy")
    )


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
        # An unchanged group still says what a job-level change (job meta) does to its
        # allocations, as `nomad job plan` does; a group that only keeps them says nothing.
        if tg.get("Type") == "None" and set(tg.get("Updates") or {}) <= {"ignore"}:
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
