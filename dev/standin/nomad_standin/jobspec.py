"""Server-side job handling of the stand-in: canonicalisation, plan diffs, update classes.

Mirrors what a Nomad server does to a submitted API job before it stores it (defaults from
`api.Job.Canonicalize` and the structs conversion), how `Job.Diff` shapes a plan's diff
(`nomad/structs/diff.go`), how `scheduler/annotate.go` annotates it, and which changes
`tasksUpdated` treats as destructive (Nomad >= 1.10: affinity and spread changes are in-place).
"""

from __future__ import annotations

import copy
import json
import re

SEC = 1_000_000_000
MIN = 60 * SEC

DEFAULT_UPDATE = {
    "Stagger": 30 * SEC,
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SEC,
    "HealthyDeadline": 5 * MIN,
    "ProgressDeadline": 10 * MIN,
    "AutoRevert": False,
    "AutoPromote": False,
    "Canary": 0,
}
RESTART = {
    "service": {
        "Attempts": 2,
        "Interval": 30 * MIN,
        "Delay": 15 * SEC,
        "Mode": "fail",
        "RenderTemplates": False,
    },
    "batch": {
        "Attempts": 3,
        "Interval": 24 * 60 * MIN,
        "Delay": 15 * SEC,
        "Mode": "fail",
        "RenderTemplates": False,
    },
}
RESCHEDULE = {
    "service": {
        "Attempts": 0,
        "Interval": 0,
        "Delay": 30 * SEC,
        "DelayFunction": "exponential",
        "MaxDelay": 60 * MIN,
        "Unlimited": True,
    },
    "batch": {
        "Attempts": 1,
        "Interval": 24 * 60 * MIN,
        "Delay": 5 * SEC,
        "DelayFunction": "constant",
        "MaxDelay": 0,
        "Unlimited": False,
    },
}
MIGRATE = {
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SEC,
    "HealthyDeadline": 5 * MIN,
}
SERVER_FIELDS = (
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
)
_ENV_VAR = re.compile(r"\$\{([a-zA-Z0-9_\-.]+)\}")


def replace_env(text, env: dict[str, str]):
    """Nomad's runtime interpolation: known ${keys} replaced, unknown ones left as they are."""
    if not isinstance(text, str):
        return text
    return _ENV_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _defaults(target: dict, defaults: dict) -> dict:
    for k, v in defaults.items():
        if target.get(k) is None:
            target[k] = copy.deepcopy(v)
    return target


def canonicalize(submitted: dict) -> dict:
    """The job as the server stores it: defaults filled in, server fields present."""
    job = copy.deepcopy(submitted)
    job["Name"] = job.get("Name") or job.get("ID", "")
    _defaults(
        job,
        {
            "ParentID": "",
            "Namespace": "default",
            "Region": "global",
            "Type": "service",
            "Priority": 50,
            "AllAtOnce": False,
            "Stop": False,
            "Dispatched": False,
            "NodePool": "default",
            "ConsulNamespace": "",
            "VaultNamespace": "",
            "NomadTokenID": "",
            "Status": "",
            "StatusDescription": "",
            "Stable": False,
            "Version": 0,
            "SubmitTime": 0,
            "CreateIndex": 0,
            "ModifyIndex": 0,
            "JobModifyIndex": 0,
        },
    )
    if not job.get("Datacenters"):
        job["Datacenters"] = ["*"]
    for key in (
        "Constraints",
        "Affinities",
        "Spreads",
        "Meta",
        "Periodic",
        "ParameterizedJob",
        "Payload",
        "Multiregion",
        "UI",
    ):
        job.setdefault(key, None)
    jtype = job["Type"]
    api_update = job.get("Update")
    if api_update is not None:
        api_update = _defaults(dict(api_update), DEFAULT_UPDATE)
    elif jtype == "service":
        api_update = dict(DEFAULT_UPDATE)
    # The server keeps only the legacy part of the job-level update block.
    legacy = {k: 0 for k in DEFAULT_UPDATE if k not in ("AutoRevert", "AutoPromote", "HealthCheck")}
    legacy.update({"AutoRevert": False, "AutoPromote": False, "HealthCheck": ""})
    if api_update is not None:
        legacy["Stagger"] = api_update["Stagger"]
        legacy["MaxParallel"] = api_update["MaxParallel"]
    job["Update"] = legacy
    for group in job.get("TaskGroups") or []:
        _canonicalize_group(job, group, api_update)
    return job


def _canonicalize_group(job: dict, group: dict, job_update: dict | None) -> None:
    jtype = job["Type"]
    kind = "batch" if jtype in ("batch", "sysbatch") else "service"
    if group.get("Count") is None:
        scaling = group.get("Scaling") or {}
        group["Count"] = int(scaling.get("Min") or 1) if scaling else 1
    for key in (
        "Constraints",
        "Affinities",
        "Spreads",
        "Networks",
        "Services",
        "Meta",
        "Volumes",
        "Scaling",
        "Consul",
        "ShutdownDelay",
        "Disconnect",
    ):
        group.setdefault(key, None)
    upd = group.get("Update")
    if job_update is not None and upd is not None:
        merged = dict(job_update)
        merged.update({k: v for k, v in upd.items() if v is not None})
        group["Update"] = merged
    elif job_update is not None:
        group["Update"] = dict(job_update)
    if group.get("Update") is not None:
        _defaults(group["Update"], DEFAULT_UPDATE)
    if jtype in ("batch", "sysbatch"):
        group["Update"] = None
    group["RestartPolicy"] = _defaults(dict(group.get("RestartPolicy") or {}), RESTART[kind])
    if jtype in ("system", "sysbatch"):
        group.setdefault("ReschedulePolicy", None)
    else:
        group["ReschedulePolicy"] = _defaults(
            dict(group.get("ReschedulePolicy") or {}), RESCHEDULE[kind]
        )
    if jtype == "service":
        group["Migrate"] = _defaults(dict(group.get("Migrate") or {}), MIGRATE)
    else:
        group.setdefault("Migrate", None)
    group["EphemeralDisk"] = _defaults(
        dict(group.get("EphemeralDisk") or {}), {"Sticky": False, "Migrate": False, "SizeMB": 300}
    )
    for net in group.get("Networks") or []:
        _canonicalize_network(net)
    for svc in group.get("Services") or []:
        _canonicalize_service(svc, job["ID"], group["Name"], "")
    for task in group.get("Tasks") or []:
        _canonicalize_task(job, group, task)


def _canonicalize_network(net: dict) -> None:
    net.setdefault("Mode", "host")
    for key in ("DynamicPorts", "ReservedPorts"):
        ports = net.get(key)
        if ports is None:
            net[key] = None
            continue
        for p in ports:
            p.setdefault("Value", 0)
            p.setdefault("To", 0)
            if not p.get("HostNetwork"):
                p["HostNetwork"] = "default"


def _canonicalize_service(svc: dict, job_id: str, group: str, task: str) -> None:
    base = f"{job_id}-{group}-{task}" if task else f"{job_id}-{group}"
    if not svc.get("Name"):
        svc["Name"] = base
    env = {"JOB": job_id, "TASKGROUP": group, "TASK": task, "BASE": base}
    svc["Name"] = replace_env(svc["Name"], env)
    _defaults(
        svc,
        {
            "Provider": "consul",
            "AddressMode": "auto",
            "OnUpdate": "require_healthy",
            "PortLabel": "",
            "Tags": None,
            "CanaryTags": None,
            "Meta": None,
            "EnableTagOverride": False,
            "TaskName": task,
        },
    )
    for check in svc.get("Checks") or []:
        _defaults(check, {"OnUpdate": svc["OnUpdate"], "Name": "", "Type": ""})


def _canonicalize_task(job: dict, group: dict, task: dict) -> None:
    _defaults(
        task,
        {
            "Driver": "",
            "User": "",
            "Leader": False,
            "KillTimeout": 5 * SEC,
            "KillSignal": "",
            "ShutdownDelay": 0,
            "Kind": "",
        },
    )
    for key in (
        "Config",
        "Env",
        "Services",
        "Templates",
        "Artifacts",
        "Meta",
        "Constraints",
        "Affinities",
        "Lifecycle",
        "Vault",
        "Consul",
        "VolumeMounts",
        "Identity",
        "Identities",
        "DispatchPayload",
    ):
        task.setdefault(key, None)
    res = dict(task.get("Resources") or {})
    if not res.get("Cores"):
        _defaults(res, {"CPU": 100})
    _defaults(res, {"MemoryMB": 300, "Cores": 0, "MemoryMaxMB": 0})
    for net in res.get("Networks") or []:
        _canonicalize_network(net)
    task["Resources"] = res
    task["RestartPolicy"] = _defaults(dict(task.get("RestartPolicy") or {}), group["RestartPolicy"])
    task["LogConfig"] = _defaults(
        dict(task.get("LogConfig") or {}), {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}
    )
    for tmpl in task.get("Templates") or []:
        _defaults(
            tmpl,
            {
                "ChangeMode": "restart",
                "ChangeSignal": "",
                "Splay": 5 * SEC,
                "Perms": "0644",
                "LeftDelim": "{{",
                "RightDelim": "}}",
                "Envvars": False,
                "ErrMissingKey": False,
                "SourcePath": "",
                "EmbeddedTmpl": "",
                "DestPath": "",
            },
        )
    for svc in task.get("Services") or []:
        _canonicalize_service(svc, job["ID"], group["Name"], task["Name"])


def spec(job: dict) -> dict:
    """The part of a stored job that counts as its specification (Job.SpecChanged)."""
    return {k: v for k, v in job.items() if k not in SERVER_FIELDS}


def spec_changed(old: dict | None, new: dict) -> bool:
    return old is None or _canon_json(spec(old)) != _canon_json(spec(new))


def _canon_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _eq(a, b) -> bool:
    return _canon_json(a) == _canon_json(b)


# -- destructive or not (scheduler/util.go tasksUpdated) ------------------------------------
def group_of(job: dict, name: str) -> dict | None:
    for g in job.get("TaskGroups") or []:
        if g.get("Name") == name:
            return g
    return None


def _port_map(net: dict) -> list:
    out = []
    for p in net.get("ReservedPorts") or []:
        out.append((p.get("Label"), p.get("Value"), p.get("To"), p.get("HostNetwork")))
    for p in net.get("DynamicPorts") or []:
        out.append((p.get("Label"), -1, p.get("To"), p.get("HostNetwork")))
    return sorted(out, key=str)


def _networks_updated(a: list | None, b: list | None) -> str:
    a, b = a or [], b or []
    if len(a) != len(b):
        return "network lengths"
    for na, nb in zip(a, b, strict=True):
        for key in ("Mode", "MBits", "Hostname", "DNS", "CNI"):
            if not _eq(na.get(key), nb.get(key)):
                return f"network {key.lower()}"
        if _port_map(na) != _port_map(nb):
            return "network port map"
    return ""


def combined_meta(job: dict, group: dict, task: dict) -> dict:
    meta: dict = {}
    for level in (job, group, task):
        meta.update(level.get("Meta") or {})
    return meta


def tasks_updated(old_job: dict, new_job: dict, group_name: str) -> str:
    """Why an allocation of `group_name` must be replaced, or "" if it can be updated in place."""
    a, b = group_of(old_job, group_name), group_of(new_job, group_name)
    if a is None or b is None:
        return "task group"
    ta, tb = a.get("Tasks") or [], b.get("Tasks") or []
    if len(ta) != len(tb):
        return "number of tasks"
    if not _eq(a.get("EphemeralDisk"), b.get("EphemeralDisk")):
        return "ephemeral disk"
    why = _networks_updated(a.get("Networks"), b.get("Networks"))
    if why:
        return why
    if not _eq((a.get("Consul") or {}).get("Namespace"), (b.get("Consul") or {}).get("Namespace")):
        return "consul namespace"
    if not _eq(a.get("Volumes"), b.get("Volumes")):
        return "volume request"
    if bool((a.get("RestartPolicy") or {}).get("RenderTemplates")) != bool(
        (b.get("RestartPolicy") or {}).get("RenderTemplates")
    ):
        return "group restart render_templates"
    by_name = {t.get("Name"): t for t in tb}
    for at in ta:
        bt = by_name.get(at.get("Name"))
        if bt is None:
            return "task deleted"
        for key, label in (
            ("Driver", "task driver"),
            ("User", "task user"),
            ("Config", "task config"),
            ("Env", "task env"),
            ("Artifacts", "task artifacts"),
            ("Vault", "task vault"),
            ("Templates", "task templates"),
            ("VolumeMounts", "task volume mount"),
            ("Identity", "task identity"),
            ("Identities", "task identity"),
            ("CSIPluginConfig", "task csi config"),
        ):
            if not _eq(at.get(key) or None, bt.get(key) or None):
                return label
        if not _eq(combined_meta(old_job, a, at), combined_meta(new_job, b, bt)):
            return "task meta"
        ra, rb = at.get("Resources") or {}, bt.get("Resources") or {}
        why = _networks_updated(ra.get("Networks"), rb.get("Networks"))
        if why:
            return why
        for key in ("CPU", "Cores", "MemoryMB", "MemoryMaxMB", "Devices", "NUMA", "SecretsMB"):
            if not _eq(ra.get(key), rb.get(key)):
                return f"task {key.lower()}"
        if bool((at.get("LogConfig") or {}).get("Disabled")) != bool(
            (bt.get("LogConfig") or {}).get("Disabled")
        ):
            return "task log disabled"
        if bool((at.get("RestartPolicy") or {}).get("RenderTemplates")) != bool(
            (bt.get("RestartPolicy") or {}).get("RenderTemplates")
        ):
            return "task restart render_templates"
    return ""


# -- plan diff (nomad/structs/diff.go) ---------------------------------------------------------
MAP_FIELDS = {"Meta", "Env", "CanaryMeta", "GetterOptions", "GetterHeaders"}
JOB_SKIP = set(SERVER_FIELDS) | {"ID", "Update", "NomadTokenID", "VaultToken", "TaskGroups"}
GROUP_SKIP = {"Name", "Tasks"}
TASK_SKIP = {"Name"}
SINGULAR = {
    "Constraints": "Constraint",
    "Affinities": "Affinity",
    "Spreads": "Spread",
    "Services": "Service",
    "Checks": "Check",
    "Templates": "Template",
    "Artifacts": "Artifact",
    "Networks": "Network",
    "DynamicPorts": "Dynamic Port",
    "ReservedPorts": "Static Port",
    "SpreadTarget": "SpreadTarget",
    "VolumeMounts": "VolumeMount",
    "Identities": "Identity",
}
_TYPE_RANK = {"Edited": 0, "Added": 1, "Deleted": 2, "None": 3}


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _flat_primitives(obj: dict | None, skip: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (obj or {}).items():
        if k in skip or v is None:
            continue
        if _is_scalar(v):
            out[k] = _fmt(v)
        elif isinstance(v, dict) and k in MAP_FIELDS:
            for mk, mv in v.items():
                if _is_scalar(mv) and mv is not None:
                    out[f"{k}[{mk}]"] = _fmt(mv)
    return out


def _flat_all(obj, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flat_all(v, f"{prefix}[{k}]" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flat_all(v, f"{prefix}[{i}]"))
    elif obj is not None:
        out[prefix] = _fmt(obj)
    return out


def _field_diffs(
    old: dict[str, str] | None, new: dict[str, str] | None, contextual: bool = False
) -> list[dict]:
    old, new = old or {}, new or {}
    out = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        if o == n:
            if contextual:  # plans diff contextually: an edited object shows its other fields
                out.append(
                    {
                        "Type": "None",
                        "Name": name,
                        "Old": o or "",
                        "New": n or "",
                        "Annotations": None,
                    }
                )
            continue
        kind = "Added" if o is None else "Deleted" if n is None else "Edited"
        out.append(
            {"Type": kind, "Name": name, "Old": o or "", "New": n or "", "Annotations": None}
        )
    return out


def _sort_objects(objs: list[dict]) -> list[dict]:
    return sorted(objs, key=lambda o: (_TYPE_RANK.get(o["Type"], 9), o["Name"]))


def _object_diff(old, new, name: str, flat_all: bool = False) -> dict | None:
    """primitiveObjectDiff: one nested object, recursing into its own nested objects.

    Contextual, as the plan endpoint asks (`Job.Diff(new, true)` in nomad/job_endpoint.go Plan):
    a changed object also lists its unchanged fields and string sets, with Type "None".
    """
    if old is None and new is None:
        return None
    flat = _flat_all if flat_all else (lambda o: _flat_primitives(o, set()))
    old_flat = flat(old) if old is not None else None
    new_flat = flat(new) if new is not None else None
    objects = [] if flat_all else _nested_objects(old or {}, new or {}, set(), contextual=True)
    if not _field_diffs(old_flat, new_flat) and not [o for o in objects if o["Type"] != "None"]:
        return None
    fields = _field_diffs(old_flat, new_flat, contextual=True)
    kind = "Added" if old is None else "Deleted" if new is None else "Edited"
    return {"Type": kind, "Name": name, "Fields": fields or None, "Objects": objects or None}


def _string_set_diff(
    old: list | None, new: list | None, name: str, contextual: bool = False
) -> dict | None:
    old_set, new_set = set(map(str, old or [])), set(map(str, new or []))
    fields = []
    for v in sorted(old_set | new_set):
        if v in old_set and v not in new_set:
            fields.append(
                {"Type": "Deleted", "Name": name, "Old": v, "New": "", "Annotations": None}
            )
        elif v in new_set and v not in old_set:
            fields.append({"Type": "Added", "Name": name, "Old": "", "New": v, "Annotations": None})
        elif contextual:
            fields.append({"Type": "None", "Name": name, "Old": v, "New": v, "Annotations": None})
    if not fields:
        return None
    added = any(f["Type"] == "Added" for f in fields)
    deleted = any(f["Type"] == "Deleted" for f in fields)
    kind = "Edited" if added and deleted else "Added" if added else "Deleted" if deleted else "None"
    return {"Type": kind, "Name": name, "Fields": fields, "Objects": None}


def _keyed_list_diff(old: list | None, new: list | None, name: str, key: str | None) -> list[dict]:
    """Lists of objects: matched by `key` (Edited) or, like primitiveObjectSetDiff, by value."""
    old, new = old or [], new or []
    out: list[dict] = []
    if key:
        om = {str(o.get(key)): o for o in old}
        nm = {str(n.get(key)): n for n in new}
        for k in sorted(set(om) | set(nm)):
            d = _object_diff(om.get(k), nm.get(k), name)
            if d:
                out.append(d)
        return out
    old_keys = [_canon_json(o) for o in old]
    new_keys = [_canon_json(n) for n in new]
    for o, ok in zip(old, old_keys, strict=True):
        if ok not in new_keys:
            d = _object_diff(o, None, name)
            if d:
                out.append(d)
    for n, nk in zip(new, new_keys, strict=True):
        if nk not in old_keys:
            d = _object_diff(None, n, name)
            if d:
                out.append(d)
    return out


def _nested_objects(old: dict, new: dict, skip: set[str], contextual: bool = False) -> list[dict]:
    out: list[dict] = []
    for k in sorted(set(old) | set(new)):
        if k in skip or k in MAP_FIELDS:
            continue
        o, n = old.get(k), new.get(k)
        sample = o if o is not None else n
        if sample is None or _is_scalar(sample):
            continue
        if isinstance(sample, dict):
            d = _object_diff(o, n, k, flat_all=(k == "Config"))
            if d:
                out.append(d)
        elif isinstance(sample, list):
            items = (o or []) + (n or [])
            if all(_is_scalar(x) for x in items):
                d = _string_set_diff(o, n, k, contextual)
                if d:
                    out.append(d)
            else:
                key = "Name" if k in ("Services", "Checks") else None
                out.extend(_keyed_list_diff(o, n, SINGULAR.get(k, k), key))
    return _sort_objects(out)


def _top_objects(old: dict, new: dict, skip: set[str]) -> list[dict]:
    """Objects of a job, group or task: unchanged ones are left out even in a contextual diff."""
    return [o for o in _nested_objects(old, new, skip, contextual=True) if o["Type"] != "None"]


def _task_diff(old: dict | None, new: dict | None) -> dict:
    name = (new or old or {}).get("Name", "")
    kind = (
        "Added"
        if old is None
        else "Deleted"
        if new is None
        else ("None" if _eq(old, new) else "Edited")
    )
    fields = _field_diffs(
        _flat_primitives(old, TASK_SKIP | {"Config"}) if old else None,
        _flat_primitives(new, TASK_SKIP | {"Config"}) if new else None,
    )
    objects = _top_objects(old or {}, new or {}, TASK_SKIP)
    return {
        "Type": kind,
        "Name": name,
        "Fields": fields or None,
        "Objects": objects or None,
        "Annotations": None,
    }


def _group_diff(old: dict | None, new: dict | None) -> dict:
    name = (new or old or {}).get("Name", "")
    kind = (
        "Added"
        if old is None
        else "Deleted"
        if new is None
        else ("None" if _eq(old, new) else "Edited")
    )
    fields = _field_diffs(
        _flat_primitives(old, GROUP_SKIP) if old else None,
        _flat_primitives(new, GROUP_SKIP) if new else None,
    )
    objects = _top_objects(old or {}, new or {}, GROUP_SKIP)
    ot = {t.get("Name"): t for t in (old or {}).get("Tasks") or []}
    nt = {t.get("Name"): t for t in (new or {}).get("Tasks") or []}
    tasks = [_task_diff(ot.get(n), nt.get(n)) for n in sorted(set(ot) | set(nt))]
    return {
        "Type": kind,
        "Name": name,
        "Fields": fields or None,
        "Objects": objects or None,
        "Tasks": tasks or None,
        "Updates": None,
    }


def job_diff(old: dict | None, new: dict) -> dict:
    """Job.Diff(old, new) in the API's JSON shape (non-contextual)."""
    fields = _field_diffs(
        _flat_primitives(old, JOB_SKIP) if old else None, _flat_primitives(new, JOB_SKIP)
    )
    objects = _top_objects(old or {}, new, JOB_SKIP)
    og = {g.get("Name"): g for g in (old or {}).get("TaskGroups") or []}
    ng = {g.get("Name"): g for g in new.get("TaskGroups") or []}
    groups = [_group_diff(og.get(n), ng.get(n)) for n in sorted(set(og) | set(ng))]
    if old is None:
        kind = "Added"
    elif fields or objects or any(g["Type"] != "None" for g in groups):
        kind = "Edited"
    else:
        kind = "None"
    return {
        "Type": kind,
        "ID": new.get("ID", ""),
        "Fields": fields or None,
        "Objects": objects or None,
        "TaskGroups": groups or None,
    }


def annotate(diff: dict, desired: dict[str, dict], *, nomad_1_5: bool = False) -> dict:
    """scheduler/annotate.go: group update counts, count changes, task update kinds.

    `nomad_1_5`: Nomad 1.5.8's rules (what nomad-sched decides by): affinity and spread changes
    force a destructive update; from 1.10 they are in place."""
    for tg in diff.get("TaskGroups") or []:
        want = desired.get(tg["Name"])
        if want:
            updates = {}
            for key, label in (
                ("Ignore", "ignore"),
                ("Place", "create"),
                ("Migrate", "migrate"),
                ("Stop", "destroy"),
                ("Canary", "canary"),
                ("InPlaceUpdate", "in-place update"),
                ("DestructiveUpdate", "create/destroy update"),
            ):
                if want.get(key):
                    updates[label] = want[key]
            tg["Updates"] = updates or None
        for f in tg.get("Fields") or []:
            if f["Name"] == "Count":
                old, new = int(f["Old"] or 0), int(f["New"] or 0)
                if old < new:
                    f["Annotations"] = ["forces create"]
                elif new < old:
                    f["Annotations"] = ["forces destroy"]
        for task in tg.get("Tasks") or []:
            _annotate_task(task, tg, nomad_1_5)
    return diff


def _annotate_task(task: dict, parent: dict, nomad_1_5: bool = False) -> None:
    if task["Type"] == "None":
        return
    if parent["Type"] in ("Added", "Deleted"):
        if task["Type"] == "Added":
            task["Annotations"] = ["forces create"]
            return
        if task["Type"] == "Deleted":
            task["Annotations"] = ["forces destroy"]
            return
    destructive = any(f["Name"] != "KillTimeout" for f in task.get("Fields") or [])
    if not destructive:
        for obj in task.get("Objects") or []:
            if obj["Name"] in (
                ("Service", "Constraint")
                if nomad_1_5
                else ("Service", "Constraint", "Affinity", "Spread")
            ):
                continue
            if obj["Name"] == "LogConfig":
                if any(f["Name"] == "Disabled" for f in obj.get("Fields") or []):
                    destructive = True
                    break
                continue
            destructive = True
            break
    task["Annotations"] = [
        "forces create/destroy update" if destructive else "forces in-place update"
    ]
