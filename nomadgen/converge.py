"""Converging a cluster on a plan, the pyinfra way: observe what is (observe.py), compare it
with what is wanted (diff.py, pure: a ChangeSet), show it, then apply it set by set (a Report).

    observe.observe(...) -> Observed    one read: jobs, Nomad's dry-run plans, KV, services ...
    diff.diff(...)       -> ChangeSet   pure
    apply(...)           -> Report      writes interfaces, registers jobs layer by layer, waits

Only jobs whose meta names this manifest are ever updated or stopped. Unchanged jobs (Nomad's
plan diff against the live job is empty) are never registered again; changed ones are
registered with check-and-set on JobModifyIndex. Interface documents are written in Consul
transactions (<= 128 ops) with check-and-set on each key's ModifyIndex.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from . import names
from .diff import (  # the change set's records, re-exported for apply's callers
    CREATE,
    DELETE,
    DEREGISTER,
    PUT,
    REGISTER,
    STALE,
    STOP,
    UNCHANGED,
    UPDATE,
    Action,
    ChangeSet,
    JobChange,
    KVChange,
    PolicyChange,
    Reload,
    ServiceChange,
    diff_summary,
    group_replacement,
    owned_external,
    placement_failures,
)
from .errors import (
    Conflict,
    NomadgenError,
    NotHealthy,
    Problem,
    Unavailable,
    Unplaceable,
)
from .model import RenderSettings, Resolution
from .render import META_MANIFEST

__all__ = [  # the diff's records and helpers stay reachable as converge.X
    "CREATE",
    "DELETE",
    "DEREGISTER",
    "PUT",
    "REGISTER",
    "STALE",
    "STOP",
    "UNCHANGED",
    "UPDATE",
    "Action",
    "ChangeSet",
    "JobChange",
    "KVChange",
    "PolicyChange",
    "Reload",
    "ServiceChange",
    "diff_summary",
    "group_replacement",
    "owned_external",
    "placement_failures",
    "ApplyError",
    "Report",
    "Step",
    "apply",
    "prefix_of",
    "stop_owned",
    "zones_from_nodes",
]

if TYPE_CHECKING:
    from .backends import ConsulAPI, Node, NomadAPI


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
    if infeasible:  # the same code as the preflight and a blocked evaluation: cannot place
        raise Unplaceable(
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
            made = nomad.create_variable(
                path,
                {i: secrets.token_urlsafe(24) for i in items}
                | {names.CREDENTIALS_OWNER_ITEM: cs.manifest},
            )
            record(Step("credentials", path, True, "generated" if made else "already there"))

        # 1a'. Job-scoped ACL policies: a dependent's template reads its dependencies'
        # credentials as soon as its task starts.
        for pc in cs.policies:
            if pc.action == PUT and pc.body is not None:
                nomad.put_acl_policy(pc.body)
                record(Step("acl policy", pc.name, True, f"{pc.who} reads {', '.join(pc.paths)}"))

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
            waited = _wait_layer(
                nomad, consul, judged, registered, deadline, progress, wants, concurrency
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
        stopped = []
        for c in cs.jobs:
            if c.action == STOP:
                if stop_owned(nomad, c.id, cs.manifest):
                    stopped.append(c.id)
                record(Step("stop", c.id, True))
                pending.remove(f"stop {c.id}")
        if stopped and wait:  # stopped means stopped on the clients, out of Consul
            running = wait_stopped(nomad, stopped, max(0.0, deadline - time.monotonic()))
            if running:
                raise NotHealthy(
                    f"{len(running)} pruned job(s) still have allocations running: "
                    + _summary(running),
                    hint="their clients may be down or slow to stop them; see `nomad job "
                    "status`, and submit again (or with a larger --timeout)",
                )
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


_CLIENT_TERMINAL = ("complete", "failed", "lost")


def wait_stopped(nomad: NomadAPI, job_ids: list[str], timeout: float) -> list[str]:
    """Wait until every allocation of these stopped or purged jobs has stopped on its client;
    the jobs still running some at the deadline. Nomad answers a purge before its scheduler
    stops the allocations, and a client deregisters their Consul services as it stops them,
    so until then dependents still find the instances. A purged job's allocations stay
    listed until garbage collection (nomad/job_endpoint.go Allocations reads them by job ID)."""
    deadline = time.monotonic() + timeout
    index: dict[str, int] = {}
    left = list(job_ids)
    while True:
        left = [
            j
            for j in left
            if any(a.get("ClientStatus") not in _CLIENT_TERMINAL for a in nomad.allocations(j))
        ]
        remaining = deadline - time.monotonic()
        if not left or remaining <= 0:
            return left
        # one blocking query on the first job still running: it returns when its allocations move
        j = left[0]
        got = nomad.wait_for_change("allocations", j, max(1, index.get(j, 0)), min(remaining, 10))
        if got:
            index[j] = got
        else:
            time.sleep(min(remaining, 0.5))


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
            if c.modify_index == 0:
                # Check-and-set index 0 registers only a job that does not exist, and a new job
                # keeps the submitted Version, which nomadgen leaves unset: 0
                # (nomad/state/state_store.go upsertJobImpl). No read back needed.
                r["Version"] = 0
                return r
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


_EVAL_DONE = ("complete", "failed", "canceled", "cancelled", "blocked")


class _Waiter:
    """One job's wait inside its layer's waiter: where it is and what it has read."""

    def __init__(self, c: JobChange, reg: dict[str, Any] | None, want: dict[str, int]) -> None:
        self.c, self.reg, self.want = c, reg, want
        # evaluation -> (job ->) deployment | allocations -> consul; "start" for an unchanged job
        self.phase = "evaluation" if reg is not None else "start"
        self.dep_id = ""
        self.job: dict[str, Any] = {}
        self.total = 0
        self.index = 0  # what the object the layer blocks on had last (X-Nomad-Index)
        self.consul_index: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.seen: dict[str, Any] = {}  # the evaluation or deployment the last list read gave
        self.what = ""
        self.result: str | NomadgenError | None = None

    def waiting_on(self) -> tuple[str, str]:
        """The Nomad object whose change moves this job on (a blocking query's target)."""
        if self.phase == "evaluation":
            assert self.reg is not None
            return "evaluation", self.reg["EvalID"]
        if self.phase == "deployment":
            return "deployment", self.dep_id
        return "allocations", self.c.id


_PHASE_ORDER = ("evaluation", "start", "job", "deployment", "allocations", "consul")


def _wait_layer(
    nomad: NomadAPI,
    consul: ConsulAPI,
    judged: list[JobChange],
    registered: dict[str, dict[str, Any]],
    deadline: float,
    progress: Callable[[Step], None],
    wants: dict[str, dict[str, int]],
    concurrency: int,
) -> list[str | NomadgenError]:
    """Wait until every job of a layer is healthy: the version just registered (or, for an
    unchanged job, the live one) is placed, its deployment (if it has one) succeeded, and its
    Consul checks pass. One waiter for the whole layer: each round reads what the jobs wait
    on (evaluations and deployments in one filtered list request per 50 jobs), then, if
    nothing moved, makes one blocking query (`?index=&wait=`) on the object of the job
    furthest behind, which returns as soon as it changes.

    Bound to what was registered: the evaluation register returned is followed until the
    scheduler has processed it (Nomad creates the deployment then, not in register); the
    deployment is the one that evaluation names. Placement failures end a job's wait at once;
    a job purged or stopped meanwhile is said."""
    waiters = [_Waiter(c, registered.get(c.id), wants.get(c.id, {})) for c in judged]

    def say(w: _Waiter, what: str) -> None:
        if what != w.what:
            w.what = what
            progress(Step("progress", w.c.id, True, what))

    def guarded(fn: Callable[[_Waiter], None]) -> Callable[[_Waiter], None]:
        def run(w: _Waiter) -> None:
            try:
                fn(w)
            except NomadgenError as exc:
                w.result = exc

        return run

    @guarded
    def after_eval(w: _Waiter) -> None:
        ev = w.seen
        if ev["Status"] == "failed":
            raise NotHealthy(
                f"Nomad's scheduler failed the evaluation of {w.c.id}: "
                f"{ev.get('StatusDescription') or 'no reason given'}"
            )
        failures = placement_failures(ev)
        if failures:
            raise _unplaceable(w.c.id, failures)
        w.dep_id = ev.get("DeploymentID") or ""
        if w.dep_id and w.c.job is not None:
            # The deployment tells the rest without reading the job back: a stop or purge by
            # someone else cancels it (judge_deployment then says which), and the counts are
            # the ones just registered (Nomad's default count is 1).
            w.total = sum(
                1 if g.get("Count") is None else int(g["Count"])
                for g in w.c.job.get("TaskGroups") or ()
            )
            w.phase, w.index = "deployment", 0
            return
        w.phase = "job"

    @guarded
    def read_job(w: _Waiter) -> None:
        if w.phase == "start":  # unchanged: the live version's deployment, if it has one
            failures = _blocked(nomad, w.c.id)
            if failures:
                raise _unplaceable(w.c.id, failures)
        w.job = _still_there(nomad, w.c.id)  # one read: a purge between two reads is a race
        w.total = sum(int(g.get("Count") or 0) for g in w.job.get("TaskGroups") or ())
        if w.phase == "start":
            latest = nomad.deployment(w.c.id) or {}
            if latest.get("JobSpecModifyIndex") == w.job.get("JobModifyIndex"):
                w.dep_id = latest.get("ID", "")
        w.phase, w.index = ("deployment" if w.dep_id else "allocations"), 0

    @guarded
    def judge_deployment(w: _Waiter) -> None:
        dep = w.seen
        status = dep.get("Status")
        w.index = max(w.index, int(dep.get("ModifyIndex") or 0))
        if status == "successful":
            w.phase = "consul"
            return
        if status in ("failed", "cancelled", "canceled"):
            _still_there(nomad, w.c.id)  # a stop by someone else cancels it too
            raise NotHealthy(
                f"deployment {w.dep_id[:8]} of {w.c.id} (version {dep.get('JobVersion')}) "
                f"{status}: {dep.get('StatusDescription', '')}",
                _failure_details(nomad, consul, w.want, w.c.id, w.dep_id),
                hint=f"see `nomad job status {w.c.id}`; with auto_revert Nomad rolls back to "
                "the last stable version",
            )
        if not status:
            _still_there(nomad, w.c.id)
        say(w, f"deployment {w.dep_id[:8]} {status or 'not found'}: " + _dep_progress(dep))

    @guarded
    def read_allocations(w: _Waiter) -> None:  # no deployment: the live version's allocations
        allocs = [
            a
            for a in nomad.allocations(w.c.id)
            if a.get("DesiredStatus") == "run" and a.get("JobVersion") == w.job.get("Version")
        ]
        failed = [a for a in allocs if a.get("ClientStatus") in ("failed", "lost")]
        if failed:
            raise NotHealthy(
                f"{len(failed)} allocation(s) of {w.c.id} failed",
                _failure_details(nomad, consul, w.want, w.c.id),
            )
        running = sum(1 for a in allocs if a.get("ClientStatus") == "running")
        if running >= w.total:
            w.phase = "consul"
            return
        failures = _blocked(nomad, w.c.id)
        if failures:
            raise _unplaceable(w.c.id, failures)
        _still_there(nomad, w.c.id)
        say(w, f"allocations: {running}/{w.total} running")

    @guarded
    def read_consul(w: _Waiter) -> None:
        for svc, n in sorted(w.want.items()):
            if w.counts.get(svc, 0) < n:
                nodes, w.consul_index[svc] = consul.healthy_since(svc)
                w.counts[svc] = len(nodes)
        text = ", ".join(f"{s} {w.counts.get(s, 0)}/{n} passing" for s, n in sorted(w.want.items()))
        if all(w.counts.get(s, 0) >= n for s, n in w.want.items()):
            w.result = text or f"{w.total} allocation(s) running, no Consul check to wait for"
        else:
            say(w, "Consul checks: " + text)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while True:
            before = [(w.phase, w.result is None) for w in waiters]
            try:
                at = [w for w in waiters if w.result is None and w.phase == "evaluation"]
                if at:
                    got = {
                        e.get("ID"): e
                        for e in nomad.evaluations_by_id([w.reg["EvalID"] for w in at if w.reg])
                    }
                    for w in at:
                        assert w.reg is not None
                        ev = w.seen = got.get(w.reg["EvalID"]) or {}
                        w.index = max(w.index, int(ev.get("ModifyIndex") or 0))
                        if ev.get("Status") in _EVAL_DONE:
                            after_eval(w)
                        else:
                            say(
                                w,
                                f"evaluation {w.reg['EvalID'][:8]} "
                                f"{ev.get('Status') or 'not found'}",
                            )
                list(
                    pool.map(
                        read_job,
                        [w for w in waiters if w.result is None and w.phase in ("start", "job")],
                    )
                )
                at = [w for w in waiters if w.result is None and w.phase == "deployment"]
                if at:
                    deps = {d.get("ID"): d for d in nomad.deployments_by_id([w.dep_id for w in at])}
                    for w in at:
                        w.seen = deps.get(w.dep_id) or {}
                    list(pool.map(judge_deployment, at))
                list(
                    pool.map(
                        read_allocations,
                        [w for w in waiters if w.result is None and w.phase == "allocations"],
                    )
                )
                list(
                    pool.map(
                        read_consul,
                        [w for w in waiters if w.result is None and w.phase == "consul"],
                    )
                )
            except NomadgenError as exc:  # a list read failed: every job still waiting says it
                for w in waiters:
                    if w.result is None:
                        w.result = exc
            left = [w for w in waiters if w.result is None]
            if not left:
                return [w.result for w in waiters if w.result is not None]
            if time.monotonic() > deadline:
                for w in left:
                    w.result = NotHealthy(
                        f"{w.c.id} did not become healthy in time ({w.what or w.phase})",
                        _failure_details(nomad, consul, w.want, w.c.id),
                        hint="raise --timeout, or look at the job's allocations and checks",
                    )
                continue
            if [(w.phase, w.result is None) for w in waiters] != before:
                continue  # something moved on: read again before blocking
            _block(nomad, consul, left, deadline)


def _block(nomad: NomadAPI, consul: ConsulAPI, left: list[_Waiter], deadline: float) -> None:
    """One blocking query for the layer, on the job furthest behind: its evaluation,
    deployment or allocations in Nomad, or else a Consul service it still waits for."""
    wait = max(0.01, min(deadline - time.monotonic(), 60.0))
    w = min(left, key=lambda w: _PHASE_ORDER.index(w.phase))
    try:
        if w.phase != "consul":
            what, obj = w.waiting_on()
            index = nomad.wait_for_change(what, obj, max(1, w.index), wait)
            if index:
                w.index = index
                return
            # gone: the next round's reads say so; until then no busy loop
            time.sleep(min(wait, 0.5))
            return
        svc = next(s for s, n in sorted(w.want.items()) if w.counts.get(s, 0) < n)
        nodes, w.consul_index[svc] = consul.healthy_since(
            svc, max(1, w.consul_index.get(svc, 0)), wait
        )
        w.counts[svc] = len(nodes)
    except NomadgenError:  # the next round's reads say what is wrong; until then no busy loop
        time.sleep(min(wait, 0.5))


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
    # A later evaluation that placed everything makes Nomad stop tracking the blocked one
    # (fsm.go -> BlockedEvals.Untrack), but its status stays "blocked" in the state store.
    placed = max(
        (
            int(e.get("CreateIndex") or 0)
            for e in evals
            if e.get("Status") == "complete" and not e.get("FailedTGAllocs")
        ),
        default=-1,
    )
    for e in evals:
        if e.get("Status") == "blocked" and int(e.get("CreateIndex") or 0) > placed:
            prev = by_id.get(e.get("PreviousEval")) or {}
            return (
                placement_failures(prev)
                or placement_failures(e)
                or ["an evaluation is blocked: allocations are queued"]
            )
    return []


def _failure_details(
    nomad: NomadAPI, consul: ConsulAPI, want: dict[str, int], job_id: str, dep_id: str = ""
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
        for svc in sorted(want):
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
