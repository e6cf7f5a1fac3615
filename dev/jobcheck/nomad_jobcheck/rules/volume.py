"""Volumes: a group's volume requests (structs.VolumeRequest.Validate, checked in
TaskGroup.Validate) and a task's mounts of them (Task.Validate)."""

from __future__ import annotations

from ..values import dicts_at, str_at
from .base import Rules


def check_group_volumes(r: Rules, tg: dict) -> dict:
    """The group's volume requests, checked; returns them by name for the tasks' mounts."""
    volumes = tg.get("Volumes") if isinstance(tg.get("Volumes"), dict) else {}
    for vname in sorted(volumes):
        vol = volumes[vname]
        if not isinstance(vol, dict):
            continue
        prefix = f"Task group volume validation for {vname} failed: "
        vtype = str_at(vol, "Type")
        if vtype not in ("host", "csi"):
            r.add(f"{prefix}volume has unrecognized type {vtype}")
        if str_at(vol, "Source") == "":
            r.add(f"{prefix}volume has an empty source")
    return volumes


def check_volume_mounts(r: Rules, task: dict, volumes: dict) -> None:
    for idx, mount in enumerate(dicts_at(task, "VolumeMounts")):
        vol = str_at(mount, "Volume")
        if vol == "":
            r.add(f"Volume Mount ({idx}) references an empty volume")
        elif vol not in volumes:
            r.add(f"Volume Mount ({idx}) references undefined volume {vol}")
