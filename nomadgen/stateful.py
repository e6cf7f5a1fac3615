"""What a stateful set needs in its job, beside what every set gets: where its data lives
(a sticky ephemeral disk, a host volume or a CSI volume), a clean shutdown, a readiness check
that means "accepts connections", and one instance per node. Pure: render calls it."""

from __future__ import annotations

from typing import Any

from .model import EPHEMERAL, HOST, Check, RenderSettings, ServiceSet

SECOND = 1_000_000_000
VOLUME = "data"  # the group's volume name (host and csi modes)
ALLOC_DATA = "/alloc/data"  # the allocation's shared data dir, on its ephemeral disk


def storage_mode(s: ServiceSet, settings: RenderSettings) -> str:
    """ "" for a set without state. Precedence: nomadgen.toml's [storage.sets] entry, the
    manifest's override, nomadgen.toml's [storage] mode, the template's, else ephemeral."""
    st = s.run.state
    if st is None:
        return ""
    per_set = dict(settings.storage_sets).get(s.name)
    if per_set:
        return per_set
    return st.override or settings.storage or st.storage or EPHEMERAL


def data_dir(s: ServiceSet, settings: RenderSettings) -> str:
    """Where the task keeps its data: `{data}` in the template's env and args."""
    mode = storage_mode(s, settings)
    return ALLOC_DATA if mode == EPHEMERAL else s.run.state.path if s.run.state else ""


def volume_source(s: ServiceSet) -> str:
    """Host volume name on each node, or the CSI volume ID prefix (per_alloc adds [N])."""
    return s.job_id


def csi_source(s: ServiceSet, zone: str) -> str:
    """A zone's CSI volume ID prefix: instance N of the zone claims `<set job>-<zone>[N]`."""
    return f"{volume_source(s)}-{zone}"


def apply(
    group: dict[str, Any], task: dict[str, Any], s: ServiceSet, settings: RenderSettings
) -> None:
    """Adds storage, shutdown and spreading to a freshly rendered group and its main task."""
    run = s.run
    if run.kill_timeout_s:
        task["KillTimeout"] = run.kill_timeout_s * SECOND
    if run.kill_signal:
        task["KillSignal"] = run.kill_signal
    if run.state is None:
        return
    mode = storage_mode(s, settings)
    where = data_dir(s, settings)
    if "Env" in task:
        task["Env"] = {k: v.replace("{data}", where) for k, v in task["Env"].items()}
    cfg = task.get("Config") or {}
    if "args" in cfg:
        cfg["args"] = [a.replace("{data}", where) for a in cfg["args"]]
    if mode == EPHEMERAL:
        # Sticky: a replacement on the same node keeps the disk; migrate: one placed elsewhere
        # (drain, update) copies it over from the old node while that node is up.
        group["EphemeralDisk"] = {"Sticky": True, "Migrate": True, "SizeMB": run.state.size_mb}
    else:
        if mode == HOST:
            # Sticky makes the scheduler prefer the previous node, where this instance's host
            # volume is (scheduler/generic_sched.go findPreferredNode).
            group["EphemeralDisk"] = {"Sticky": True}
            vol = {"Name": VOLUME, "Type": "host", "Source": volume_source(s), "ReadOnly": False}
        else:
            vol = {
                "Name": VOLUME,
                "Type": "csi",
                "Source": volume_source(s),
                "ReadOnly": False,
                "PerAlloc": True,
                "AttachmentMode": "file-system",
                "AccessMode": "single-node-writer",
            }
        group["Volumes"] = {VOLUME: vol}
        task["VolumeMounts"] = [
            {"Volume": VOLUME, "Destination": run.state.path, "ReadOnly": False}
        ]
    if s.per_zone_max > 1:
        # Two copies of a database on one node would share its fate (and its disk).
        group["Constraints"] = [
            *group.get("Constraints", []),
            {"Operand": "distinct_hosts", "RTarget": "true"},
        ]


def check_fields(s: ServiceSet, c: Check) -> dict[str, Any]:
    """A script check runs inside the main task (group services name it)."""
    if c.type != "script":
        return {}
    return {"Command": c.command[0], "Args": list(c.command[1:]), "TaskName": s.type}


def csi_volume_spec(s: ServiceSet, zone: str, index: int, settings: RenderSettings) -> str:
    """`nomad volume create` input for one instance's CSI volume (per_alloc: ID source[N])."""
    size = s.run.state.size_mb if s.run.state else 1024
    plugin = settings.csi_plugin or "<your CSI plugin ID>"
    return (
        f'id        = "{csi_source(s, zone)}[{index}]"\n'
        f'name      = "{csi_source(s, zone)}[{index}]"\n'
        f'type      = "csi"\n'
        f'plugin_id = "{plugin}"\n'
        f'capacity_min = "{size}MiB"\n\n'
        'capability {\n  access_mode     = "single-node-writer"\n'
        '  attachment_mode = "file-system"\n}\n'
    )
