"""Job rules: structs.Job.Validate and the job endpoint's admission checks (jobValidate)."""

from __future__ import annotations

from ..gosyntax import go_quote
from ..values import dicts_at, dur_at, int_at, list_at, str_at
from .base import Rules
from .group import check_group, group_count
from .placement import affinity_errors, constraint_errors, spread_errors

JOB_TYPES = ("service", "system", "batch", "sysbatch", "_core")


def check_job(r: Rules) -> None:
    job, jtype = r.job, r.jtype
    job_id = str_at(job, "ID")
    if job_id == "":
        r.add("Missing job ID")
    elif " " in job_id:
        r.add("Job ID contains a space")
    elif "\0" in job_id:
        r.add("Job ID contains a null character")
    if isinstance(job.get("Name"), str):
        if job["Name"] == "":
            r.add("Missing job name")
        elif "\0" in job["Name"]:
            r.add("Job Name contains a null character")
    if jtype == "":
        r.add("Missing job type")
    elif jtype not in JOB_TYPES:
        r.add(f"Invalid job type: {go_quote(jtype)}")
    for dc in list_at(job, "Datacenters"):
        if dc == "":
            r.add("Job datacenter must be non-empty string")
    groups = [g for g in list_at(job, "TaskGroups") if isinstance(g, dict)]
    if not groups:
        r.add("Missing job task groups")
    for idx, con in enumerate(dicts_at(job, "Constraints")):
        r.add_all(f"Constraint {idx + 1} validation failed: ", constraint_errors(con))
    if jtype == "system":
        if list_at(job, "Affinities"):
            r.add("System jobs may not have an affinity block")
        if list_at(job, "Spreads"):
            r.add("System jobs may not have a spread block")
        if job.get("Reschedule") is not None:
            r.add("System jobs should not have a reschedule policy")
    else:
        for idx, aff in enumerate(dicts_at(job, "Affinities")):
            r.add_all(f"Affinity {idx + 1} validation failed: ", affinity_errors(aff))
        for idx, spread in enumerate(dicts_at(job, "Spreads")):
            r.add_all(f"Spread {idx + 1} validation failed: ", spread_errors(spread))

    seen: dict[str, int] = {}
    for idx, tg in enumerate(groups):
        name = str_at(tg, "Name")
        if name == "":
            r.add(f"Job task group {idx + 1} missing name")
        elif name in seen:
            r.add(f"Job task group {idx + 1} redefines '{name}' from group {seen[name] + 1}")
        else:
            seen[name] = idx
        delay = dur_at(tg, "ShutdownDelay")
        if delay is not None and delay < 0:
            r.add("ShutdownDelay must be a positive value")
        stop_after = dur_at(tg, "StopAfterClientDisconnect")
        if stop_after:
            if stop_after > 0 and jtype not in ("batch", "service"):
                r.add("stop_after_client_disconnect can only be set in batch and service jobs")
            elif stop_after < 0:
                r.add("stop_after_client_disconnect must be a positive value")
        max_disconnect = dur_at(tg, "MaxClientDisconnect")
        if max_disconnect is not None and max_disconnect < 0:
            r.add("max_client_disconnect cannot be negative")
        count = group_count(tg)
        if jtype == "system" and count > 1:
            r.add(
                f"Job task group {name} has count {count}. "
                "Count cannot exceed 1 with system scheduler"
            )
        if jtype == "system" and tg.get("Scaling") is not None:
            r.add("Task groups with job type system do not support scaling blocks")

    for tg in groups:
        r.push(f"Task group {str_at(tg, 'Name')} validation failed: ")
        check_group(r, tg)
        r.pop()

    _periodic_and_parameterized(r)

    priority = int_at(job, "Priority")
    if priority is not None and not 1 <= priority <= 100:
        # api.Job.Priority is a pointer: an explicit 0 is kept, and the server's admission
        # check refuses it (nomad/job_endpoint_hooks.go jobValidate); absent means default.
        r.add("job priority must be between [1, 100]")


def _periodic_and_parameterized(r: Rules) -> None:
    job, jtype = r.job, r.jtype
    periodic = job.get("Periodic")
    if isinstance(periodic, dict) and periodic.get("Enabled") is not False:
        if jtype not in ("batch", "sysbatch"):
            r.add('Periodic can only be used with "batch" or "sysbatch" scheduler')
        spec_type = str_at(periodic, "SpecType", "cron")
        if spec_type == "cron":
            specs = [s for s in list_at(periodic, "Specs") if isinstance(s, str)]
            if str_at(periodic, "Spec"):
                specs.append(str_at(periodic, "Spec"))
            if not specs:
                r.add("Must specify a spec")
        elif spec_type != "test":
            r.add(f"Unknown periodic specification type {go_quote(spec_type)}")
    param = job.get("ParameterizedJob")
    if isinstance(param, dict) and job.get("Dispatched") is not True:
        if jtype not in ("batch", "sysbatch"):
            r.add('Parameterized job can only be used with "batch" or "sysbatch" scheduler')
        payload = str_at(param, "Payload", "optional")
        if payload not in ("", "optional", "required", "forbidden"):
            r.add(f"Unknown payload requirement: {go_quote(payload)}")
        required = [m for m in list_at(param, "MetaRequired") if isinstance(m, str)]
        optional = {m for m in list_at(param, "MetaOptional") if isinstance(m, str)}
        both = sorted(set(required) & optional)
        if both:
            r.add(
                "Required and optional meta keys should be disjoint. "
                f"Following keys exist in both: [{' '.join(both)}]"
            )
