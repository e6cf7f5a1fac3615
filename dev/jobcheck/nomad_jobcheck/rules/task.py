"""Task rules: structs.Task.Validate (name, driver, resources, logs, constraints, artifacts,
templates, dispatch payload, lifecycle, restart policy), then its services and volume mounts."""

from __future__ import annotations

import re

from ..gosyntax import escapes_alloc, go_duration, go_quote
from ..values import dicts_at, dur_at, int_at, list_at, merged, str_at
from .base import Rules
from .placement import affinity_errors, constraint_errors
from .policies import RESTART_DEFAULTS, restart_errors
from .service import check_task_services
from .volume import check_volume_mounts


def check_task(r: Rules, task: dict, tg: dict, disk_mb: int, volumes: dict) -> None:
    jtype = r.jtype
    name = str_at(task, "Name")
    if name == "":
        r.add("Missing task name")
    if "/" in name or "\\" in name:
        r.add("Task name cannot include slashes")
    elif "\0" in name:
        r.add("Task name cannot include null characters")
    if name == "alloc":
        r.add('Task name cannot be "alloc" (reserved since Nomad 1.11)')
    driver = str_at(task, "Driver")
    if driver == "":
        r.add("Missing task driver")
    _driver_config(r, task, driver)
    kill = dur_at(task, "KillTimeout")
    if kill is not None and kill < 0:
        r.add("KillTimeout must be a positive value")
    delay = dur_at(task, "ShutdownDelay")
    if delay is not None and delay < 0:
        r.add("ShutdownDelay must be a positive value")

    res = task.get("Resources")
    if isinstance(res, dict):
        for err in _resources_errors(res):
            r.add(err)

    logs = task.get("LogConfig")
    max_files, max_size = 10, 10
    if isinstance(logs, dict):
        max_files = int_at(logs, "MaxFiles", 10)
        max_size = int_at(logs, "MaxFileSizeMB", 10)
        if max_files < 1:
            r.add(f"minimum number of files is 1; got {max_files}")
        if max_size < 1:
            r.add(f"minimum file size is 1MB; got {max_size}")

    for idx, con in enumerate(dicts_at(task, "Constraints")):
        r.add_all(f"Constraint {idx + 1} validation failed: ", constraint_errors(con))
        operand = str_at(con, "Operand")
        if operand in ("distinct_hosts", "distinct_property"):
            r.add(f"Constraint {idx + 1} has disallowed Operand at task level: {operand}")
    if jtype == "system":
        if list_at(task, "Affinities"):
            r.add("System jobs may not have an affinity block")
    else:
        for idx, aff in enumerate(dicts_at(task, "Affinities")):
            r.add_all(f"Affinity {idx + 1} validation failed: ", affinity_errors(aff))

    check_task_services(r, task, tg)

    if disk_mb <= max_files * max_size:
        r.add(
            f"log storage ({max_files * max_size} MB) must be less than requested disk "
            f"capacity ({disk_mb} MB)"
        )

    for idx, art in enumerate(dicts_at(task, "Artifacts")):
        prefix = f"Artifact {idx + 1} validation failed: "
        if str_at(art, "GetterSource") == "":
            r.add(prefix + "source must be specified")
        mode = str_at(art, "GetterMode")
        if mode not in ("", "any", "file", "dir"):
            r.add(
                prefix + f"invalid artifact mode {go_quote(mode)}; must be one of: any, file, dir"
            )
        if escapes_alloc("task", str_at(art, "RelativeDest")):
            r.add(prefix + "destination escapes allocation directory")

    dests: dict[str, int] = {}
    for idx, tmpl in enumerate(dicts_at(task, "Templates")):
        r.add_all(f"Template {idx + 1} validation failed: ", _template_errors(tmpl))
        dest = str_at(tmpl, "DestPath")
        if dest in dests:
            r.add(f"Template {idx + 1} has same destination as {dests[dest]}")
        else:
            dests[dest] = idx + 1

    payload = task.get("DispatchPayload")
    if isinstance(payload, dict) and escapes_alloc("task/local/", str_at(payload, "File")):
        r.add("Dispatch Payload validation failed: destination escapes allocation directory")

    life = task.get("Lifecycle")
    # api TaskLifecycle.Empty(): a block without a hook is dropped, sidecar and all, so
    # the server's "no lifecycle hook provided" cannot be reached through the API.
    if isinstance(life, dict) and str_at(life, "Hook"):
        hook = str_at(life, "Hook")
        if hook not in ("prestart", "poststart", "poststop"):
            r.add(f"Lifecycle validation failed: invalid hook: {hook}")

    check_volume_mounts(r, task, volumes)

    if isinstance(task.get("RestartPolicy"), dict):
        # Nomad merges the task's policy over the group's; validated here too (stricter)
        base = merged(RESTART_DEFAULTS.get(jtype), tg.get("RestartPolicy"))
        if base is not None:
            for err in restart_errors(merged(base, task["RestartPolicy"])):
                r.add(f"Task restart policy: {err}")


def _driver_config(r: Rules, task: dict, driver: str) -> None:
    # Stricter than Nomad on purpose: Nomad leaves driver config to the client's driver
    # plugin; checked here so a job that could never start is caught at submit time.
    config = task.get("Config")
    config = config if isinstance(config, dict) else {}
    required = {
        "docker": "image",
        "podman": "image",
        "exec": "command",
        "raw_exec": "command",
    }
    key = required.get(driver)
    if key and not (isinstance(config.get(key), str) and config[key].strip()):
        r.add(f'{driver} driver config requires a non-empty "{key}" (Config.{key})')


def _resources_errors(res: dict) -> list[str]:
    errors: list[str] = []
    cores = int_at(res, "Cores")
    cpu = int_at(res, "CPU")
    # api Resources.Canonicalize: CPU defaults to 100 only when Cores is unset as well
    if cores is None:
        cores, cpu = 0, 100 if cpu is None else cpu
    elif cpu is None:
        cpu = 0
    memory = int_at(res, "MemoryMB", 300)
    if cores > 0 and cpu > 0:
        errors.append("Task can only ask for 'cpu' or 'cores' resource, not both.")
    if cpu < 1 and cores == 0:
        errors.append(f"minimum CPU value is 1; got {cpu}")
    if memory < 10:
        errors.append(f"minimum MemoryMB value is 10; got {memory}")
    memory_max = int_at(res, "MemoryMaxMB", 0)
    if memory_max != 0 and memory_max < memory:
        errors.append(
            f"MemoryMaxMB value ({memory_max}) should be larger than MemoryMB value ({memory})"
        )
    return errors


def _template_errors(tmpl: dict) -> list[str]:
    errors: list[str] = []
    if str_at(tmpl, "SourcePath") == "" and str_at(tmpl, "EmbeddedTmpl") == "":
        errors.append("Must specify a source path or have an embedded template")
    dest = str_at(tmpl, "DestPath")
    if dest == "":
        errors.append("Must specify a destination for the template")
    elif escapes_alloc("task", dest):
        errors.append("destination escapes allocation directory")
    mode = str_at(tmpl, "ChangeMode", "restart")  # api default when absent
    if mode in ("noop", "restart"):
        pass
    elif mode == "signal":
        if str_at(tmpl, "ChangeSignal", "SIGHUP") == "":  # api Template.Canonicalize default
            errors.append("Must specify signal value when change mode is signal")
        if tmpl.get("Envvars") is True:
            errors.append("cannot use signals with env var templates")
    elif mode == "script":
        script = tmpl.get("ChangeScript")
        if not isinstance(script, dict):
            errors.append(
                "must specify change script configuration value when change mode is script"
            )
        elif str_at(script, "Command") == "":
            errors.append("must specify script path value when change mode is script")
    else:
        errors.append(
            "Invalid change mode. Must be one of the following: noop, signal, script, restart"
        )
    splay = dur_at(tmpl, "Splay")
    if splay is not None and splay < 0:
        errors.append("Must specify positive splay value")
    perms = str_at(tmpl, "Perms")
    if perms and not (re.fullmatch(r"[0-7]+", perms) and int(perms, 8) < 4096):
        errors.append(f"Failed to parse {go_quote(perms)} as octal")
    wait = tmpl.get("Wait")
    if isinstance(wait, dict):
        wmin, wmax = dur_at(wait, "Min"), dur_at(wait, "Max")
        if wmin is not None and wmax is not None and wmin > wmax:
            errors.append(f"wait min {go_duration(wmin)} is greater than max {go_duration(wmax)}")
    return errors
