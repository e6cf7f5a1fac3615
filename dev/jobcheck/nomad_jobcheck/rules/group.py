"""Task group rules: structs.TaskGroup.Validate (count, tasks, policies merged over the api
defaults, disk, update and migrate, scaling), then its networks, services, volumes and tasks."""

from __future__ import annotations

from ..gosyntax import SECOND, go_duration, go_quote
from ..values import dicts_at, dur_at, int_at, list_at, merged, str_at
from .base import Rules
from .network import check_group_networks
from .placement import affinity_errors, constraint_errors, spread_errors
from .policies import (
    MIGRATE_DEFAULTS,
    RESCHEDULE_DEFAULTS,
    RESCHEDULE_EMPTY,
    RESTART_DEFAULTS,
    UPDATE_DEFAULTS,
    migrate_errors,
    reschedule_errors,
    restart_errors,
    update_errors,
    update_set,
)
from .service import (
    check_group_service_ports,
    check_group_services,
    check_name,
    service_name,
)
from .task import check_task
from .volume import check_group_volumes


def check_group(r: Rules, tg: dict) -> None:
    jtype = r.jtype
    name = str_at(tg, "Name")
    if "\0" in name:
        r.add("Task group name contains null character")
    count = group_count(tg)
    if count < 0:
        r.add("Task group count can't be negative")
    tasks = dicts_at(tg, "Tasks")
    if not tasks:
        r.add("Missing tasks for task group")
    for idx, con in enumerate(dicts_at(tg, "Constraints")):
        r.add_all(f"Constraint {idx + 1} validation failed: ", constraint_errors(con))
    if jtype == "system":
        if list_at(tg, "Affinities"):
            r.add("System jobs may not have an affinity block")
    else:
        for idx, aff in enumerate(dicts_at(tg, "Affinities")):
            r.add_all(f"Affinity {idx + 1} validation failed: ", affinity_errors(aff))

    restart = merged(RESTART_DEFAULTS.get(jtype), tg.get("RestartPolicy"))
    if restart is not None:
        for err in restart_errors(restart):
            r.add(err)

    if jtype == "system":
        if list_at(tg, "Spreads"):
            r.add("System jobs may not have a spread block")
        if tg.get("ReschedulePolicy") is not None:
            r.add("System jobs should not have a reschedule policy")
    else:
        for idx, spread in enumerate(dicts_at(tg, "Spreads")):
            r.add_all(f"Spread {idx + 1} validation failed: ", spread_errors(spread))
        job_rp, tg_rp = r.job.get("Reschedule"), tg.get("ReschedulePolicy")
        base = RESCHEDULE_DEFAULTS.get(jtype)
        if base is None and (isinstance(job_rp, dict) or isinstance(tg_rp, dict)):
            base = RESCHEDULE_EMPTY
        if base is not None:
            policy = merged(merged(base, job_rp), tg_rp)
            for err in reschedule_errors(policy):
                r.add(err)

    disk = tg.get("EphemeralDisk")
    disk_mb = int_at(disk, "SizeMB") if isinstance(disk, dict) else None
    if disk_mb is not None and disk_mb < 10:
        r.add(f"minimum DiskMB value is 10; got {disk_mb}")
    disk_mb = 300 if disk_mb is None else disk_mb

    update = _group_update(r, tg)
    # The job's update block is merged into every group first (api TaskGroup.Canonicalize)
    if jtype not in ("service", "system") and (
        tg.get("Update") is not None or update_set(r.job.get("Update"))
    ):
        r.add(f"Job type {go_quote(jtype)} does not allow update block")
    if update is not None:
        for err in update_errors(update):
            r.add(err)
        progress = update["ProgressDeadline"]
        if isinstance(progress, int) and progress != 0:
            for task in tasks:
                kill = dur_at(task, "KillTimeout", 5 * SECOND)
                if kill > progress:
                    r.add(
                        f"Task {str_at(task, 'Name')} has a KillTimout ({go_duration(kill)}) longer "
                        f"than the group's ProgressDeadline ({go_duration(progress)})"
                    )

    if jtype == "service":
        migrate = merged(merged(MIGRATE_DEFAULTS, r.job.get("Migrate")), tg.get("Migrate"))
        for err in migrate_errors(migrate):
            r.add(err)
    elif tg.get("Migrate") is not None:
        r.add(f"Job type {go_quote(jtype)} does not allow migrate block")

    names: dict[str, int] = {}
    leaders = 0
    for idx, task in enumerate(tasks):
        tname = str_at(task, "Name")
        if tname == "":
            r.add(f"Task {idx + 1} missing name")
        elif tname in names:
            r.add(f"Task {idx + 1} redefines '{tname}' from task {names[tname] + 1}")
        else:
            names[tname] = idx
        if task.get("Leader") is True:
            leaders += 1
    if leaders > 1:
        r.add("Only one task may be marked as leader")

    volumes = check_group_volumes(r, tg)

    r.push("Task group network validation failed: ")
    check_group_networks(r, tg, tasks)
    r.pop()
    r.push("Task group service validation failed: ")
    check_group_services(r, tg, tasks)
    r.pop()
    check_group_service_ports(r, tg)

    for svc in dicts_at(tg, "Services"):
        if str_at(svc, "TaskName") == "":
            sname = service_name(svc, r.name, name, None)
            for check in dicts_at(svc, "Checks"):
                if str_at(check, "Type") == "script" and str_at(check, "TaskName") == "":
                    r.add(
                        "Task group service check validation failed: Service "
                        f"[{name}]->{sname} or Check "
                        f"{check_name(check, svc, sname)} must specify task parameter"
                    )

    scaling = tg.get("Scaling")
    if isinstance(scaling, dict):
        prefix = "Task group scaling policy validation failed: Scaling policy invalid: "
        smin, smax = int_at(scaling, "Min"), int_at(scaling, "Max")
        if smax is None or smax < 0:
            r.add(prefix + "maximum count must be specified and non-negative")
        elif smin is not None and smax < smin:
            r.add(prefix + "maximum count must not be less than minimum count")
        if smin is not None and smin < 0:
            r.add(prefix + "minimum count must be specified and non-negative")
        if smax is not None and smax < count:
            r.add(
                prefix + "task group count must not be greater than maximum count in scaling policy"
            )
        if smin is not None and count < smin:
            r.add(prefix + "task group count must not be less than minimum count in scaling policy")

    for task in tasks:
        r.push(f"Task {str_at(task, 'Name')} validation failed: ")
        check_task(r, task, tg, disk_mb, volumes)
        r.pop()


def _group_update(r: Rules, tg: dict) -> dict | None:
    """The update strategy the server validates: defaults <- job Update <- group Update."""
    if r.jtype not in ("service", "system"):
        return None
    job_up, tg_up = r.job.get("Update"), tg.get("Update")
    if not update_set(job_up) and not isinstance(tg_up, dict):
        return None
    return merged(merged(UPDATE_DEFAULTS, job_up), tg_up)


def group_count(tg: dict) -> int:
    count = int_at(tg, "Count")
    if count is not None:
        return count
    scaling = tg.get("Scaling")
    smin = int_at(scaling, "Min") if isinstance(scaling, dict) else None
    return 1 if smin is None else smin  # api default: scaling.min, else 1
