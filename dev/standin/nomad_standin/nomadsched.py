"""Nomad's own scheduler for the stand-in's evaluations: `nomad-sched` (Nomad 1.5.8's scheduler).

`../shared/tools/nomad-sched/nomad-sched` (or `$NOMADGEN_SHARED/tools/...`) runs Nomad's real
reconciler, feasibility checks and bin-packing over an in-memory state store. For each
evaluation the stand-in sends it the nodes, the job and the job's live allocations, and takes
back what Nomad decides: which allocations are ignored, updated in place, replaced or stopped,
the node of every placement, and the failed placements with their AllocMetric. Where the
binary is absent (a user's clone), or `NOMADGEN_STANDIN_ENGINE=standin`, the stand-in uses its
own engine (`scheduler.py`, `jobspec.tasks_updated`). dev/README.md lists what is whose.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import jobspec

log = logging.getLogger("standin.nomad")
_REPO = Path(__file__).resolve().parents[3]  # dev/standin/nomad_standin/nomadsched.py
TOOL = Path("tools") / "nomad-sched" / "nomad-sched"


class SchedError(Exception):
    """nomad-sched refused the input or could not run."""


def binary() -> Path | None:
    """The nomad-sched binary to use, or None for the stand-in's own engine."""
    if os.environ.get("NOMADGEN_STANDIN_ENGINE", "").strip().lower() == "standin":
        return None
    base = os.environ.get("NOMADGEN_SHARED")
    path = (Path(base) if base else _REPO.parent / "shared") / TOOL
    return path if path.is_file() and os.access(path, os.X_OK) else None


@dataclass
class LiveAlloc:
    """What the scheduler is told about one of the job's live allocations."""

    id: str
    name: str
    group: str
    node_id: str
    client_status: str  # pending | running
    job: dict  # the job version it runs (stand-in's stored form)
    migrate: bool = False  # DesiredTransition.Migrate: its node drains


@dataclass
class Decision:
    """Nomad's answer for one evaluation of one job."""

    desired: dict[str, dict] = field(default_factory=dict)  # DesiredTGUpdates
    place: list[dict] = field(default_factory=list)  # {group, name, node_id, previous}
    inplace: list[str] = field(default_factory=list)  # alloc ids updated in place
    stop: list[tuple[str, str]] = field(default_factory=list)  # (alloc id, description)
    failed: dict | None = None  # FailedTGAllocs
    queued: dict[str, int] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)  # nomad-sched's whole output


def node_input(
    node: dict, reserved_cpu: int = 0, reserved_mem: int = 0, reserved_ports: set[int] | None = None
) -> dict:
    """A stand-in node as structs.Node; other jobs' usage goes in as node reservations."""
    res = node.get("NodeResources") or {}
    ip = node.get("Address") or node["HTTPAddr"].split(":")[0]
    networks = []
    for net in res.get("Networks") or []:
        entry = {
            "Mode": net.get("Mode") or "host",
            "Device": net.get("Device", ""),
            "CIDR": net.get("CIDR", ""),
            "IP": net.get("IP", ""),
            "MBits": net.get("MBits", 0),
        }
        networks.append(entry)
    return {
        "ID": node["ID"],
        "Name": node["Name"],
        "Datacenter": node["Datacenter"],
        "NodeClass": node.get("NodeClass", ""),
        "Meta": node.get("Meta") or {},
        "Attributes": dict(node.get("Attributes") or {}),
        "Drivers": {
            name: {"Detected": bool(d.get("Detected")), "Healthy": bool(d.get("Healthy"))}
            for name, d in (node.get("Drivers") or {}).items()
        },
        "Status": node.get("Status", "ready"),
        "SchedulingEligibility": node.get("SchedulingEligibility", "eligible"),
        # A draining node is tainted, so allocations marked to migrate move (reconcile.go).
        "DrainStrategy": {"Deadline": 3600 * 10**9, "IgnoreSystemJobs": False}
        if node.get("DrainStrategy")
        else None,
        "HostVolumes": {
            name: {"Name": name, "Path": v.get("Path", ""), "ReadOnly": bool(v.get("ReadOnly"))}
            for name, v in (node.get("HostVolumes") or {}).items()
        }
        or None,
        "NodeResources": {
            "Cpu": {"CpuShares": int((res.get("Cpu") or {}).get("CpuShares") or 0)},
            "Memory": {"MemoryMB": int((res.get("Memory") or {}).get("MemoryMB") or 0)},
            "Disk": {"DiskMB": int((res.get("Disk") or {}).get("DiskMB") or 0)},
            "Networks": networks,
            "NodeNetworks": [
                {
                    "Mode": "host",
                    "Device": "lo",
                    "Speed": 1000,
                    "Addresses": [{"Alias": "default", "Address": ip, "Family": "ipv4"}],
                }
            ],
            "MinDynamicPort": res.get("MinDynamicPort") or 20000,
            "MaxDynamicPort": res.get("MaxDynamicPort") or 32000,
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": reserved_cpu},
            "Memory": {"MemoryMB": reserved_mem},
            "Disk": {"DiskMB": 0},
            "Networks": {
                "ReservedHostPorts": ",".join(str(p) for p in sorted(reserved_ports or ()))
            },
        },
    }


def previous_job(job: dict, live: list[LiveAlloc]) -> dict:
    """The version the scheduler sees as running: the newest one among the live allocations
    that differ from `job` (every older allocation runs it as far as nomad-sched knows)."""
    older = [a.job for a in live if jobspec.spec_changed(a.job, job)]
    return max(older, key=lambda j: j.get("Version", 0)) if older else job


def build_input(job: dict, nodes: list[dict], live: list[LiveAlloc]) -> tuple[dict, set[str]]:
    """nomad-sched's input, and the ids of allocations that run `job`'s own spec already."""
    current = {a.id for a in live if not jobspec.spec_changed(a.job, job)}
    # The harness's state store knows only the default namespace; scheduling does not depend
    # on it (only this job's allocations are given).
    previous = dict(previous_job(job, live), Namespace="default")
    job = dict(job, Namespace="default")
    allocs = []
    for a in live:
        if jobspec.group_of(previous if a.id not in current else job, a.group) is None:
            continue  # a group gone since: the caller stops it
        allocs.append(
            {
                "ID": a.id,
                "Name": a.name,
                "NodeID": a.node_id,
                "TaskGroup": a.group,
                "ClientStatus": a.client_status,
                "DesiredStatus": "run",
                **({"DesiredTransition": {"Migrate": True}} if a.migrate else {}),
            }
        )
    data: dict = {"nodes": nodes, "job": {"Job": job}}
    if not allocs:
        return data, current
    data.update(previous_job={"Job": previous}, allocs=allocs, previous_healthy=False)
    # The reconciler ignores an allocation whose job has the evaluated job's JobModifyIndex
    # (scheduler/util.go genericAllocUpdateFn). nomad-sched stores the job at a known index
    # (harness indexes from 1: one per node, previous_job, the allocs, the client update), so
    # the allocations already on this version carry that index, and previous_job's
    # CreateIndex (AllocsByJob keeps only allocations of the job's current incarnation).
    index = len(nodes) + 2 + (1 if any(x["ClientStatus"] != "pending" for x in allocs) else 0) + 1
    mine = dict(
        job,
        JobModifyIndex=index,
        ModifyIndex=index,
        CreateIndex=len(nodes) + 1,
        Version=int(previous.get("Version") or 0) + 1,
    )
    for entry in allocs:
        if entry["ID"] in current:
            entry["Job"] = mine
    return data, current


# A run lives for a few milliseconds and allocates a few MB: Go's collector (first cycle at a
# 4 MB heap) only burns CPU there, about a fifth of a run's. The memory limit keeps a large
# input collectable. The scheduler's decisions do not depend on it.
_GO_ENV = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}


def run(binary_path: Path, data: dict | str) -> dict:
    try:
        proc = subprocess.run(
            [str(binary_path)],
            capture_output=True,
            input=data if isinstance(data, str) else json.dumps(data),
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **_GO_ENV},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedError(f"nomad-sched did not run: {exc}") from exc
    try:
        out = json.loads(proc.stdout)
    except ValueError as exc:
        raise SchedError(
            f"nomad-sched exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
        ) from exc
    if proc.returncode != 0 or "error" in out:
        raise SchedError(str(out.get("error") or proc.stderr.strip()[-500:]))
    return out


def _metric(m: dict, pool: str, in_pool: int) -> dict:
    """Nomad 1.5.8's AllocMetric in the shape the stand-in's API (1.10) answers."""
    out = {
        "NodesEvaluated": 0,
        "NodesFiltered": 0,
        "NodesInPool": in_pool,
        "NodePool": pool,
        "NodesAvailable": {},
        "ClassFiltered": None,
        "ConstraintFiltered": None,
        "NodesExhausted": 0,
        "ClassExhausted": None,
        "DimensionExhausted": None,
        "QuotaExhausted": None,
        "ResourcesExhausted": None,
        "Scores": None,
        "ScoreMetaData": None,
        "AllocationTime": 0,
        "CoalescedFailures": 0,
    }
    out.update({k: v for k, v in m.items() if k in out and k not in ("NodesInPool", "NodePool")})
    return out


CLASS_INELIGIBLE = "computed class ineligible"


def server_class_filter(metric: dict, classes: dict[str, str], reasons: dict[str, str]) -> None:
    """Undo a harness artefact in a failed placement's ConstraintFiltered.

    The harness has no scheduler configuration, so preemption counts as enabled for service
    jobs and a failed Select runs a second time (scheduler/generic_sched.go selectNextOption);
    the second pass finds every class already ineligible and reports only "computed class
    ineligible". A server has service preemption off (nomad/config.go) and reports the first
    pass: the failing constraint on the first node of each computed class, "computed class
    ineligible" on the others. `reasons` (node name -> the stand-in's reason for filtering it)
    and `classes` (node name -> Nomad's computed class) rebuild that; node order is by name.
    """
    filtered = dict(metric.get("ConstraintFiltered") or {})
    count = filtered.pop(CLASS_INELIGIBLE, 0)
    if not count:
        return
    seen: set[str] = set()
    for name in sorted(n for n, r in reasons.items() if r):
        cls = classes.get(name, name)
        key = reasons[name] if cls not in seen else CLASS_INELIGIBLE
        seen.add(cls)
        filtered[key] = filtered.get(key, 0) + 1
        count -= 1
    if count > 0:  # nodes the stand-in's checks would not filter: keep Nomad's word
        filtered[CLASS_INELIGIBLE] = filtered.get(CLASS_INELIGIBLE, 0) + count
    metric["ConstraintFiltered"] = filtered or None


def decide(
    binary_path: Path,
    job: dict,
    nodes: list[dict],
    live: list[LiveAlloc],
    *,
    pool_size: int,
    reasons=None,
    unlocked=contextlib.nullcontext,
) -> Decision:
    """`reasons(group) -> {node name: reason}`: see server_class_filter. `unlocked()`: a
    context in which the binary runs (the stand-in's state lock released for a plan)."""
    data, current = build_input(job, nodes, live)
    payload = json.dumps(data)  # before the lock is released: the input is what it saw
    with unlocked():
        out = run(binary_path, payload)
    run_ = out["run"]
    d = Decision(raw=out)
    failed = {}
    by_id = {a.id: a for a in live}
    for name, tg in sorted((run_.get("task_groups") or {}).items()):
        du = dict(tg.get("desired_updates") or {})
        d.desired[name] = {
            k: int(du.get(k) or 0)
            for k in (
                "Ignore",
                "Place",
                "Migrate",
                "Stop",
                "InPlaceUpdate",
                "DestructiveUpdate",
                "Canary",
                "Preemptions",
            )
        }
        touched = {x["id"] for x in tg.get("inplace_updated") or []}
        touched |= {x["id"] for x in tg.get("stopped") or []}
        wrong = touched & current - {a.id for a in live if a.migrate}  # a drain moves those
        if wrong:
            raise SchedError(f"allocations already on the job's version were changed: {wrong}")
        for x in tg.get("placed") or []:
            prev = x.get("previous_allocation") or ""
            d.place.append(
                {
                    "group": name,
                    "name": x["name"],
                    "node_id": x["node_id"],
                    "previous": prev if prev in by_id else "",
                }
            )
        d.inplace.extend(x["id"] for x in tg.get("inplace_updated") or [])
        for x in tg.get("stopped") or []:
            if x["id"] in by_id:
                d.stop.append((x["id"], x.get("description") or ""))
        if tg.get("failed_tg_allocs"):
            failed[name] = _metric(
                tg["failed_tg_allocs"], job.get("NodePool") or "default", pool_size
            )
            if reasons is not None:
                classes = {n["Name"]: n.get("ComputedClass", "") for n in out.get("nodes") or []}
                server_class_filter(failed[name], classes, reasons(name))
        d.queued[name] = int(tg.get("queued_allocations") or 0)
    d.failed = failed or None
    return d
