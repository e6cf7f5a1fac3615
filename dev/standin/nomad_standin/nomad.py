"""Nomad side of the stand-in: cluster state, the reconciler, clients, deployments, HTTP API.

`NomadState` holds nodes, job versions, evaluations, allocations and deployments. Register and
deregister commit the job and a pending evaluation and return; the ticker runs the scheduler on
it `eval_delay` seconds later (creating the new deployment then, as Nomad's scheduler does).
The ticker (`tick()`, driven by the StandIn) also plays the clients: allocations start after `start_delay`,
their services enter Consul, health is judged per the group's update block and deployments
progress, succeed or fail. `make_handler(state, ...)` serves the HTTP API with Nomad's status
codes and bodies.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import nomad_jobcheck as jobcheck
from nomad_jobcheck import jobspec as nomad_jobspec

from . import acl as acl_mod
from . import (
    consul_template,
    data,
    gotmpl,
    jobspec,
    namespaces,
    network,
    nomadsched,
    scheduler,
    taskview,
)

log = logging.getLogger("standin.nomad")

NOMAD_VERSION = "1.10.5"
SEC = jobspec.SEC
TERMINAL_CLIENT = ("complete", "failed", "lost")


class NomadError(Exception):
    """An error the HTTP layer turns into a plain-text response with `status`."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def multierror(*problems: str) -> str:
    """go-multierror's text, as Nomad returns validation and CAS errors."""
    n = len(problems)
    head = "1 error occurred:" if n == 1 else f"{n} errors occurred:"
    return head + "".join(f"\n\t* {p}" for p in problems) + "\n\n"


def _check_job(job: dict) -> str:
    """A submitted job's validation errors as Nomad words them; "" when valid. First Nomad
    1.5.8's own Job.Validate() (../shared/tools/nomad-jobspec, when present): a job real
    Nomad rejects is never accepted here. Then nomad_jobcheck, which also knows the fields
    added after 1.5 (which 1.5.8's decoder drops) and refuses unknown keys."""
    if nomad_jobspec.binary() is not None:
        try:
            ok, text = nomad_jobspec.validate(job)
        except nomad_jobspec.JobspecError as e:
            # command/agent/job_endpoint.go: a body that does not decode is CodedError(400, ...)
            raise NomadError(400, str(e)) from None
        if not ok:
            return text
    problems = jobcheck.check_job(job)
    return jobcheck.nomad_error_text(problems) if problems else ""


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "t", "true", "yes", "")


@dataclass
class TaskRun:
    """One task of an allocation, as its client runs it."""

    name: str
    state: str = "pending"  # pending | running | dead
    restarts: int = 0
    last_restart: float | None = None
    started: float | None = None
    finished: float | None = None
    blocked: str = ""  # why its templates cannot render yet
    events: list[dict] = field(default_factory=list)
    rendered: dict[int, str] = field(default_factory=dict)  # template index -> fingerprint
    seen: dict[int, tuple] = field(default_factory=dict)  # template index -> (watch key, fp)
    due: dict[int, float] = field(default_factory=dict)  # template index -> change_mode time

    def event(self, kind: str, message: str, **details) -> None:
        self.events.append(
            {"Type": kind, "Time": time.time_ns(), "DisplayMessage": message, "Details": details}
        )
        del self.events[:-10]  # Nomad keeps the last 10 events per task


@dataclass
class Alloc:
    id: str
    eval_id: str
    name: str
    index: int
    namespace: str
    job_id: str
    group: str
    job: dict
    node: dict
    created: float
    ports: list[dict]
    task_ports: dict[str, list[dict]]
    deployment_id: str = ""
    previous: str = ""
    next_alloc: str = ""
    desired: str = "run"
    desired_description: str = ""
    client: str = "pending"
    client_description: str = ""
    start_at: float = 0.0  # monotonic time the client starts it
    started: float | None = None  # wall time it started
    finished: float | None = None
    healthy: bool | None = None
    health_time: float | None = None
    passing_since: float | None = None  # monotonic: health condition held since
    health_from: float = 0.0  # monotonic: when the current deployment began judging it
    services: list[tuple[str, str]] = field(default_factory=list)  # (service id, name)
    check_due: dict[str, float] = field(default_factory=dict)  # service id -> first check run
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    group_started: bool = False
    create_index: int = 0
    modify_index: int = 0
    modify_time: float = 0.0
    data_id: str = ""  # what its data directory holds (dev/standin/nomad_standin/data.py)
    data_origin: str = ""  # empty | sticky | migrated | volume
    disk_id: str = ""  # its ephemeral disk's identity (the data's too without a volume)
    migrate: bool = False  # DesiredTransition.Migrate: its node is draining
    # Nothing for its client to do on a tick: started, every task running, no check's first
    # run due, every template rendered from Consul indexes that have not moved since. Any
    # change to it (_touch), or to an index its templates read (_wake_watchers), clears this.
    quiet: bool = False
    watching: tuple = ()  # the Consul indexes its templates read, while quiet

    @property
    def terminal(self) -> bool:
        return self.desired in ("stop", "evict") or self.client in TERMINAL_CLIENT

    def ref(self) -> scheduler.AllocRef:
        cpu, mem = scheduler.group_resources(jobspec.group_of(self.job, self.group) or {})
        ports = {p["Value"] for p in self.ports}
        for plist in self.task_ports.values():
            ports |= {p["Value"] for p in plist}
        return scheduler.AllocRef(
            self.id,
            self.node["ID"],
            self.namespace,
            self.job_id,
            self.group,
            cpu,
            mem,
            frozenset(ports),
        )


@dataclass
class JobRecord:
    versions: list[dict]  # every stored version, oldest first; [-1] is current
    new_version: bool = False  # the scheduler has not seen this version yet (no deployment)

    @property
    def job(self) -> dict:
        return self.versions[-1]


class NomadState:
    """All Nomad-side state of one stand-in cluster. Thread-safe: one lock for everything."""

    def __init__(
        self,
        *,
        consul=None,
        zones=("zone-a", "zone-b", "zone-c"),
        nodes_per_zone=1,
        seed=0,
        start_delay=0.0,
        time_scale=1.0,
        eval_delay=0.0,
    ) -> None:
        self.consul = consul
        self.eval_delay = float(eval_delay)
        self._eval_queue: list[tuple[float, str]] = []  # (due, eval id), in creation order
        # Jobs whose evaluation runs nomad-sched with the lock released: one at a time per job,
        # as Nomad's eval broker hands out one evaluation per job (nomad/eval_broker.go).
        self._evaluating: set[tuple[str, str]] = set()
        self._releases = 0  # how often the lock was released for a scheduler run
        self.workers = 0  # scheduler worker threads (start_workers); none: tick() processes evals
        self.seed = seed
        self.start_delay = float(start_delay)
        self.time_scale = float(time_scale)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.index = 10
        self._rng = random.Random(f"ids-{seed}")
        self.nodes: list[dict] = []
        self.jobs: dict[tuple[str, str], JobRecord] = {}
        self.allocs: dict[str, Alloc] = {}
        # Indexes, so that an evaluation or a read costs the same however many jobs the cluster
        # holds (Nomad's state store indexes allocs by job and node, evals and deployments by job).
        self._job_allocs: dict[tuple[str, str], dict[str, Alloc]] = {}  # (ns, job) -> allocs
        self._active: dict[str, Alloc] = {}  # allocations not yet seen terminal (that is final)
        self._node_allocs: dict[str, dict[str, list]] = {}  # node -> alloc -> [alloc, job, ref]
        # node -> [cpu, memory, ports] its live allocations use, kept by _track_usage
        self._node_totals: dict[str, list] = {}
        self._job_evals: dict[tuple[str, str], list[dict]] = {}
        self._job_deps: dict[tuple[str, str], list[dict]] = {}
        self.evals: dict[str, dict] = {}
        self.sched_errors: list[str] = []  # nomad-sched failures (the stand-in decided instead)
        self.deployments: dict[str, dict] = {}
        self._running_deps: dict[str, dict] = {}  # the tick judges these, not every deployment
        # Quiet allocations by the Consul index their templates read (consul_template
        # watch targets, and ("nodes", "") for the catalog's nodes and Nomad's), and what those
        # indexes were at the last tick.
        self._watchers: dict[tuple[str, str], set[str]] = {}
        self._watch_seen: dict[tuple[str, str], object] = {}
        self.never_healthy_jobs: set[str] = set()
        self.variables: dict[tuple[str, str], dict] = {}  # (namespace, path) -> variable
        self.namespaces: dict[str, dict] = namespaces.default_namespaces()
        self.acl = (
            acl_mod.NomadACL()
        )  # off until a management token is given (dev/standin/nomad_standin/acl.py)
        self.network = network.Network(self)
        self._dep_clock: dict[str, dict[str, float]] = {}  # deployment -> group -> deadline
        self._watched: dict[str, int] = {}  # deployment -> healthy count at its last eval
        self._port_rng: dict[str, random.Random] = {}
        self._rng_splay = random.Random(f"splay-{seed}")
        self.data = data.DataStore()
        self.csi_volumes: set[str] = set()  # registered CSI volume IDs (default namespace)
        self._rng_checks = random.Random(f"checks-{seed}")
        self._make_nodes(zones, nodes_per_zone)

    # -- ids, indexes, time ------------------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def bump(self) -> int:
        self.index += 1
        self.changed.notify_all()
        return self.index

    def scaled(self, ns: int | None) -> float:
        """A job duration (ns) in seconds, scaled by `time_scale` for fast test runs."""
        return (ns or 0) / SEC * self.time_scale

    # -- nodes ---------------------------------------------------------------------------------
    def _make_nodes(self, zones, per_zone) -> None:
        node_rng = random.Random(f"nodes-{self.seed}")
        n = 0
        for zone in zones:
            for i in range(1, per_zone + 1):
                n += 1
                node_id = str(uuid.UUID(int=node_rng.getrandbits(128), version=4))
                name = f"{zone}-{i}"
                addr = f"127.0.0.{10 + n}"
                self.nodes.append(_node(node_id, name, zone, addr, self.index + n))
        self.index += n
        if self.consul is not None:
            for node in self.nodes:
                self.consul.register_node(
                    node["Name"], node["HTTPAddr"].split(":")[0], {"zone": node["Meta"]["zone"]}
                )

    def node_by_name(self, name: str) -> dict:
        for node in self.nodes:
            if node["Name"] == name or node["ID"] == name:
                return node
        raise KeyError(name)

    def drop_node(self, name: str) -> None:
        """The node goes down: its allocations are lost and the scheduler replaces them."""
        with self.lock:
            node = self.node_by_name(name)
            node["Status"] = "down"
            node["StatusDescription"] = "node is down"
            node["ModifyIndex"] = self.bump()
            self._consul_node_health(node, "critical")  # its agent is gone too
            affected = set()
            for a in self.allocs.values():
                if a.node["ID"] == node["ID"] and not a.terminal:
                    self._stop_alloc(a, "alloc is lost since its node is down", client="lost")
                    affected.add((a.namespace, a.job_id))
            for key in sorted(affected):
                rec = self.jobs.get(key)
                if rec:
                    self._evaluate(rec, "node-update", node_id=node["ID"])

    def drain_node(self, name: str) -> None:
        """`nomad node drain -enable`: the node turns ineligible and its allocations migrate
        (DesiredTransition.Migrate; scheduler/reconcile.go stops them "alloc is being migrated"
        and places replacements with PreviousAllocation set). Every allocation is marked at
        once; Nomad's drainer paces them by each group's migrate block."""
        with self.lock:
            node = self.node_by_name(name)
            node.update(
                SchedulingEligibility="ineligible",
                Drain=True,
                DrainStrategy={
                    "Deadline": 3600 * SEC,
                    "IgnoreSystemJobs": False,
                    "ForceDeadline": "0001-01-01T00:00:00Z",
                    "StartedAt": rfc3339(time.time()),
                },
            )
            node["ModifyIndex"] = self.bump()
            affected = set()
            for a in self.allocs.values():
                if a.node["ID"] == node["ID"] and not a.terminal and a.job["Type"] != "system":
                    a.migrate = True
                    affected.add((a.namespace, a.job_id))
            for key in sorted(affected):
                rec = self.jobs.get(key)
                if rec:
                    self._evaluate(rec, "node-drain", node_id=node["ID"])

    def add_host_volume(self, node_name: str, volume: str, path: str = "") -> None:
        """A client's `host_volume "<volume>" { path = ... }` (the node fingerprints it)."""
        with self.lock:
            node = self.node_by_name(node_name)
            node["HostVolumes"] = dict(node.get("HostVolumes") or {})
            node["HostVolumes"][volume] = {
                "Path": path or f"/srv/nomad/{volume}",
                "ReadOnly": False,
            }
            node["ModifyIndex"] = self.bump()

    def create_csi_volume(self, vol_id: str) -> None:
        """`nomad volume create/register`: the volume exists and can be claimed."""
        with self.lock:
            self.csi_volumes.add(vol_id)
            self.bump()
            for ev in list(self.evals.values()):  # as restore_node: blocked evals retry
                if ev["Status"] == "blocked":
                    ev["Status"] = "complete"
                    rec = self.jobs.get((ev["Namespace"], ev["JobID"]))
                    if rec and not rec.job.get("Stop"):
                        self._evaluate(rec, "volume-create")

    def data_write(self, alloc_id: str, key: str, value: str) -> None:
        """Write a marker into a running allocation's data directory."""
        with self.lock:
            a = self.allocs[alloc_id]
            if a.terminal or a.client != "running":
                raise ValueError(f"allocation {alloc_id} is not running")
            self.data.write(a.data_id, key, value)

    def data_read(self, alloc_id: str) -> dict:
        with self.lock:
            a = self.allocs[alloc_id]
            return {
                "AllocID": a.id,
                "Name": a.name,
                "NodeName": a.node["Name"],
                "DataID": a.data_id,
                "Origin": a.data_origin,
                "PreviousAllocation": a.previous,
                "Markers": self.data.read(a.data_id),
            }

    def restore_node(self, name: str) -> None:
        """The node comes back: blocked evaluations get another chance."""
        with self.lock:
            node = self.node_by_name(name)
            node["Status"] = "ready"
            node["StatusDescription"] = ""
            node.update(SchedulingEligibility="eligible", Drain=False, DrainStrategy=None)
            node["ModifyIndex"] = self.bump()
            self._consul_node_health(node, "passing")
            for ev in list(self.evals.values()):
                if ev["Status"] == "blocked":
                    ev["Status"] = "complete"
                    ev["ModifyIndex"] = self.bump()
                    rec = self.jobs.get((ev["Namespace"], ev["JobID"]))
                    if rec and not rec.job.get("Stop"):
                        self._evaluate(rec, "node-update", node_id=node["ID"])

    def _consul_node_health(self, node: dict, status: str) -> None:
        set_health = getattr(self.consul, "set_node_health", None)  # optional in the contract
        if set_health is not None:
            try:
                set_health(node["Name"], status)
            except KeyError:
                pass

    def never_healthy(self, job_id: str, on: bool = True) -> None:
        """Checks of this job's services report critical from now on."""
        with self.lock:
            if on:
                self.never_healthy_jobs.add(job_id)
            else:
                self.never_healthy_jobs.discard(job_id)
            for a in self.allocs.values():
                if a.job_id == job_id and self.consul is not None:
                    for sid, _ in a.services:
                        self.consul.set_service_health(sid, "critical" if on else "passing")
            self.bump()

    # -- jobs: register / plan / stop ------------------------------------------------------------
    def register(
        self,
        submitted: dict,
        *,
        enforce: bool = False,
        modify_index: int = 0,
        namespace: str | None = None,
        triggered_by: str = "job-register",
    ) -> dict:
        problems = _check_job(submitted)
        if problems:
            raise NomadError(500, problems)
        with self.lock:
            job = self._prepare(submitted, namespace)
            key = (job["Namespace"], job["ID"])
            rec = self.jobs.get(key)
            current = rec.job if rec else None
            if enforce:
                # Plain error text, no multierror (nomad/job_endpoint.go Register; the HTTP
                # agent answers an uncoded RPC error with 500 and err.Error()).
                have = current["JobModifyIndex"] if current else 0
                if modify_index == 0 and current is not None:
                    raise NomadError(500, "Enforcing job modify index 0: job already exists")
                if modify_index != 0 and current is None:
                    raise NomadError(
                        500, f"Enforcing job modify index {modify_index}: job does not exist"
                    )
                if modify_index != 0 and modify_index != have:
                    raise NomadError(
                        500,
                        f"Enforcing job modify index {modify_index}: job exists "
                        f"with conflicting job modify index: {have}",
                    )
            if jobspec.spec_changed(current, job):
                index = self.bump()
                job["SubmitTime"] = time.time_ns()
                job["CreateIndex"] = current["CreateIndex"] if current else index
                job["ModifyIndex"] = index
                job["JobModifyIndex"] = index
                job["Version"] = current["Version"] + 1 if current else 0
                job["Stable"] = False
                if rec is None:
                    rec = self.jobs[key] = JobRecord([job])
                else:
                    rec.versions.append(job)
                    del rec.versions[:-6]  # Nomad keeps a bounded history of versions
                rec.new_version = True
            # nomad/job_endpoint.go: Register commits the job and a pending evaluation and
            # returns; the scheduler (scheduler/reconcile.go) creates the deployment later.
            ev = self._enqueue(job, triggered_by, optimistic=True)
            return {
                "EvalID": ev["ID"],
                "EvalCreateIndex": ev["CreateIndex"],
                "JobModifyIndex": rec.job["JobModifyIndex"],
                "Warnings": "",
                "Index": ev["CreateIndex"],
                "LastContact": 0,
                "KnownLeader": False,
            }

    def _prepare(self, submitted: dict, namespace: str | None) -> dict:
        if namespace:
            submitted = dict(submitted, Namespace=namespace)
        job = jobspec.canonicalize(submitted)
        problem = namespaces.job_namespace_error(self, job)
        if problem:
            raise NomadError(500, multierror(problem))
        return job

    def plan(self, submitted: dict, *, diff: bool, namespace: str | None = None) -> dict:
        problems = _check_job(submitted)
        if problems:
            raise NomadError(500, problems)
        with self.lock:
            job = self._prepare(submitted, namespace)
            rec = self.jobs.get((job["Namespace"], job["ID"]))
            current = rec.job if rec else None
            if current is not None:
                for k in (
                    "CreateIndex",
                    "ModifyIndex",
                    "JobModifyIndex",
                    "Version",
                    "Stable",
                    "SubmitTime",
                    "Status",
                ):
                    job[k] = current[k]
                if jobspec.spec_changed(current, job):
                    job["Version"] = current["Version"] + 1
            plan = self._reconcile(job, dry_run=True)
            out_diff = None
            if diff:
                out_diff = jobspec.annotate(
                    jobspec.job_diff(current, job),
                    plan.desired,
                    nomad_1_5=plan.engine == "nomad-sched",
                )
            created = None
            if plan.failed:
                created = [
                    self._eval_dict(
                        job,
                        "queued-allocs",
                        status="blocked",
                        description="created to place remaining allocations",
                    )
                ]
            return {
                "Index": self.index,
                "JobModifyIndex": current["JobModifyIndex"] if current else 0,
                "CreatedEvals": created,
                "Diff": out_diff,
                "Annotations": {"DesiredTGUpdates": plan.desired, "PreemptedAllocs": None},
                "FailedTGAllocs": plan.failed,
                "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
                "Warnings": "",
            }

    def deregister(self, job_id: str, *, purge: bool, namespace: str | None = None) -> dict:
        with self.lock:
            if (namespace or "default", job_id) not in self.jobs:
                # nomad/job_endpoint.go Deregister: a missing job is a no-op, answered 200.
                return {
                    "EvalID": "",
                    "EvalCreateIndex": 0,
                    "JobModifyIndex": 0,
                    "VolumeEvalID": "",
                    "VolumeEvalIndex": 0,
                    "Index": 0,
                    "LastContact": 0,
                    "KnownLeader": False,
                    "NextToken": "",
                }
            rec = self._record(job_id, namespace)
            job = copy.deepcopy(rec.job)
            if not job.get("Stop"):
                index = self.bump()
                job.update(
                    Stop=True,
                    Version=rec.job["Version"] + 1,
                    ModifyIndex=index,
                    JobModifyIndex=index,
                    SubmitTime=time.time_ns(),
                    Stable=False,
                )
                rec.versions.append(job)
            ev = self._enqueue(job, "job-deregister")
            if purge:  # the job leaves the state now; its evaluation stops what is left
                del self.jobs[(rec.job["Namespace"], job_id)]
                self.bump()
            return {
                "EvalID": ev["ID"],
                "EvalCreateIndex": ev["CreateIndex"],
                "JobModifyIndex": job["JobModifyIndex"],
                "Index": self.index,
                "LastContact": 0,
                "KnownLeader": False,
            }

    def _record(self, job_id: str, namespace: str | None = None) -> JobRecord:
        rec = self.jobs.get((namespace or "default", job_id))
        if rec is None:
            raise NomadError(404, "job not found")
        return rec

    # -- evaluations and the reconciler --------------------------------------------------------
    def _eval_dict(
        self, job: dict, triggered_by: str, *, status="complete", description="", node_id=""
    ) -> dict:
        now = time.time_ns()
        return {
            "ID": self.new_id(),
            "Namespace": job["Namespace"],
            "Priority": job["Priority"],
            "Type": job["Type"],
            "TriggeredBy": triggered_by,
            "JobID": job["ID"],
            "JobModifyIndex": job["JobModifyIndex"],
            "NodeID": node_id,
            "NodeModifyIndex": 0,
            "DeploymentID": "",
            "Status": status,
            "StatusDescription": description,
            "Wait": 0,
            "WaitUntil": "0001-01-01T00:00:00Z",
            "NextEval": "",
            "PreviousEval": "",
            "BlockedEval": "",
            "RelatedEvals": None,
            "FailedTGAllocs": None,
            "ClassEligibility": None,
            "QuotaLimitReached": "",
            "EscapedComputedClass": False,
            "AnnotatePlan": False,
            "QueuedAllocations": None,
            "LeaderACL": "",
            "SnapshotIndex": 0,
            "CreateIndex": 0,
            "ModifyIndex": 0,
            "CreateTime": now,
            "ModifyTime": now,
        }

    def _enqueue(self, job: dict, triggered_by: str, optimistic: bool = False) -> dict:
        """Queue an evaluation; with no eval_delay it is processed before this returns.
        `optimistic`: nomad-sched runs with the state lock released (see _decide_with_nomad)."""
        ev = self._eval_dict(job, triggered_by, status="pending")
        ev["CreateIndex"] = ev["ModifyIndex"] = self.bump()
        self._add_eval(ev)
        self._eval_queue.append((time.monotonic() + self.eval_delay, ev["ID"]))
        if self.eval_delay <= 0:
            self._run_due_evals(optimistic=optimistic)
            while ev["Status"] == "pending":  # another thread's worker took it: still in flight
                self.changed.wait()
        return ev

    def start_workers(self, stopped: threading.Event, count: int = 0) -> list[threading.Thread]:
        """Scheduler workers that process due evaluations side by side, as a Nomad server runs
        num_schedulers of them (nomad/config.go: one per CPU core); each runs nomad-sched with
        the lock released and re-checks its plan before committing it."""
        count = count or max(2, os.cpu_count() or 2)
        threads = [
            threading.Thread(
                target=self._worker, args=(stopped,), name=f"standin-sched-{i}", daemon=True
            )
            for i in range(count)
        ]
        with self.lock:
            self.workers += count
        for t in threads:
            t.start()
        return threads

    def _worker(self, stopped: threading.Event) -> None:
        with self.lock:
            while not stopped.is_set():
                ev = self._take_due_eval(time.monotonic())
                if ev is None:
                    due = self._eval_queue[0][0] if self._eval_queue else float("inf")
                    self.changed.wait(max(0.001, min(0.05, due - time.monotonic())))
                    continue
                key = (ev["Namespace"], ev["JobID"])
                self._evaluating.add(key)
                try:
                    self._run_eval(ev, optimistic=True)
                except Exception:  # a bug in one evaluation must not stop the worker
                    log.exception("stand-in evaluation %s failed", ev["ID"])
                finally:
                    self._evaluating.discard(key)
                    self.changed.notify_all()

    def _take_due_eval(self, now: float) -> dict | None:
        """The oldest due pending evaluation whose job has none in flight (Nomad's eval broker
        holds back a job's further evaluations while one is out: nomad/eval_broker.go)."""
        i = 0
        while i < len(self._eval_queue) and self._eval_queue[i][0] <= now:
            ev = self.evals.get(self._eval_queue[i][1])
            if ev is None or ev["Status"] != "pending":
                self._eval_queue.pop(i)
                continue
            if (ev["Namespace"], ev["JobID"]) not in self._evaluating:
                self._eval_queue.pop(i)
                return ev
            i += 1
        return None

    def run_evals(self) -> None:
        """Lever: the scheduler processes every pending evaluation now."""
        with self.lock:
            self._run_due_evals(now=float("inf"))

    def _run_due_evals(self, now: float | None = None, optimistic: bool = False) -> None:
        """The scheduler's worker: process pending evaluations whose time has come."""
        now = time.monotonic() if now is None else now
        while self._eval_queue and self._eval_queue[0][0] <= now:
            _, eval_id = self._eval_queue.pop(0)
            ev = self.evals.get(eval_id)
            if ev is None or ev["Status"] != "pending":
                continue
            key = (ev["Namespace"], ev["JobID"])
            while key in self._evaluating:  # the job's evaluation in flight finishes first
                self.changed.wait()
            self._evaluating.add(key)
            try:
                self._run_eval(ev, optimistic)
            finally:
                self._evaluating.discard(key)
                self.changed.notify_all()

    def _run_eval(self, ev: dict, optimistic: bool) -> None:
        rec = self.jobs.get((ev["Namespace"], ev["JobID"]))
        if rec is None or rec.job.get("Stop"):
            # scheduler/reconcile.go cancels the deployments of a stopped job.
            for dep in self._job_deps.get((ev["Namespace"], ev["JobID"]), ()):
                if dep["Status"] == "running":
                    self._end_deployment(dep, "cancelled", "Cancelled because job is stopped")
        if rec is None:  # purged: stop what is left
            for a in self._allocs_of(ev["Namespace"], ev["JobID"]):
                if not a.terminal:
                    self._stop_alloc(a, "alloc not needed due to job update")
            ev.update(Status="complete", ModifyIndex=self.bump(), ModifyTime=time.time_ns())
            return
        if rec.new_version:
            rec.new_version = False
            self._new_deployment(rec)
        self._evaluate(rec, ev["TriggeredBy"], ev=ev, optimistic=optimistic)

    def _evaluate(
        self,
        rec: JobRecord,
        triggered_by: str,
        node_id: str = "",
        ev: dict | None = None,
        optimistic: bool = False,
    ) -> dict:
        job = rec.job
        if ev is None:
            ev = self._eval_dict(job, triggered_by, node_id=node_id)
            ev["CreateIndex"] = ev["ModifyIndex"] = self.bump()
        else:  # a queued evaluation: it now runs against the job as it is
            ev.update(ModifyIndex=self.bump(), ModifyTime=time.time_ns())
        releases = self._releases
        for attempt in range(3):
            job = rec.job
            dep = self._active_deployment(job)
            ev["DeploymentID"] = dep["ID"] if dep else ""
            plan = self._reconcile(
                job, dry_run=False, eval_id=ev["ID"], optimistic=optimistic and attempt < 2
            )
            if plan is not None:
                break
            if self.jobs.get((job["Namespace"], job["ID"])) is not rec:  # purged meanwhile
                plan = _Plan()
                break
        assert plan is not None  # the last attempt holds the lock throughout
        # The evaluation completes once its plan is applied (nomad/worker.go: the eval is
        # updated after SubmitPlan); readers that saw it pending while the lock was released
        # see it move.
        ev["Status"] = "complete"
        if self._releases != releases:
            ev["ModifyIndex"] = self.bump()
        ev["QueuedAllocations"] = {g: n for g, n in plan.queued.items()}
        if plan.failed:
            ev["FailedTGAllocs"] = plan.failed
            blocked = self._eval_dict(
                job,
                "queued-allocs",
                status="blocked",
                description="created to place remaining allocations",
            )
            blocked["PreviousEval"] = ev["ID"]
            blocked["CreateIndex"] = blocked["ModifyIndex"] = self.bump()
            # A newer blocked eval for the job replaces older ones, as in Nomad's blocked queue.
            for old in self._job_evals.get((job["Namespace"], job["ID"]), ()):
                if old["Status"] == "blocked":
                    old["Status"] = "canceled"
            self._add_eval(blocked)
            ev["BlockedEval"] = blocked["ID"]
        self._add_eval(ev)
        # What this evaluation placed starts now; the rest of the cluster moves on the tick
        # (settling every allocation after every evaluation made a push quadratic).
        self._settle(self._allocs_of(job["Namespace"], job["ID"]))
        return ev

    def _sched_view(self, job: dict, live: list[Alloc], in_pool: list[dict]) -> tuple:
        """What a scheduler run read besides node usage: the job version, its live
        allocations and the nodes' scheduling state."""
        rec = self.jobs.get((job["Namespace"], job["ID"]))
        return (
            rec.job if rec else None,
            [(a.id, a.modify_index, a.client, a.migrate) for a in live],
            [
                (
                    n["ID"],
                    n.get("ModifyIndex"),
                    n.get("Status"),
                    n.get("SchedulingEligibility"),
                    bool(n.get("DrainStrategy")),
                )
                for n in in_pool
            ],
        )

    def _plan_still_applies(self, job, groups, seen, usage, d) -> bool:
        """After a scheduler run with the lock released, as Nomad's plan applier checks a plan
        against the state it commits to (nomad/plan_apply.go evaluatePlan, evaluateNodePlan):
        the job and its allocations must be as the run saw them, and every node that receives
        a placement must still fit what the plan puts there. Other jobs' allocations placed
        meanwhile are fine if they leave room; otherwise the evaluation runs again."""
        if seen[0] is not job:
            return False
        in_pool = [n for n in self.nodes if n["ID"] in usage]
        if len(in_pool) != len(usage):
            return False
        if self._sched_view(job, self._live(job["ID"], job["Namespace"]), in_pool) != seen:
            return False
        by_id = {n["ID"]: n for n in in_pool}
        targets = {p["node_id"] for p in d.place}
        leaving = {p["previous"] for p in d.place if p["previous"]} | {i for i, _ in d.stop}
        skip = (job["ID"], job["Namespace"])
        for node_id in targets:
            node = by_id.get(node_id)
            if node is None:
                return False
            now = self._node_usage(node["ID"], skip)
            if now == usage[node["ID"]]:
                continue
            res = node.get("NodeResources") or {}
            cpu, mem = now[0], now[1]
            ports = set(now[2])
            for a in self._live(job["ID"], job["Namespace"]):
                if a.node["ID"] == node["ID"] and a.id not in leaving:
                    ref = a.ref()
                    cpu, mem = cpu + ref.cpu, mem + ref.memory_mb
            for p in d.place:
                if p["node_id"] != node_id:
                    continue
                group = groups.get(p["group"]) or {}
                gcpu, gmem = scheduler.group_resources(group)
                cpu, mem = cpu + gcpu, mem + gmem
                for _, port in scheduler.group_reserved_ports(group):
                    if port in ports:
                        return False
                    ports.add(port)
            if cpu > int((res.get("Cpu") or {}).get("CpuShares") or 0) or mem > int(
                (res.get("Memory") or {}).get("MemoryMB") or 0
            ):
                return False
        return True

    @contextlib.contextmanager
    def _unlocked(self):
        """The state lock released, however deep this thread holds it: a plan runs Nomad's
        scheduler on a snapshot (nomad/job_endpoint.go Plan), so plans and other requests
        need not wait for each other's nomad-sched runs. Everything the run reads is copied."""
        self._releases += 1
        saved = self.lock._release_save()  # noqa: SLF001 - as threading.Condition does
        try:
            yield
        finally:
            self.lock._acquire_restore(saved)  # noqa: SLF001

    def _add_eval(self, ev: dict) -> None:
        if ev["ID"] not in self.evals:  # a queued evaluation is stored when enqueued
            self._job_evals.setdefault((ev["Namespace"], ev["JobID"]), []).append(ev)
        self.evals[ev["ID"]] = ev

    def _allocs_of(self, namespace: str, job_id: str):
        """Every allocation of the job, terminal ones too, oldest first."""
        return list(self._job_allocs.get((namespace, job_id), {}).values())

    def _live(self, job_id: str, namespace: str) -> list[Alloc]:
        return sorted(
            (a for a in self._allocs_of(namespace, job_id) if not a.terminal),
            key=lambda a: (a.group, a.index, a.created),
        )

    def _node_usage(self, node_id: str, skip: tuple[str, str]) -> tuple[int, int, set[int]]:
        """CPU, memory and ports the node's live allocations use, but those of job `skip`:
        the node's totals less the job's own (its allocations, not the cluster's, are walked)."""
        cpu, mem, counts = self._node_totals.get(node_id) or (0, 0, Counter())
        ports = set(counts)
        entries = self._node_allocs.get(node_id, {})
        own: Counter = Counter()
        for a in self._job_allocs.get((skip[1], skip[0]), {}).values():
            entry = entries.get(a.id)
            if entry is None:
                continue
            ref = entry[2]
            cpu -= ref.cpu
            mem -= ref.memory_mb
            own.update(ref.ports)
        for port, n in own.items():
            if counts[port] <= n:
                ports.discard(port)
        return cpu, mem, ports

    def _track_usage(self, a: Alloc) -> None:
        """Keep the node's totals current: call when an allocation is placed, updated in place
        (its resources may change) or turns terminal."""
        node_id = a.node["ID"]
        entries = self._node_allocs.setdefault(node_id, {})
        totals = self._node_totals.setdefault(node_id, [0, 0, Counter()])
        old = entries.pop(a.id, None)
        if old is not None:
            ref = old[2]
            totals[0] -= ref.cpu
            totals[1] -= ref.memory_mb
            totals[2].subtract(ref.ports)
            for port in ref.ports:
                if totals[2][port] <= 0:
                    del totals[2][port]
        if not a.terminal:
            ref = a.ref()
            entries[a.id] = [a, a.job, ref]
            totals[0] += ref.cpu
            totals[1] += ref.memory_mb
            totals[2].update(ref.ports)

    def _update_room(self, job: dict, group: str, mine: list[Alloc], dry_run: bool) -> int:
        """How many destructive updates a rolling deployment allows now (update.max_parallel)."""
        max_parallel = int(
            ((jobspec.group_of(job, group) or {}).get("Update") or {}).get("MaxParallel") or 0
        )
        if dry_run:
            return max_parallel  # what the first batch of a new deployment would replace
        dep = self._active_deployment(job)
        if dep is None:
            return 0  # failed or cancelled: the rollout stops where it is
        in_flight = sum(
            1
            for a in mine
            if a.deployment_id == dep["ID"]
            and a.healthy is None
            and not jobspec.spec_changed(a.job, job)
        )
        return max(0, max_parallel - in_flight)

    def _reconcile(
        self, job: dict, *, dry_run: bool, eval_id: str = "", optimistic: bool = False
    ) -> _Plan | None:
        """Compare the job with its allocations; stop, place and update (or only count).

        The decisions are Nomad's own scheduler's where nomad-sched is at hand
        (dev/standin/nomad_standin/nomadsched.py), else the stand-in's engine's. `optimistic`:
        nomad-sched runs with the lock released; None if the state moved under it so that its
        plan no longer applies (the caller evaluates again)."""
        # nomad-sched's state store holds no CSI volumes: jobs claiming them use the stand-in's
        # engine, which checks them against create_csi_volume's register.
        csi = any(
            v.get("Type") == "csi"
            for g in job.get("TaskGroups") or []
            for v in (g.get("Volumes") or {}).values()
        )
        decided = (
            self._decide_with_nomad(job, dry_run, optimistic)
            if nomadsched.binary() and not csi
            else None
        )
        if decided is _STALE:
            return None
        if decided is None:
            decided = self._decide_own(job, dry_run=dry_run, eval_id=eval_id)
        plan, stops, inplace, placed = decided
        if dry_run:
            return plan
        return self._apply(job, plan, stops, inplace, placed, eval_id)

    def _decide_with_nomad(self, job: dict, dry_run: bool, optimistic: bool = False):
        """Nomad 1.5.8's decisions for this evaluation; None (and a recorded error) if it failed;
        _STALE if it ran with the lock released and its plan no longer applies."""
        live = self._live(job["ID"], job["Namespace"])
        groups = {g["Name"]: g for g in job.get("TaskGroups") or []}
        pool = job.get("NodePool") or "default"
        in_pool = [n for n in self.nodes if pool == "all" or n.get("NodePool", "default") == pool]
        # Other jobs' allocations, as node reservations.
        skip = (job["ID"], job["Namespace"])
        usage = {n["ID"]: self._node_usage(n["ID"], skip) for n in in_pool}
        nodes = [nomadsched.node_input(n, *usage[n["ID"]]) for n in in_pool]
        seen = self._sched_view(job, live, in_pool)
        lives = [
            nomadsched.LiveAlloc(
                a.id,
                a.name,
                a.group,
                a.node["ID"],
                "pending" if a.client == "pending" else "running",
                a.job,
                a.migrate,
            )
            for a in live
        ]

        def reasons(group_name: str) -> dict[str, str]:
            group = groups.get(group_name) or {}
            out = {}
            for n in in_pool:
                probe = scheduler.Placer(job, [n], [], set(), seed=n["ID"])
                metric = scheduler.Metric()
                ok = probe._feasible(n, group, metric)
                out[n["Name"]] = "" if ok else next(iter(metric.ConstraintFiltered or {}), "")
            return out

        try:
            d = nomadsched.decide(
                nomadsched.binary(),
                job,
                nodes,
                lives,
                pool_size=len(in_pool),
                reasons=reasons,
                unlocked=self._unlocked if dry_run or optimistic else contextlib.nullcontext,
            )
        except nomadsched.SchedError as exc:
            self.sched_errors.append(f"{job['ID']}: {exc}")
            log.error(
                "nomad-sched failed for job %s, the stand-in's engine decides: %s", job["ID"], exc
            )
            return None
        if not dry_run and optimistic and not self._plan_still_applies(job, groups, seen, usage, d):
            return _STALE
        plan = _Plan(desired=d.desired, failed=d.failed, queued=d.queued, engine="nomad-sched")
        for name in groups:
            plan.desired.setdefault(name, _desired())
            plan.queued.setdefault(name, 0)
        # Pacing of a rolling update stays the stand-in's (its deployments judge health):
        # at most the room max_parallel leaves now, the rest waits (as Nomad's Ignore).
        keep = []
        for name in sorted({p["group"] for p in d.place}):
            mine = [a for a in live if a.group == name]
            moving = {a.id for a in live if a.migrate}  # drains follow migrate, not update
            repl = [
                p
                for p in d.place
                if p["group"] == name and p["previous"] and p["previous"] not in moving
            ]
            room = len(repl)
            if name in groups and _deploys(job, name):
                fresh = sum(1 for p in d.place if p["group"] == name and not p["previous"])
                room = min(room, max(0, self._update_room(job, name, mine, dry_run) - fresh))
            plan.desired[name]["DestructiveUpdate"] -= len(repl) - room
            plan.desired[name]["Ignore"] += len(repl) - room
            keep.extend(
                p
                for p in d.place
                if p["group"] == name
                and (not p["previous"] or p["previous"] in moving or p in repl[:room])
            )
        replacing = {p["previous"] for p in keep if p["previous"]}
        waiting = {p["previous"] for p in d.place if p["previous"]} - replacing
        stops = [
            (self.allocs[i], why) for i, why in d.stop if i not in replacing and i not in waiting
        ]
        handled = {a.id for a, _ in stops} | replacing | waiting | set(d.inplace)
        for a in live:  # a group neither version the scheduler saw has
            if (
                a.id not in handled
                and a.group not in groups
                and jobspec.group_of(nomadsched.previous_job(job, lives), a.group) is None
            ):
                stops.append((a, "alloc not needed due to job update"))
        inplace = [self.allocs[i] for i in d.inplace]
        lost = {
            a.name: a
            for a in self._allocs_of(job["Namespace"], job["ID"])
            if a.client == "lost" and not a.next_alloc
        }
        placed = []
        for p in sorted(keep, key=lambda p: (p["group"], p["name"])):  # ids in name order
            prev = self.allocs.get(p["previous"]) if p["previous"] else lost.get(p["name"])
            index = int(p["name"].rsplit("[", 1)[1].rstrip("]"))
            placed.append((groups[p["group"]], index, prev, self.node_by_name(p["node_id"])))
        return plan, stops, inplace, placed

    def _decide_own(self, job: dict, *, dry_run: bool, eval_id: str = ""):
        """The stand-in's own engine (scheduler.py, jobspec.tasks_updated)."""
        plan = _Plan()
        live = self._live(job["ID"], job["Namespace"])
        groups = {g["Name"]: g for g in job.get("TaskGroups") or []}
        stops: list[tuple[Alloc, str]] = []
        places: list[tuple[dict, int, Alloc | None]] = []
        inplace: list[Alloc] = []
        for a in live:
            if job.get("Stop") or a.group not in groups:
                stops.append((a, "alloc not needed due to job update"))
                plan.desired.setdefault(a.group, _desired())["Stop"] += 1
        if not job.get("Stop"):
            for name, group in groups.items():
                want = plan.desired.setdefault(name, _desired())
                mine = [a for a in live if a.group == name]
                count = int(group.get("Count") or 0)
                if job["Type"] == "system":
                    count = len(mine)  # system jobs: one per feasible node, placed below
                for a in mine[count:]:
                    stops.append((a, "alloc not needed due to job update"))
                    want["Stop"] += 1
                mine = mine[:count]
                destructive: list[Alloc] = []
                for a in mine:
                    if a.migrate:  # its node drains: stop it, place a replacement elsewhere
                        places.append((group, a.index, a))
                        want["Migrate"] += 1
                    elif not jobspec.spec_changed(a.job, job):
                        want["Ignore"] += 1
                    elif jobspec.tasks_updated(a.job, job, name) or not self._fits_in_place(
                        a, job, group
                    ):
                        destructive.append(a)
                    else:
                        inplace.append(a)
                        want["InPlaceUpdate"] += 1
                limit = len(destructive)
                if _deploys(job, name):
                    # New placements use max_parallel first, replacements get what is left
                    # (scheduler/reconcile.go computeReplacements, computeDestructiveUpdates).
                    room = self._update_room(job, name, mine, dry_run) - max(0, count - len(mine))
                    limit = min(limit, max(0, room))
                for a in destructive[:limit]:
                    places.append((group, a.index, a))
                    want["DestructiveUpdate"] += 1
                want["Ignore"] += len(destructive) - limit
                used = {a.index for a in mine}
                free = (i for i in range(10**6) if i not in used)
                lost = {
                    a.index: a
                    for a in self.allocs.values()
                    if a.job_id == job["ID"]
                    and a.group == name
                    and a.client == "lost"
                    and not a.next_alloc
                }
                for _ in range(count - len(mine)):
                    index = next(free)
                    places.append((group, index, lost.get(index)))
                    want["Place"] += 1
        # One placer per evaluation; the allocations this plan stops or replaces free their slots.
        stopping = {a.id for a, _ in stops} | {p.id for _, _, p in places if p is not None}
        placer = scheduler.Placer(
            job,
            self.nodes,
            [a.ref() for a in self._active.values() if not a.terminal],
            stopping,
            seed=f"{self.seed}-{eval_id or job['ID']}-{self.index}",
            updating=[a.ref() for a in inplace],
        )
        placed: list[tuple[dict, int, Alloc | None, dict]] = []
        placer.csi_volumes = self.csi_volumes
        for group, index, prev in places:
            node = placer.place(group, preferred=self._preferred_node(prev, group), index=index)
            if node is None:
                plan.queued[group["Name"]] = plan.queued.get(group["Name"], 0) + 1
                continue
            placed.append((group, index, prev, node))
        if job["Type"] == "system" and not job.get("Stop"):
            self._place_system(job, placer, placed, plan)
        plan.failed = placer.failed_allocs()
        for name in groups:
            plan.queued.setdefault(name, 0)
        return plan, stops, inplace, placed

    def _apply(self, job: dict, plan: _Plan, stops, inplace, placed, eval_id: str) -> _Plan:
        for a, why in stops:
            self._stop_alloc(a, why)
        dep = self._active_deployment(job)
        for a in inplace:
            a.job = job
            self._track_usage(a)
            self._touch(a)
            if a.group_started:  # the client re-syncs its services (tags, checks, ...)
                # An unchanged check (same ID) keeps its status across the re-sync.
                prior = self._check_statuses(a)
                self._deregister_services(a)
                self._register_services(a, tasks=False, prior=prior)
                for name, run in a.tasks.items():
                    if run.state == "running":
                        self._register_services(a, tasks=True, only=name, prior=prior)
            if dep is not None and _deploys(job, a.group):
                self._join_deployment(a, dep)
                dep["TaskGroups"][a.group]["PlacedAllocs"] += 1
        for group, index, prev, node in placed:
            if prev is not None and not prev.terminal:
                self._stop_alloc(
                    prev,
                    "alloc is being migrated"
                    if prev.migrate
                    else "alloc is being updated due to job update",
                )
            self._new_alloc(job, group, index, node, eval_id, prev, dep)
        return plan

    @staticmethod
    def _preferred_node(prev: Alloc | None, group: dict) -> dict | None:
        """A replacement with a sticky or migrating disk tries its previous node first, if that
        node is ready, eligible and not draining (scheduler/generic_sched.go findPreferredNode,
        structs.Node.Ready)."""
        if prev is None:
            return None
        disk = group.get("EphemeralDisk") or {}
        if not (disk.get("Sticky") or disk.get("Migrate")):
            return None
        node = prev.node
        if (
            node["Status"] != "ready"
            or node.get("DrainStrategy")
            or node.get("SchedulingEligibility", "eligible") != "eligible"
        ):
            return None
        return node

    def _fits_in_place(self, a: Alloc, job: dict, group: dict) -> bool:
        """Nomad only updates in place if the allocation's node is still feasible for it."""
        others = [x.ref() for x in self._active.values() if not x.terminal]
        probe = scheduler.Placer(job, [a.node], others, {a.id}, seed=a.id)
        return probe.place(group) is not None

    def _place_system(self, job, placer, placed, plan) -> None:
        for group in job.get("TaskGroups") or []:
            have = {
                a.node["ID"]
                for a in self._live(job["ID"], job["Namespace"])
                if a.group == group["Name"]
            }
            for node in self.nodes:
                if node["ID"] in have or node["Status"] != "ready":
                    continue
                if not scheduler.node_in_scope(node, job):
                    continue
                probe = scheduler.Placer(
                    job, [node], placer.allocs + placer.proposed, set(), seed=node["ID"]
                )
                if probe.place(group) is not None:
                    placer.proposed.extend(probe.proposed)
                    placed.append((group, 0, None, node))
                    plan.desired.setdefault(group["Name"], _desired())["Place"] += 1

    # -- allocations -------------------------------------------------------------------------------
    def _ports_for(self, node: dict, networks: list | None, used: set[int]) -> list[dict]:
        rng = self._port_rng.setdefault(
            node["ID"], random.Random(f"ports-{self.seed}-{node['ID']}")
        )
        taken = set(used) | set((self._node_totals.get(node["ID"]) or (0, 0, {}))[2])
        out = []
        for net in networks or []:
            for p in net.get("ReservedPorts") or []:
                out.append(
                    {
                        "Label": p["Label"],
                        "Value": p["Value"],
                        "To": p["Value"] if p.get("To") == -1 else p.get("To", 0),
                        "HostIP": node["HTTPAddr"].split(":")[0],
                    }
                )
                taken.add(p["Value"])
            for p in net.get("DynamicPorts") or []:
                value = rng.randint(20000, 32000)
                while value in taken:
                    value = rng.randint(20000, 32000)
                taken.add(value)
                out.append(
                    {
                        "Label": p["Label"],
                        "Value": value,
                        "To": value if p.get("To") == -1 else p.get("To", 0),
                        "HostIP": node["HTTPAddr"].split(":")[0],
                    }
                )
        used |= taken
        return out

    def _new_alloc(self, job, group, index, node, eval_id, prev, dep) -> Alloc:
        used: set[int] = set()
        ports = self._ports_for(node, group.get("Networks"), used)
        task_ports = {}
        for task in group.get("Tasks") or []:
            nets = (task.get("Resources") or {}).get("Networks")
            if nets:
                task_ports[task["Name"]] = self._ports_for(node, nets, used)
        now = time.time()
        a = Alloc(
            id=self.new_id(),
            eval_id=eval_id,
            name=f"{job['ID']}.{group['Name']}[{index}]",
            index=index,
            namespace=job["Namespace"],
            job_id=job["ID"],
            group=group["Name"],
            job=job,
            node=node,
            created=now,
            ports=ports,
            task_ports=task_ports,
            previous=prev.id if prev else "",
            start_at=time.monotonic() + self.start_delay,
        )
        self._touch(a)
        a.create_index = a.modify_index
        for task in group.get("Tasks") or []:
            run = TaskRun(task["Name"])
            run.event("Received", "Task received by client")
            a.tasks[task["Name"]] = run
        if prev is not None:
            prev.next_alloc = a.id
        a.data_id, a.data_origin, a.disk_id = self.data.attach(
            job=job,
            group=group,
            index=index,
            node=node,
            prev=prev,
            prev_node_down=prev is not None and prev.node["Status"] == "down",
        )
        self.allocs[a.id] = a
        self._job_allocs.setdefault((a.namespace, a.job_id), {})[a.id] = a
        self._active[a.id] = a
        self._track_usage(a)
        if dep is not None and _deploys(job, a.group):
            self._join_deployment(a, dep)
            dep["TaskGroups"][a.group]["PlacedAllocs"] += 1
        return a

    def _touch(self, a: Alloc) -> None:
        a.quiet = False  # (a stale entry in _watchers only wakes it once more)
        a.modify_index = self.bump()
        a.modify_time = time.time()

    def _stop_alloc(self, a: Alloc, why: str, client: str = "complete") -> None:
        a.desired = "stop"
        a.desired_description = why
        if a.client not in TERMINAL_CLIENT:
            a.client = client
            a.client_description = (
                "node is down" if client == "lost" else "All tasks have completed"
            )
            a.finished = time.time()
            for run in a.tasks.values():
                if run.state != "dead":
                    if run.state == "running":
                        run.event("Killing", "Sent interrupt")
                        run.event("Killed", "Task successfully killed")
                    run.state = "dead"
                    run.finished = a.finished
        self._deregister_services(a)
        self._track_usage(a)
        self._touch(a)

    def _settle(self, allocs: Iterable[Alloc] | None = None) -> None:
        """Play the clients: start due allocations, render templates, apply change_mode (of
        `allocs`, or of every allocation not yet terminal)."""
        now = time.monotonic()
        for a in list(self._active.values()) if allocs is None else list(allocs):
            if a.quiet:  # the tick's walk costs the allocations that have something to do
                continue
            if a.terminal:
                self._active.pop(a.id, None)
                continue
            if a.desired != "run" or a.node["Status"] != "ready":
                continue
            if not a.group_started:
                if now < a.start_at:
                    continue
                a.group_started = True  # group services register before the tasks start
                a.started = time.time()
                self._register_services(a, tasks=False)
            changed = False
            group = jobspec.group_of(a.job, a.group) or {}
            for task in group.get("Tasks") or []:
                run = a.tasks.get(task["Name"])
                if run is None:
                    continue
                if run.state == "pending":
                    changed |= self._start_task(a, task, run)
                elif run.state == "running":
                    changed |= self._watch_templates(a, task, run, now)
            status = "running" if any(r.state == "running" for r in a.tasks.values()) else "pending"
            if status != a.client:
                a.client = status
                a.client_description = (
                    "Tasks are running" if status == "running" else "No tasks have started"
                )
                changed = True
            if changed:
                self._touch(a)
            self._run_first_checks(a, now)
            if not a.check_due and a.tasks and all(r.state == "running" for r in a.tasks.values()):
                self._quieten(a, group)

    def _quieten(self, a: Alloc, group: dict) -> None:
        """Mark `a` quiet if its templates have nothing in flight, and file it under the
        Consul indexes they read (a template read again every tick keeps it awake)."""
        checks: list[tuple[str, tuple]] = []
        targets: set[tuple[str, str]] = set()
        for task in group.get("Tasks") or []:
            run = a.tasks.get(task["Name"])
            for i, tmpl in enumerate(task.get("Templates") or []):
                if run is None or i in run.due or i not in run.seen:
                    return
                if run.seen[i][0] is None or run.seen[i][1] != run.rendered.get(i):
                    return
                text = tmpl.get("EmbeddedTmpl") or ""
                read = consul_template._watch_targets(text)  # noqa: SLF001
                if read is None:
                    return
                targets.update(read)
                checks.append((text, run.seen[i][0][3]))
        if targets:
            targets.add(("nodes", ""))
            # Consul moves outside this lock: read the indexes of targets new to the snapshot
            # first, then require every template's to be still the ones it rendered from, so
            # that a move after the render wakes it at the next tick.
            first = self._watch_indexes([t for t in targets if t not in self._watch_seen])
            if any(consul_template.watch_index(text, self.consul) != was for text, was in checks):
                return
            self._watch_seen.update(first)
            for t in targets:
                self._watchers.setdefault(t, set()).add(a.id)
        a.watching = tuple(targets)
        a.quiet = True

    def _watch_indexes(self, targets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], object]:
        """The indexes `targets` name, as they are now."""
        consul = self.consul
        nodes = tuple(n.get("ModifyIndex") for n in self.nodes)
        out: dict[tuple[str, str], object] = {}
        for target in targets:
            kind, name = target
            if kind == "service":
                out[target] = consul.service_index(name, True)
            elif kind == "services":
                out[target] = consul._tables["services"]  # noqa: SLF001
            elif kind == "kv":
                out[target] = consul._kv.index  # noqa: SLF001
            else:
                out[target] = (consul._tables["nodes"], nodes)  # noqa: SLF001
        return out

    def _wake_watchers(self) -> None:
        """Wake the quiet allocations whose templates read an index that moved since the last
        tick: the next _settle looks at them again, as consul-template's blocking queries
        return when their index moves."""
        if not self._watchers:
            self._watch_seen = {}
            return
        now = self._watch_indexes(list(self._watchers))
        for target, index in now.items():
            if self._watch_seen.get(target, index) == index:
                continue
            for aid in self._watchers.pop(target, ()):
                a = self.allocs.get(aid)
                if a is not None and a.quiet:
                    a.quiet = False
                    for other in a.watching:
                        self._watchers.get(other, set()).discard(aid)
        self._watch_seen = now

    def _run_first_checks(self, a: Alloc, now: float) -> None:
        """A check's first run (Consul staggers it randomly within its interval) makes it
        passing; until then Consul keeps it critical."""
        for sid, due in list(a.check_due.items()):
            if now < due:
                continue
            del a.check_due[sid]
            if a.job_id not in self.never_healthy_jobs and self.consul is not None:
                try:
                    self.consul.set_service_health(sid, "passing")
                except KeyError:
                    pass

    def _fingerprint(self, a: Alloc, tmpl: dict, task: dict) -> str:
        # consul-template runs change_mode when the rendered text changes, not when the data it
        # read does (renderer.go compares the file's contents): render with gotmpl where it can,
        # else digest the data read (consul_template.py).
        text = tmpl.get("EmbeddedTmpl") or ""
        env = self.runtime_env(a, task)
        try:
            out = gotmpl.Renderer(taskview.fetcher(self, a, task["Name"]), env).render(text)
            return "rendered:" + out
        except consul_template.Blocked:
            raise  # waits for data, or denied: as consul-template
        except Exception:  # noqa: BLE001 - not renderable here (gotmpl.Unsupported...): the digest
            pass

        def variable(ref: str):
            path, ns = taskview.var_ref(ref, a.namespace)
            taskview.check_var(self, a, task["Name"], path, ns)  # workload identity (acl.py)
            var = self.variables.get((ns, path))
            return dict(var["Items"]) if var else None

        return consul_template.fingerprint(text, self.consul, a.node, variable, env)

    def _fingerprints(self, a: Alloc, task: dict) -> dict[int, str]:
        out = {}
        for i, tmpl in enumerate(task.get("Templates") or []):
            out[i] = self._fingerprint(a, tmpl, task)
        return out

    def _start_task(self, a: Alloc, task: dict, run: TaskRun) -> bool:
        """Templates render first (a missing `key` holds the task pending), then it runs."""
        try:
            rendered = self._fingerprints(a, task)
        except consul_template.Blocked as why:
            if run.blocked != str(why):
                run.blocked = str(why)
                run.event("Template", getattr(why, "event", f"Missing: {why}"))
                return True
            return False
        run.blocked = ""
        run.rendered = rendered
        run.state = "running"
        run.started = time.time()
        run.event("Task Setup", "Building Task Directory")
        run.event("Started", "Task started by client")
        self._register_services(a, tasks=True, only=task["Name"])
        return True

    def _watch_templates(self, a: Alloc, task: dict, run: TaskRun, now: float) -> bool:
        """consul-template: on a data change wait (quiescence) and splay, then change_mode."""
        tmpls = task.get("Templates") or []
        if not tmpls:
            return False
        changed = False
        for i, tmpl in enumerate(tmpls):
            # consul-template re-renders when a blocking query answers with a new index: while
            # every index the template reads is the same, so is its fingerprint.
            index = consul_template.watch_index(tmpl.get("EmbeddedTmpl") or "", self.consul)
            key = (
                None
                if index is None
                else (
                    a.job.get("JobModifyIndex"),
                    a.job.get("Version"),
                    a.node.get("ModifyIndex"),
                    index,
                )
            )
            if key is not None and key == (run.seen.get(i) or (None,))[0]:
                fp = run.seen[i][1]
            else:
                try:
                    fp = self._fingerprint(a, tmpl, task)
                except consul_template.Blocked:
                    fp = None
                run.seen[i] = (key, fp)
            if fp is None:
                continue  # consul-template keeps the last rendering while it waits
            if fp == run.rendered.get(i):
                run.due.pop(i, None)
                continue
            if i not in run.due:
                wait = (tmpl.get("Wait") or {}).get("Min") or 5 * SEC  # client default 5s
                splay = self._rng_splay.uniform(0, tmpl.get("Splay") or 0)
                run.due[i] = now + self.scaled(wait) + self.scaled(int(splay))
                continue
            if now < run.due[i]:
                continue
            del run.due[i]
            run.rendered[i] = fp
            mode = tmpl.get("ChangeMode") or "restart"
            if mode == "restart":
                run.restarts += 1
                run.last_restart = time.time()
                run.event("Restart Signaled", "Template with change_mode restart re-rendered")
                run.event("Terminated", "Exit Code: 0")
                run.event("Restarting", "Task restarting in 0s")
                run.event("Started", "Task started by client")
            elif mode == "signal":
                run.event(
                    "Signaling", "Template re-rendered", signal=tmpl.get("ChangeSignal") or ""
                )
            elif mode == "script":
                run.event(
                    "Template",
                    "Template ran script",
                    script=str((tmpl.get("ChangeScript") or {}).get("Command", "")),
                )
            changed = True
        return changed

    # -- Consul services ---------------------------------------------------------------------------
    def runtime_env(self, a: Alloc, task: dict | None) -> dict[str, str]:
        node = a.node
        group = jobspec.group_of(a.job, a.group) or {}
        env = {
            "NOMAD_ALLOC_ID": a.id,
            "NOMAD_SHORT_ALLOC_ID": a.id[:8],
            "NOMAD_ALLOC_NAME": a.name,
            "NOMAD_ALLOC_INDEX": str(a.index),
            "NOMAD_GROUP_NAME": a.group,
            "NOMAD_JOB_ID": a.job_id,
            "NOMAD_JOB_NAME": a.job.get("Name", a.job_id),
            "NOMAD_JOB_PARENT_ID": a.job.get("ParentID", ""),
            "NOMAD_NAMESPACE": a.namespace,
            "NOMAD_REGION": "global",
            "NOMAD_DC": node["Datacenter"],
            "node.unique.id": node["ID"],
            "node.unique.name": node["Name"],
            "node.datacenter": node["Datacenter"],
            "node.class": node.get("NodeClass", ""),
            "node.region": "global",
            "node.pool": node.get("NodePool", "default"),
        }
        for k, v in (node.get("Attributes") or {}).items():
            env[f"attr.{k}"] = v
        for k, v in (node.get("Meta") or {}).items():
            env[f"meta.{k}"] = v
        ports = list(a.ports)
        if task is not None:
            ports += a.task_ports.get(task["Name"], [])
            env["NOMAD_TASK_NAME"] = task["Name"]
            res = task.get("Resources") or {}
            env["NOMAD_CPU_LIMIT"] = str(res.get("CPU", 0))
            env["NOMAD_MEMORY_LIMIT"] = str(res.get("MemoryMB", 0))
            meta = jobspec.combined_meta(a.job, group, task)
        else:
            meta = {**(a.job.get("Meta") or {}), **(group.get("Meta") or {})}
        for k, v in meta.items():
            env[f"NOMAD_META_{k}"] = v
            env[f"NOMAD_META_{k.upper()}"] = v
        env.update(network.port_env(ports))  # as client/taskenv/env.go builds them
        if task is not None:
            for k, v in (task.get("Env") or {}).items():
                env.setdefault(k, jobspec.replace_env(v, env))
        return env

    def _service_specs(self, a: Alloc):
        group = jobspec.group_of(a.job, a.group) or {}
        for svc in group.get("Services") or []:
            yield svc, None, f"group-{a.group}"
        for task in group.get("Tasks") or []:
            for svc in task.get("Services") or []:
                yield svc, task, task["Name"]

    def _check_statuses(self, a: Alloc) -> dict[str, str]:
        statuses = getattr(self.consul, "check_statuses", None)
        if statuses is None:
            return {}
        out = {}
        for sid, _ in a.services:
            if sid not in a.check_due:
                out.update(statuses(sid))
        return out

    def _register_services(
        self, a: Alloc, *, tasks: bool, only: str | None = None, prior: dict[str, str] | None = None
    ) -> None:
        """Group services (tasks=False) or the services of task `only` (tasks=True)."""
        if self.consul is None:
            return
        ip = a.node["HTTPAddr"].split(":")[0]
        for svc, task, owner in self._service_specs(a):
            if (svc.get("Provider") or "consul") != "consul":
                continue
            if (task is not None) != tasks or (only is not None and owner != only):
                continue
            env = self.runtime_env(a, task)
            label = svc.get("PortLabel") or ""
            port = 0
            ports = a.ports + (a.task_ports.get(task["Name"], []) if task else [])
            for p in ports:
                if p["Label"] == label:
                    mode = svc.get("AddressMode") or "auto"
                    port = p["To"] if mode in ("alloc", "driver") and p.get("To") else p["Value"]
            if not port and label.isdigit():
                port = int(label)
            name = jobspec.replace_env(svc["Name"], env)
            sid = f"_nomad-task-{a.id}-{owner}-{name}-{label}"
            checks = svc.get("Checks") or []
            check_name = check_id = ""
            status = "passing"  # no check: the instance is as healthy as its node
            if checks:
                check_name = checks[0].get("Name") or f'service: "{name}" check'
                # command/agent/consul/service_client.go: MakeCheckID is "_nomad-check-" plus a
                # hash of the service ID and the check; the check has no initial status, so
                # Consul stores it critical until its first run (agent/checks/check.go staggers
                # that run randomly within the interval).
                check_id = (
                    "_nomad-check-"
                    + hashlib.sha1(
                        (sid + json.dumps(checks[0], sort_keys=True)).encode()
                    ).hexdigest()
                )
                status = (prior or {}).get(check_id, "")
                if not status:
                    status = "critical"
                    stagger = self._rng_checks.uniform(0, checks[0].get("Interval") or 10 * SEC)
                    a.check_due[sid] = time.monotonic() + self.scaled(int(stagger))
            if a.job_id in self.never_healthy_jobs:
                status = "critical"
            # The service's meta, then external-source = nomad over it: a job cannot hide
            # that Nomad registered it (command/agent/consul/service_client.go serviceRegs).
            meta = {k: jobspec.replace_env(v, env) for k, v in (svc.get("Meta") or {}).items()}
            meta["external-source"] = "nomad"
            self.consul.register_service(
                node=a.node["Name"],
                service_id=sid,
                name=name,
                address=ip,
                port=port,
                tags=[jobspec.replace_env(t, env) for t in svc.get("Tags") or []],
                meta=meta,
                check_status=status,
                check_name=check_name,
                check_id=check_id,
                through_agent=True,
            )
            a.services.append((sid, name))

    def _deregister_services(self, a: Alloc) -> None:
        if self.consul is None:
            a.services.clear()
            return
        for sid, _ in a.services:
            self.consul.deregister_service(sid)
        a.services.clear()
        a.check_due.clear()

    def _checks_passing(self, a: Alloc) -> bool:
        """All Consul checks of the allocation's services pass (the node's check too)."""
        if a.job_id in self.never_healthy_jobs:
            return False
        if self.consul is None:
            return True
        for sid, name in a.services:
            entries = [
                e for e in self.consul.check_service_nodes(name) if e["Service"]["ID"] == sid
            ]
            if not entries or not all(
                c["Status"] == "passing" for e in entries for c in e["Checks"]
            ):
                return False
        return True

    # -- deployments ---------------------------------------------------------------------------------
    def _active_deployment(self, job: dict) -> dict | None:
        for dep in self._job_deps.get((job["Namespace"], job["ID"]), ()):
            if dep["JobVersion"] == job["Version"] and dep["Status"] == "running":
                return dep
        return None

    def _new_deployment(self, rec: JobRecord) -> None:
        job = rec.job
        for dep in self._job_deps.get((job["Namespace"], job["ID"]), ()):
            if dep["Status"] == "running":
                self._end_deployment(dep, "cancelled", "Cancelled due to newer version of job")
        if job["Type"] != "service" or job.get("Stop"):
            return
        groups = {}
        now = time.time()
        for g in job.get("TaskGroups") or []:
            if not _deploys(job, g["Name"]):
                continue
            upd = g["Update"]
            groups[g["Name"]] = {
                "AutoRevert": upd["AutoRevert"],
                "AutoPromote": upd["AutoPromote"],
                "ProgressDeadline": upd["ProgressDeadline"],
                "RequireProgressBy": None,
                "Promoted": False,
                "PlacedCanaries": None,
                "DesiredCanaries": 0,
                "DesiredTotal": int(g.get("Count") or 0),
                "PlacedAllocs": 0,
                "HealthyAllocs": 0,
                "UnhealthyAllocs": 0,
            }
        if not groups or not any(tg["DesiredTotal"] for tg in groups.values()):
            return
        index = self.bump()
        dep = {
            "ID": self.new_id(),
            "Namespace": job["Namespace"],
            "JobID": job["ID"],
            "JobVersion": job["Version"],
            "JobModifyIndex": job["JobModifyIndex"],
            "JobSpecModifyIndex": job["JobModifyIndex"],
            "JobCreateIndex": job["CreateIndex"],
            "IsMultiregion": False,
            "TaskGroups": groups,
            "Status": "running",
            "StatusDescription": "Deployment is running",
            "EvalPriority": job["Priority"],
            "CreateIndex": index,
            "ModifyIndex": index,
            "CreateTime": int(now * SEC),
            "ModifyTime": int(now * SEC),
        }
        self._dep_clock[dep["ID"]] = {}
        mono = time.monotonic()
        for name, tg in groups.items():
            if tg["ProgressDeadline"]:
                deadline = mono + self.scaled(tg["ProgressDeadline"])
                self._dep_clock[dep["ID"]][name] = deadline
                tg["RequireProgressBy"] = rfc3339(now + (deadline - mono))
        self.deployments[dep["ID"]] = dep
        self._running_deps[dep["ID"]] = dep
        self._job_deps.setdefault((dep["Namespace"], dep["JobID"]), []).append(dep)

    def _join_deployment(self, a: Alloc, dep: dict) -> None:
        a.deployment_id = dep["ID"]
        a.healthy = None
        a.health_time = None
        a.passing_since = None
        a.health_from = time.monotonic()

    def _end_deployment(self, dep: dict, status: str, description: str) -> None:
        dep["Status"] = status
        self._running_deps.pop(dep["ID"], None)
        dep["StatusDescription"] = description
        dep["ModifyIndex"] = self.bump()
        dep["ModifyTime"] = time.time_ns()
        self._dep_clock.pop(dep["ID"], None)

    def tick(self) -> None:
        """Advance clients, health and deployments; called periodically by the StandIn."""
        with self.lock:
            if not self.workers:
                self._run_due_evals()
            self._wake_watchers()
            self._settle()
            mono = time.monotonic()
            for dep in list(self._running_deps.values()):
                if dep["Status"] != "running":
                    continue
                rec = self.jobs.get((dep["Namespace"], dep["JobID"]))
                if rec is None or rec.job["Version"] != dep["JobVersion"]:
                    continue
                self._judge_health(dep, rec.job, mono)
                if dep["Status"] != "running":
                    continue
                if all(
                    tg["HealthyAllocs"] >= tg["DesiredTotal"] for tg in dep["TaskGroups"].values()
                ):
                    self._end_deployment(dep, "successful", "Deployment completed successfully")
                    rec.job["Stable"] = True
                    rec.job["ModifyIndex"] = self.bump()
                    continue
                # Rolling update: place the next batch once the previous one is healthy.
                healthy = sum(tg["HealthyAllocs"] for tg in dep["TaskGroups"].values())
                if self._watched.get(dep["ID"]) == healthy:
                    continue
                self._watched[dep["ID"]] = healthy
                # Nomad's deployment watcher evaluates on health changes
                # (nomad/deploymentwatcher/deployment_watcher.go); here only when there is
                # work: replacements waiting, or placements an earlier evaluation could not make.
                if (dep["Namespace"], dep["JobID"]) not in self._evaluating and any(
                    self._pending_destructive(rec.job, g) or self._missing(rec.job, g)
                    for g in dep["TaskGroups"]
                ):
                    self._evaluate(rec, "deployment-watcher")

    def _pending_destructive(self, job: dict, group: str) -> bool:
        # In-place updates happen at once: what still runs an older spec waits for replacement
        # (whichever engine judged it destructive).
        for a in self._live(job["ID"], job["Namespace"]):
            if a.group == group and jobspec.spec_changed(a.job, job):
                return self._has_room(job, group)
        return False

    def _missing(self, job: dict, group: str) -> bool:
        want = int((jobspec.group_of(job, group) or {}).get("Count") or 0)
        return sum(1 for a in self._live(job["ID"], job["Namespace"]) if a.group == group) < want

    def _has_room(self, job: dict, group: str) -> bool:
        upd = (jobspec.group_of(job, group) or {}).get("Update") or {}
        in_flight = sum(
            1
            for a in self._live(job["ID"], job["Namespace"])
            if a.group == group
            and a.deployment_id
            and a.healthy is None
            and not jobspec.spec_changed(a.job, job)
        )
        return in_flight < int(upd.get("MaxParallel") or 0)

    def _judge_health(self, dep: dict, job: dict, mono: float) -> None:
        clocks = self._dep_clock.get(dep["ID"], {})
        for a in self._allocs_of(dep["Namespace"], dep["JobID"]):
            if a.deployment_id != dep["ID"] or a.healthy is not None:
                continue
            group = jobspec.group_of(job, a.group) or {}
            upd = group.get("Update") or {}
            tg = dep["TaskGroups"].get(a.group)
            if tg is None:
                continue
            mode = upd.get("HealthCheck") or "checks"
            if mode == "manual":
                continue
            ok = (
                not a.terminal
                and a.tasks
                and all(r.state == "running" for r in a.tasks.values())
                and (mode == "task_states" or self._checks_passing(a))
            )
            if ok:
                a.passing_since = a.passing_since or mono
                if mono - a.passing_since >= self.scaled(upd.get("MinHealthyTime")):
                    self._set_health(a, dep, True)
                    if a.group in clocks:
                        clocks[a.group] = mono + self.scaled(tg["ProgressDeadline"])
                        tg["RequireProgressBy"] = rfc3339(
                            time.time() + self.scaled(tg["ProgressDeadline"])
                        )
                    continue
            else:
                a.passing_since = None
            if a.terminal or mono - a.health_from >= self.scaled(upd.get("HealthyDeadline")):
                self._set_health(a, dep, False)
                if not tg["ProgressDeadline"]:
                    self._fail_deployment(dep, job, "Failed due to unhealthy allocations")
                    return
        for name, deadline in list(clocks.items()):
            tg = dep["TaskGroups"][name]
            if mono >= deadline and tg["HealthyAllocs"] < tg["DesiredTotal"]:
                self._fail_deployment(dep, job, "Failed due to progress deadline")
                return

    def _set_health(self, a: Alloc, dep: dict, healthy: bool) -> None:
        a.healthy = healthy
        a.health_time = time.time()
        self._touch(a)
        tg = dep["TaskGroups"][a.group]
        tg["HealthyAllocs" if healthy else "UnhealthyAllocs"] += 1
        dep["ModifyIndex"] = self.bump()

    def _fail_deployment(self, dep: dict, job: dict, why: str) -> None:
        rec = self.jobs[(job["Namespace"], job["ID"])]
        revert = any(tg["AutoRevert"] for tg in dep["TaskGroups"].values())
        target = None
        if revert:
            for old in reversed(rec.versions[:-1]):
                if old.get("Stable") and not old.get("Stop"):
                    target = old
                    break
            if target is None:
                why += " - no stable job version to auto revert to"
            else:
                why += f" - rolling back to job version {target['Version']}"
        self._end_deployment(dep, "failed", why)
        if target is not None:
            back = jobspec.spec(copy.deepcopy(target))
            self.register(back, triggered_by="rollback")

    # -- Nomad variables -----------------------------------------------------------------------------
    def var_put(
        self, path: str, items: dict, *, namespace: str = "default", cas: int | None = None
    ) -> tuple[int, dict]:
        """PUT /v1/var/:path. (200, variable) or (409, the conflicting variable)."""
        if not isinstance(items, dict) or not items:
            raise NomadError(400, "variable missing required Items object")
        problem = namespaces.var_path_error(path)  # nomad/structs/variables.go ValidatePath
        if problem:
            raise NomadError(400, problem)
        if not all(isinstance(v, str) for v in items.values()):
            raise NomadError(400, "Failed to parse request: items must be strings")
        with self.lock:
            key = (namespace, path)
            old = self.variables.get(key)
            if cas is not None and (old["ModifyIndex"] if old else 0) != cas:
                conflict = (
                    dict(old)
                    if old
                    else {"Namespace": namespace, "Path": path, "CreateIndex": 0, "ModifyIndex": 0}
                )
                return 409, conflict
            index = self.bump()
            now = time.time_ns()
            var = {
                "Namespace": namespace,
                "Path": path,
                "Items": dict(items),
                "CreateIndex": old["CreateIndex"] if old else index,
                "ModifyIndex": index,
                "CreateTime": old["CreateTime"] if old else now,
                "ModifyTime": now,
            }
            self.variables[key] = var
            return 200, dict(var)

    def var_delete(
        self, path: str, *, namespace: str = "default", cas: int | None = None
    ) -> tuple[int, dict | None]:
        with self.lock:
            old = self.variables.get((namespace, path))
            if cas is not None and (old["ModifyIndex"] if old else 0) != cas:
                return 409, dict(old) if old else None
            if old is not None:
                del self.variables[(namespace, path)]
                self.bump()
            return 200, None

    # -- read models ---------------------------------------------------------------------------------
    def job_status(self, job: dict) -> str:
        mine = self._allocs_of(job["Namespace"], job["ID"])
        if any(not a.terminal for a in mine):
            return "running"
        if job.get("Stop"):
            return "dead"
        if any(
            ev["Status"] in ("blocked", "pending")
            for ev in self._job_evals.get((job["Namespace"], job["ID"]), ())
        ):
            return "pending"
        return "dead" if mine else "pending"

    def job_view(self, rec: JobRecord) -> dict:
        job = copy.deepcopy(rec.job)
        job["Status"] = self.job_status(rec.job)
        return job

    def summary(self, rec: JobRecord) -> dict:
        job = rec.job
        groups = {
            g["Name"]: {
                "Queued": 0,
                "Complete": 0,
                "Failed": 0,
                "Running": 0,
                "Starting": 0,
                "Lost": 0,
                "Unknown": 0,
            }
            for g in job.get("TaskGroups") or []
        }
        for a in self._allocs_of(job["Namespace"], job["ID"]):
            s = groups.setdefault(
                a.group,
                {
                    "Queued": 0,
                    "Complete": 0,
                    "Failed": 0,
                    "Running": 0,
                    "Starting": 0,
                    "Lost": 0,
                    "Unknown": 0,
                },
            )
            key = {
                "pending": "Starting",
                "running": "Running",
                "complete": "Complete",
                "failed": "Failed",
                "lost": "Lost",
            }.get(a.client, "Unknown")
            s[key] += 1
        for ev in self._job_evals.get((job["Namespace"], job["ID"]), ()):
            if ev["Status"] == "blocked":
                prev = self.evals.get(ev["PreviousEval"]) or {}
                for g, n in (prev.get("QueuedAllocations") or {}).items():
                    if g in groups:
                        groups[g]["Queued"] = n
        return {
            "JobID": job["ID"],
            "Namespace": job["Namespace"],
            "Summary": groups,
            "Children": {"Pending": 0, "Running": 0, "Dead": 0},
            "CreateIndex": job["CreateIndex"],
            "ModifyIndex": self.index,
        }

    def job_stub(self, rec: JobRecord, meta: bool) -> dict:
        job = rec.job
        stub = {
            k: job.get(k)
            for k in (
                "ID",
                "ParentID",
                "Name",
                "Namespace",
                "Datacenters",
                "NodePool",
                "Multiregion",
                "Type",
                "Priority",
                "Stop",
                "StatusDescription",
                "CreateIndex",
                "ModifyIndex",
                "JobModifyIndex",
                "SubmitTime",
                "Version",
            )
        }
        stub["Periodic"] = job.get("Periodic") is not None
        stub["ParameterizedJob"] = job.get("ParameterizedJob") is not None
        stub["Status"] = self.job_status(job)
        stub["JobSummary"] = self.summary(rec)
        if meta:
            stub["Meta"] = job.get("Meta")
        return stub

    def alloc_view(
        self, a: Alloc, *, full: bool, resources: bool = False, task_states: bool = True
    ) -> dict:
        states = {}
        for name, run in a.tasks.items():
            states[name] = {
                "State": run.state,
                "Failed": a.client == "failed",
                "Restarts": run.restarts,
                "LastRestart": rfc3339(run.last_restart),
                "StartedAt": rfc3339(run.started),
                "FinishedAt": rfc3339(run.finished) if run.state == "dead" else None,
                "Events": [dict(e) for e in run.events],
            }
        dstatus = None
        if a.deployment_id:
            dstatus = {
                "Healthy": a.healthy,
                "Timestamp": rfc3339(a.health_time) or "0001-01-01T00:00:00Z",
                "Canary": False,
                "ModifyIndex": a.modify_index,
            }
        out = {
            "ID": a.id,
            "EvalID": a.eval_id,
            "Name": a.name,
            "Namespace": a.namespace,
            "NodeID": a.node["ID"],
            "NodeName": a.node["Name"],
            "JobID": a.job_id,
            "JobType": a.job["Type"],
            "JobVersion": a.job["Version"],
            "TaskGroup": a.group,
            "DesiredStatus": a.desired,
            "DesiredDescription": a.desired_description,
            "ClientStatus": a.client,
            "ClientDescription": a.client_description,
            "DesiredTransition": {
                "Migrate": True if a.migrate else None,
                "Reschedule": None,
                "ForceReschedule": None,
                "NoShutdownDelay": None,
            },
            "TaskStates": states if task_states else None,
            "DeploymentStatus": dstatus,
            "FollowupEvalID": "",
            "NextAllocation": a.next_alloc,
            "RescheduleTracker": None,
            "PreemptedAllocations": None,
            "PreemptedByAllocation": "",
            "CreateIndex": a.create_index,
            "ModifyIndex": a.modify_index,
            "CreateTime": int(a.created * SEC),
            "ModifyTime": int(a.modify_time * SEC),
        }
        if full or resources:
            out["AllocatedResources"] = self._allocated_resources(a)
        if full:
            out.update(
                Job=a.job,
                DeploymentID=a.deployment_id,
                PreviousAllocation=a.previous,
                AllocModifyIndex=a.modify_index,
                Metrics=None,
                Resources=None,
                SharedResources=None,
                TaskResources=None,
                NetworkStatus=None,
            )
        return out

    def _allocated_resources(self, a: Alloc) -> dict:
        group = jobspec.group_of(a.job, a.group) or {}
        ip = a.node["HTTPAddr"].split(":")[0]
        nets = []
        for net in group.get("Networks") or []:
            labels = {
                p["Label"]
                for p in (net.get("DynamicPorts") or []) + (net.get("ReservedPorts") or [])
            }
            mine = [p for p in a.ports if p["Label"] in labels]
            nets.append(
                {
                    "Mode": net.get("Mode") or "host",
                    "Device": "",
                    "CIDR": "",
                    "IP": ip,
                    "MBits": net.get("MBits") or 0,
                    "DNS": net.get("DNS"),
                    "ReservedPorts": [
                        {
                            "Label": p["Label"],
                            "Value": p["Value"],
                            "To": p["To"],
                            "HostNetwork": "default",
                        }
                        for p in mine
                        if p["Label"] in {r["Label"] for r in net.get("ReservedPorts") or []}
                    ]
                    or None,
                    "DynamicPorts": [
                        {
                            "Label": p["Label"],
                            "Value": p["Value"],
                            "To": p["To"],
                            "HostNetwork": "default",
                        }
                        for p in mine
                        if p["Label"] in {d["Label"] for d in net.get("DynamicPorts") or []}
                    ]
                    or None,
                }
            )
        tasks = {}
        for t in group.get("Tasks") or []:
            res = t.get("Resources") or {}
            tnets = []
            if a.task_ports.get(t["Name"]):
                tnets = [
                    {
                        "Mode": "host",
                        "IP": ip,
                        "Device": "",
                        "CIDR": "",
                        "MBits": 0,
                        "DynamicPorts": [
                            {
                                "Label": p["Label"],
                                "Value": p["Value"],
                                "To": p["To"],
                                "HostNetwork": "default",
                            }
                            for p in a.task_ports[t["Name"]]
                        ],
                        "ReservedPorts": None,
                    }
                ]
            tasks[t["Name"]] = {
                "Cpu": {"CpuShares": res.get("CPU", 0), "ReservedCores": None},
                "Memory": {
                    "MemoryMB": res.get("MemoryMB", 0),
                    "MemoryMaxMB": res.get("MemoryMaxMB", 0),
                },
                "Networks": tnets or None,
                "Devices": None,
            }
        return {
            "Tasks": tasks,
            "TaskLifecycles": None,
            "Shared": {
                "DiskMB": (group.get("EphemeralDisk") or {}).get("SizeMB", 0),
                "Networks": nets or None,
                "Ports": [dict(p) for p in a.ports] or None,
            },
        }

    def node_stub(self, node: dict, *, resources=False, os_attr=False) -> dict:
        stub = {
            k: node[k]
            for k in (
                "Address",
                "ID",
                "Datacenter",
                "Name",
                "NodeClass",
                "NodePool",
                "Version",
                "Drain",
                "SchedulingEligibility",
                "Status",
                "StatusDescription",
                "Drivers",
                "HostVolumes",
                "LastDrain",
                "CreateIndex",
                "ModifyIndex",
            )
        }
        if os_attr:
            stub["Attributes"] = {"os.name": node["Attributes"]["os.name"]}
        if resources:
            stub["NodeResources"] = node["NodeResources"]
            stub["ReservedResources"] = node["ReservedResources"]
        return stub


_STALE = object()  # a plan made with the lock released that no longer applies


@dataclass
class _Plan:
    desired: dict[str, dict] = field(default_factory=dict)
    failed: dict | None = None
    queued: dict[str, int] = field(default_factory=dict)
    engine: str = "standin"  # or "nomad-sched": whose rules decided


def _desired() -> dict:
    return {
        "Ignore": 0,
        "Place": 0,
        "Migrate": 0,
        "Stop": 0,
        "InPlaceUpdate": 0,
        "DestructiveUpdate": 0,
        "Canary": 0,
        "Preemptions": 0,
    }


def _deploys(job: dict, group: str) -> bool:
    upd = (jobspec.group_of(job, group) or {}).get("Update") or {}
    return job["Type"] == "service" and int(upd.get("MaxParallel") or 0) > 0


def _node(node_id: str, name: str, zone: str, addr: str, index: int) -> dict:
    now = time.time_ns()
    driver = {
        "Attributes": None,
        "Detected": True,
        "Healthy": True,
        "HealthDescription": "Healthy",
        "UpdateTime": rfc3339(now / SEC),
    }
    return {
        "ID": node_id,
        "SecretID": "",
        "Datacenter": zone,
        "Name": name,
        "HTTPAddr": f"{addr}:4646",
        "Address": addr,
        "TLSEnabled": False,
        "Attributes": {
            "kernel.name": "linux",
            "os.name": "ubuntu",
            "os.version": "22.04",
            "cpu.arch": "amd64",
            "cpu.numcores": "4",
            "cpu.totalcompute": "4000",
            "memory.totalbytes": str(8192 * 1024 * 1024),
            "unique.hostname": name,
            "unique.network.ip-address": addr,
            "driver.docker": "1",
            "driver.docker.version": "24.0.7",
            "driver.exec": "1",
            "nomad.version": NOMAD_VERSION,
            "nomad.advertise.address": f"{addr}:4646",
            "consul.datacenter": "dc1",
            "consul.version": "1.20.1",
            "os.signals": "SIGHUP,SIGINT,SIGQUIT,SIGKILL,SIGTERM,SIGUSR1,SIGUSR2",
        },
        "NodeResources": {
            "Cpu": {"CpuShares": 4000, "TotalCpuCores": 4, "ReservableCpuCores": [0, 1, 2, 3]},
            "Memory": {"MemoryMB": 8192},
            "Disk": {"DiskMB": 100_000},
            "Networks": [
                {"Mode": "host", "Device": "lo", "CIDR": f"{addr}/32", "IP": addr, "MBits": 1000},
                {"Mode": "bridge", "Device": "", "CIDR": "", "IP": "", "MBits": 0},
            ],
            "NodeNetworks": None,
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": 0},
            "Memory": {"MemoryMB": 0},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": ""},
        },
        "Links": {"consul": f"dc1.{name}"},
        "Meta": {"zone": zone},
        "NodeClass": "",
        "NodePool": "default",
        "ComputedClass": "v1:standin",
        "Drain": False,
        "DrainStrategy": None,
        "SchedulingEligibility": "eligible",
        "Status": "ready",
        "StatusDescription": "",
        "StatusUpdatedAt": now // SEC,
        "Events": [
            {
                "Message": "Node registered",
                "Subsystem": "Cluster",
                "Details": None,
                "Timestamp": rfc3339(now / SEC),
                "CreateIndex": 0,
            }
        ],
        "Drivers": {"docker": dict(driver), "exec": dict(driver)},
        "HostVolumes": None,
        "HostNetworks": None,
        "CSIControllerPlugins": None,
        "CSINodePlugins": None,
        "LastDrain": None,
        "Version": NOMAD_VERSION,
        "CreateIndex": index,
        "ModifyIndex": index,
    }


# =================================================================================================
# HTTP
# =================================================================================================
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    total, pos = 0.0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise ValueError(text)
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(text)
    return total


def _filter(items: list[dict], expr: str | None) -> list[dict]:
    """A small subset of Nomad's filter expressions (go-bexpr): `A.B == "x"`, `!=`, joined by
    `and`, alternatives joined by `or` (`and` binds tighter, as in bexpr's grammar)."""
    if not expr:
        return items
    alternatives = []
    for alt in re.split(r"\s+or\s+", expr.strip()):
        clauses = []
        for part in re.split(r"\s+and\s+", alt.strip()):
            m = re.match(r'^\s*([\w.]+)\s*(==|!=)\s*"([^"]*)"\s*$', part)
            if not m:
                raise NomadError(400, f"failed to read filter expression: {expr}")
            clauses.append(m.groups())
        alternatives.append(clauses)

    def value(item, path):
        for key in path.split("."):
            item = item.get(key) if isinstance(item, dict) else None
        return "" if item is None else str(item).lower() if isinstance(item, bool) else str(item)

    return [
        i
        for i in items
        if any(
            all((value(i, p) == v) == (op == "==") for p, op, v in clauses)
            for clauses in alternatives
        )
    ]


def make_handler(
    state: NomadState, *, hook=None, acl_token: str | None = None, control=None
) -> type[BaseHTTPRequestHandler]:
    """Build the Nomad HTTP handler class for `state`. `hook(handler, "nomad")` may answer first;
    `control(handler, method, path, query, body)` serves /_standin/ (no ACL, no faults)."""

    if acl_token is not None and not state.acl.enabled:
        state.acl.enable(acl_token)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Nomad"
        sys_version = ""

        def log_message(self, fmt, *args):  # keep test output quiet
            log.debug("%s - %s", self.address_string(), fmt % args)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_PUT(self):
            self._serve("PUT")

        def do_DELETE(self):
            self._serve("DELETE")

        # -- plumbing ----------------------------------------------------------------------
        def _send(self, status: int, body, *, index: int | None = None, text=False) -> None:
            if text:
                data = str(body).encode()
                ctype = "text/plain; charset=utf-8"
            else:
                data = json.dumps(body).encode()
                ctype = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if index is not None:
                self.send_header("X-Nomad-Index", str(index))
                self.send_header("X-Nomad-KnownLeader", "true")
                self.send_header("X-Nomad-LastContact", "0")
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if path.startswith("/_standin/") and control is not None:
                body = self._body()
                status, payload = control(self, method, path, query, body)
                self._send(status, payload)
                return
            if hook is not None and hook(self, "nomad"):
                return
            body = self._body()
            try:
                # Per-capability ACLs (dev/standin/nomad_standin/acl.py); None when ACLs are off.
                secret = self.headers.get("X-Nomad-Token") or ""
                auth = self.headers.get("Authorization") or ""
                if not secret and auth.lower().startswith("bearer "):
                    secret = auth[7:].strip()
                parts = [p for p in path.split("/") if p][1:] if path.startswith("/v1/") else []
                acl = state.acl.resolve(secret) if parts and parts[0] != "status" else None
                if acl is not None:
                    acl_mod.check(state, acl, method, parts, query.get("namespace"), body)
                if parts and parts[0] == "acl":
                    result = acl_mod.route(state, acl, method, parts[1:], secret, body)
                else:
                    result = route(method, path, query, body)
                if result is None:
                    log.warning("stand-in has no route for %s %s", method, self.path)
                    self._send(501, f"standin: {method} {path} is not implemented", text=True)
                    return
                status, payload, index = result
                payload = acl_mod.filter_payload(acl, parts, query.get("namespace"), payload)
                self._send(status, payload, index=index)
            except NomadError as exc:
                self._send(exc.status, exc.text, text=True)
            except Exception:
                log.exception("stand-in error on %s %s", method, self.path)
                self._send(500, traceback.format_exc(), text=True)

    def route(method, path, query, body):
        parts = [p for p in path.split("/") if p][1:] if path.startswith("/v1/") else None
        if not parts:
            return None
        rest = "/".join(parts)
        for rx, handler in _NOMAD_ROUTES:
            m = rx.fullmatch(rest)
            if m:
                return handler(_Request(state, method, query, body, m.groups()))
        return None

    return Handler


# --------------------------------------------------------------------------- routes
# One function per endpoint, found by _NOMAD_ROUTES (path after /v1/, segments joined by "/",
# empty segments dropped). Each answers (status, payload, index), or None: not implemented (501).
# The method checks stay in each function: Nomad answers 405 "Invalid method" on some
# endpoints and nothing on others (command/agent/http.go registers per path, not per method).

_Result = tuple[int, Any, int | None] | None


class _Request:
    __slots__ = ("state", "method", "query", "body", "args", "ns")

    def __init__(
        self, state: NomadState, method: str, query: dict, body: bytes, args: tuple[str, ...]
    ) -> None:
        self.state, self.method, self.query, self.body, self.args = state, method, query, body, args
        self.ns = query.get("namespace") or None

    def in_ns(self, obj_ns: str) -> bool:
        """List endpoints: the request's namespace (default when absent), `*` for all."""
        return self.ns == "*" or obj_ns == (self.ns or "default")

    def prefix(self) -> str:
        return self.query.get("prefix", "")

    def flag(self, name: str) -> bool:
        return _truthy(self.query.get(name)) and name in self.query

    def read(self, payload_fn: Callable[[], Any]) -> _Result:
        if self.method != "GET":
            raise NomadError(405, "Invalid method")
        _wait_index(self.state, self.query)
        with self.state.lock:  # copy under the lock: the ticker mutates live records
            return 200, copy.deepcopy(payload_fn()), self.state.index


def _decode(body: bytes) -> dict:
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise NomadError(400, f"Failed to decode request body: {exc}") from exc
    if not isinstance(data, dict):
        raise NomadError(400, "Request body must be a JSON object")
    return data


MAX_QUERY_TIME = 300.0  # nomad/structs/structs.go MaxBlockingRPCQueryTime (and the default)
_JITTER = random.Random("blocking-jitter")


def _wait_index(state: NomadState, query: dict) -> None:
    """Blocking query: hold until the index passes ?index= or ?wait= elapses.

    As Nomad: command/agent/http.go parseWait answers 400 "Invalid wait time" / "Invalid
    index"; index 0 does not block; nomad/rpc.go blockingRPC caps wait at 300s (also the
    default) and adds up to wait/16 of jitter. One index for all tables here: a query wakes
    on any change (Nomad wakes on its table's), which only costs the client an extra read."""
    try:
        wait = parse_duration(query["wait"]) if query.get("wait") else MAX_QUERY_TIME
    except ValueError as exc:
        raise NomadError(400, "Invalid wait time") from exc
    raw = query.get("index") or ""
    if not raw:
        return
    if not raw.isdigit():
        raise NomadError(400, "Invalid index")
    target = int(raw)
    if target == 0:
        return
    wait = min(wait, MAX_QUERY_TIME)
    wait += _JITTER.uniform(0, wait / 16)
    deadline = time.monotonic() + wait
    with state.changed:
        while state.index <= target:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            state.changed.wait(min(left, 0.25))


def _register(state: NomadState, data: dict, job_id: str | None, ns: str | None) -> _Result:
    job = data.get("Job")
    if not isinstance(job, dict):
        raise NomadError(400, "Job must be specified")
    if not job.get("ID"):
        raise NomadError(400, "Job ID hasn't been provided")
    if job_id is not None and job["ID"] != job_id:
        raise NomadError(400, "Job ID does not match name")
    ns = ns or data.get("Namespace") or None
    out = state.register(
        job,
        enforce=bool(data.get("EnforceIndex")),
        modify_index=int(data.get("JobModifyIndex") or 0),
        namespace=ns,
    )
    return 200, out, None


# -- jobs -----------------------------------------------------------------------------------


def _r_jobs(r: _Request) -> _Result:
    state = r.state
    if r.method == "GET":

        def jobs():
            out = [
                state.job_stub(rec, r.flag("meta"))
                for (jns, jid), rec in state.jobs.items()
                if r.in_ns(jns) and jid.startswith(r.prefix())
            ]
            return _filter(sorted(out, key=lambda s: s["ID"]), r.query.get("filter"))

        return r.read(jobs)
    if r.method in ("POST", "PUT"):
        return _register(state, _decode(r.body), None, r.ns)
    raise NomadError(405, "Invalid method")


def _r_job(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args
    if r.method == "GET":
        return r.read(lambda: state.job_view(state._record(job_id, r.ns)))
    if r.method in ("POST", "PUT"):
        return _register(state, _decode(r.body), job_id, r.ns)
    if r.method == "DELETE":
        with state.lock:
            out = state.deregister(job_id, purge=r.flag("purge"), namespace=r.ns)
        return 200, out, None
    raise NomadError(405, "Invalid method")


def _r_job_plan(r: _Request) -> _Result:
    (job_id,) = r.args
    if r.method not in ("POST", "PUT"):
        raise NomadError(405, "Invalid method")
    data = _decode(r.body)
    job = data.get("Job")
    if not isinstance(job, dict):
        raise NomadError(400, "Job must be specified")
    if not job.get("ID"):
        raise NomadError(400, "Job ID hasn't been provided")
    if job.get("ID") != job_id:
        raise NomadError(400, "Job ID does not match")
    return 200, r.state.plan(job, diff=bool(data.get("Diff")), namespace=r.ns), None


def _r_job_versions(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args

    def versions():
        rec = state._record(job_id, r.ns)
        return {"Versions": [copy.deepcopy(v) for v in reversed(rec.versions)], "Diffs": None}

    return r.read(versions)


def _r_job_allocations(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args

    def allocs():
        # nomad/job_endpoint.go Allocations reads the allocations by job ID without looking
        # the job up: a purged job's are listed (until garbage collection), never a 404.
        return [
            state.alloc_view(a, full=False) for a in state._allocs_of(r.ns or "default", job_id)
        ]

    return r.read(allocs)


def _r_job_evaluations(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args

    def evals():
        jns = state._record(job_id, r.ns).job["Namespace"]
        return list(state._job_evals.get((jns, job_id), ()))

    return r.read(evals)


def _job_deployments_of(r: _Request) -> list[dict]:
    state, (job_id,) = r.state, r.args
    jns = state._record(job_id, r.ns).job["Namespace"]
    return list(state._job_deps.get((jns, job_id), ()))


def _r_job_deployments(r: _Request) -> _Result:
    return r.read(lambda: sorted(_job_deployments_of(r), key=lambda d: -d["CreateIndex"]))


def _r_job_deployment(r: _Request) -> _Result:
    def latest():
        deps = _job_deployments_of(r)
        return max(deps, key=lambda d: d["CreateIndex"]) if deps else None

    return r.read(latest)


def _r_job_summary(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args
    return r.read(lambda: state.summary(state._record(job_id, r.ns)))


def _r_job_evaluate(r: _Request) -> _Result:
    state, (job_id,) = r.state, r.args
    if r.method not in ("POST", "PUT"):
        return None
    with state.lock:
        rec = state._record(job_id, r.ns)
        ev = state._evaluate(rec, "job-register")
    return (
        200,
        {
            "EvalID": ev["ID"],
            "EvalCreateIndex": ev["CreateIndex"],
            "JobModifyIndex": rec.job["JobModifyIndex"],
        },
        None,
    )


# -- allocations, evaluations, deployments ----------------------------------------------------


def _r_allocations(r: _Request) -> _Result:
    state = r.state

    def allocs():
        out = [
            state.alloc_view(
                a,
                full=False,
                resources=r.flag("resources"),
                task_states=not ("task_states" in r.query and not _truthy(r.query["task_states"])),
            )
            for a in state.allocs.values()
            if r.in_ns(a.namespace) and a.id.startswith(r.prefix())
        ]
        return _filter(sorted(out, key=lambda x: x["CreateIndex"]), r.query.get("filter"))

    return r.read(allocs)


def _r_allocation(r: _Request) -> _Result:
    return r.read(
        lambda: r.state.alloc_view(_lookup(r.state.allocs, r.args[0], "alloc not found"), full=True)
    )


def _by_ids(table: dict[str, dict], expr: str | None):
    """The rows a filter of only `ID == "..."` alternatives names, looked up (Nomad's state
    store walks its ID index); None for any other filter."""
    ids = re.fullmatch(r'\s*ID == "([^"]*)"(?:\s+or\s+ID == "[^"]*")*\s*', expr or "")
    if not ids:
        return None
    found = (table.get(i) for i in re.findall(r'ID == "([^"]*)"', expr or ""))
    return sorted((row for row in found if row is not None), key=lambda row: row["ID"])


def _r_evaluations(r: _Request) -> _Result:
    def evals():
        rows = _by_ids(r.state.evals, r.query.get("filter"))
        if rows is None:
            rows = _filter(list(r.state.evals.values()), r.query.get("filter"))
        return [e for e in rows if r.in_ns(e["Namespace"]) and e["ID"].startswith(r.prefix())]

    return r.read(evals)


def _r_evaluation(r: _Request) -> _Result:
    return r.read(lambda: _lookup(r.state.evals, r.args[0], "eval not found"))


def _r_evaluation_allocations(r: _Request) -> _Result:
    return r.read(
        lambda: [
            r.state.alloc_view(a, full=False)
            for a in r.state.allocs.values()
            if a.eval_id == r.args[0]
        ]
    )


def _r_deployments(r: _Request) -> _Result:
    def deployments():
        rows = _by_ids(r.state.deployments, r.query.get("filter"))
        if rows is None:
            rows = _filter(list(r.state.deployments.values()), r.query.get("filter"))
        return sorted(
            (d for d in rows if r.in_ns(d["Namespace"]) and d["ID"].startswith(r.prefix())),
            key=lambda d: -d["CreateIndex"],
        )

    return r.read(deployments)


def _r_deployment(r: _Request) -> _Result:
    return r.read(lambda: _lookup(r.state.deployments, r.args[0], "deployment not found"))


def _r_deployment_allocations(r: _Request) -> _Result:
    return r.read(
        lambda: [
            r.state.alloc_view(a, full=False)
            for a in r.state.allocs.values()
            if a.deployment_id == r.args[0]
        ]
    )


# -- nodes --------------------------------------------------------------------------------------


def _r_nodes(r: _Request) -> _Result:
    return r.read(
        lambda: _filter(
            [
                r.state.node_stub(n, resources=r.flag("resources"), os_attr=r.flag("os"))
                for n in r.state.nodes
                if n["ID"].startswith(r.prefix())
            ],
            r.query.get("filter"),
        )
    )


def _r_node(r: _Request) -> _Result:
    def node():
        for n in r.state.nodes:
            if n["ID"] == r.args[0]:
                return copy.deepcopy(n)
        raise NomadError(404, "node not found")

    return r.read(node)


def _r_node_allocations(r: _Request) -> _Result:
    return r.read(
        lambda: [
            r.state.alloc_view(a, full=True)
            for a in r.state.allocs.values()
            if a.node["ID"] == r.args[0]
        ]
    )


def _r_node_pools(r: _Request) -> _Result:
    return r.read(
        lambda: [
            {
                "Name": "all",
                "Description": "Node pool with all nodes in the cluster.",
                "Meta": None,
                "SchedulerConfiguration": None,
                "CreateIndex": 1,
                "ModifyIndex": 1,
            },
            {
                "Name": "default",
                "Description": "Default node pool.",
                "Meta": None,
                "SchedulerConfiguration": None,
                "CreateIndex": 1,
                "ModifyIndex": 1,
            },
        ]
    )


# -- namespaces, variables ------------------------------------------------------------------------


def _r_namespaces(r: _Request) -> _Result:
    return r.read(
        lambda: [
            r.state.namespaces[n] for n in sorted(r.state.namespaces) if n.startswith(r.prefix())
        ]
    )


def _r_namespace(r: _Request) -> _Result:
    state, (name,) = r.state, r.args
    if r.method == "GET":

        def one():
            if name not in state.namespaces:
                raise NomadError(404, "Namespace not found")
            return state.namespaces[name]

        return r.read(one)
    if r.method in ("PUT", "POST"):
        namespaces.upsert(state, _decode(r.body), name)
        return 200, None, state.index
    if r.method == "DELETE":
        namespaces.delete(state, name)
        return 200, None, state.index
    raise NomadError(405, "Invalid method")


def _r_namespace_create(r: _Request) -> _Result:
    if r.method not in ("PUT", "POST"):
        return None
    namespaces.upsert(r.state, _decode(r.body), None)
    return 200, None, r.state.index


def _r_vars(r: _Request) -> _Result:
    return r.read(
        lambda: [
            {k: v for k, v in var.items() if k != "Items"}
            for (vns, path), var in sorted(r.state.variables.items())
            if (r.ns == "*" or vns == (r.ns or "default")) and path.startswith(r.prefix())
        ]
    )


def _r_var(r: _Request) -> _Result:
    state, (path,) = r.state, r.args
    vns = r.ns or "default"
    cas = int(r.query["cas"]) if r.query.get("cas", "").isdigit() else None
    if r.method == "GET":

        def one_var():
            var = state.variables.get((vns, path))
            if var is None:
                raise NomadError(404, "variable not found")
            return var

        return r.read(one_var)
    if r.method in ("PUT", "POST"):
        data = _decode(r.body)
        # The body's Namespace wins over ?namespace= (nomad/variables_endpoint.go Apply);
        # python-nomad sends no ?namespace= on /v1/var at all.
        vns = data.get("Namespace") or vns
        if vns == "*":
            raise NomadError(400, 'can not target wildcard ("*")namespace')
        return (*state.var_put(path, data.get("Items"), namespace=vns, cas=cas), None)
    if r.method == "DELETE":
        return (*state.var_delete(path, namespace=vns, cas=cas), None)
    raise NomadError(405, "Invalid method")


# -- agent, status, validation -----------------------------------------------------------------


def _r_agent_self(r: _Request) -> _Result:
    state = r.state
    return r.read(
        lambda: {
            "config": {
                "Region": "global",
                "Datacenter": state.nodes[0]["Datacenter"] if state.nodes else "dc1",
                "NodeName": "standin",
                "Version": {
                    "Version": NOMAD_VERSION,
                    "VersionPrerelease": "",
                    "Revision": "standin",
                },
                "ACL": {"Enabled": state.acl.enabled},
            },
            "member": {
                "Name": "standin.global",
                "Addr": "127.0.0.1",
                "Port": 4648,
                "Status": "alive",
                "Tags": {"region": "global", "role": "nomad", "build": NOMAD_VERSION},
            },
            "stats": {"nomad": {"leader": "true", "server": "true"}},
        }
    )


def _r_validate_job(r: _Request) -> _Result:
    if r.method not in ("POST", "PUT"):
        raise NomadError(405, "Invalid method")
    job = _decode(r.body).get("Job")
    if not isinstance(job, dict):
        raise NomadError(400, "Job must be specified")
    text = _check_job(job)
    errors = [line[3:] for line in text.splitlines() if line.startswith("\t* ")]
    return (
        200,
        {
            "DriverConfigValidated": True,
            "ValidationErrors": errors or None,
            "Error": text,
            "Warnings": "",
        },
        None,
    )


_ID = r"([^/]+)"
_TAIL = r"(?:/.*)?"  # job/<id>/<what>/...: Nomad's job endpoint reads only <what>
_NOMAD_ROUTES: list[tuple[re.Pattern[str], Callable[[_Request], _Result]]] = [
    (re.compile(rx, re.DOTALL), fn)
    for rx, fn in [
        (r"jobs", _r_jobs),
        (rf"job/{_ID}", _r_job),
        (rf"job/{_ID}/plan", _r_job_plan),
        (rf"job/{_ID}/versions{_TAIL}", _r_job_versions),
        (rf"job/{_ID}/allocations{_TAIL}", _r_job_allocations),
        (rf"job/{_ID}/evaluations{_TAIL}", _r_job_evaluations),
        (rf"job/{_ID}/deployments{_TAIL}", _r_job_deployments),
        (rf"job/{_ID}/deployment{_TAIL}", _r_job_deployment),
        (rf"job/{_ID}/summary{_TAIL}", _r_job_summary),
        (rf"job/{_ID}/evaluate{_TAIL}", _r_job_evaluate),
        (r"allocations", _r_allocations),
        (rf"allocation/{_ID}", _r_allocation),
        (r"evaluations", _r_evaluations),
        (rf"evaluation/{_ID}", _r_evaluation),
        (rf"evaluation/{_ID}/allocations", _r_evaluation_allocations),
        (r"deployments", _r_deployments),
        (rf"deployment/{_ID}", _r_deployment),
        (rf"deployment/allocations/{_ID}", _r_deployment_allocations),
        (r"nodes", _r_nodes),
        (r"node/pools", _r_node_pools),
        (rf"node/{_ID}", _r_node),
        (rf"node/{_ID}/allocations", _r_node_allocations),
        (r"namespaces", _r_namespaces),
        (rf"namespace/{_ID}", _r_namespace),
        (r"namespace", _r_namespace_create),
        (r"status/leader", lambda r: r.read(lambda: "127.0.0.1:4647")),
        (r"status/peers", lambda r: r.read(lambda: ["127.0.0.1:4647"])),
        (r"regions", lambda r: r.read(lambda: ["global"])),
        (r"agent/self", _r_agent_self),
        (r"vars", _r_vars),
        (r"var/(.+)", _r_var),
        (r"validate/job", _r_validate_job),
    ]
]


def _lookup(table: dict, key: str, missing: str):
    """Single-object reads take the full ID, as Nomad's do (the CLI resolves prefixes)."""
    if key not in table:
        raise NomadError(404, missing)
    return table[key]
