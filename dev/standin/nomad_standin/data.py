"""Allocation data, as Nomad carries it over (or not) from one allocation to its replacement.

Every allocation of the stand-in gets a data identity: the thing its task reads and writes in
its data directory. A replacement inherits its previous allocation's identity exactly when Nomad
would carry the data over, and gets a new, empty one otherwise:

- ephemeral disk (Nomad v1.5.8, client/allocwatcher/alloc_watcher.go newMigratorForAlloc): with
  `sticky` (or `migrate`, which implies it) a replacement on the same node takes over the
  previous allocation's directory (localPrevAlloc); on another node only `migrate` copies it, by
  asking the old node over HTTP (remotePrevAlloc.Migrate), which fails when that node is down —
  and a failed migration is a soft failure that leaves an empty directory
  (client/allocrunner/migrate_hook.go). The settings read are the *new* job's (tg of the
  replacement). Without `PreviousAllocation` (scale-up, a new placement) nothing is carried.
- host volume: the data lives on the node, under the volume's path; whichever allocation mounts
  volume `source` on that node sees it (client/allocrunner/taskrunner/volume_hook.go).
- CSI volume: the data lives in the volume; with `per_alloc` an allocation named `job.group[N]`
  claims volume `source[N]` (structs.VolumeRequest / CSIVolumeChecker in scheduler/feasible.go),
  wherever it runs.

The stand-in does not model CSI plugins, topology, claim release delays or `nomad volume`
endpoints: a requested CSI volume always exists (see dev/README.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

EMPTY = "empty"  # a new identity: the task starts with an empty data directory
STICKY = "sticky"  # same node, the previous allocation's ephemeral disk
MIGRATED = "migrated"  # copied from the previous allocation's node
VOLUME = "volume"  # a host or CSI volume that already held data


@dataclass
class Volume:
    id: str
    markers: dict[str, str] = field(default_factory=dict)


class DataStore:
    """Identities and what was written into them (markers), shared by all allocations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.volumes: dict[str, Volume] = {}
        self._n = 0

    def _new(self, key: str = "") -> Volume:
        self._n += 1
        vid = key or f"disk-{self._n}"
        vol = self.volumes[vid] = Volume(vid)
        return vol

    def attach(
        self, *, job: dict, group: dict, index: int, node: dict, prev, prev_node_down: bool
    ) -> tuple[str, str, str]:
        """(data identity, origin, disk identity) of a new allocation of `group` on `node`
        replacing `prev` (or None). The disk is the allocation's ephemeral disk; the data is
        where its task keeps data: a mounted volume, else that disk."""
        with self.lock:
            disk_id, disk_origin = self._disk(group, node, prev, prev_node_down)
            for vol in (group.get("Volumes") or {}).values():
                mounted = any(
                    m.get("Volume") == vol.get("Name")
                    for t in group.get("Tasks") or []
                    for m in t.get("VolumeMounts") or []
                )
                if not mounted:
                    continue
                if vol.get("Type") == "host":
                    key = f"host:{node['Name']}:{vol['Source']}"
                elif vol.get("Type") == "csi":
                    source = vol["Source"] + (f"[{index}]" if vol.get("PerAlloc") else "")
                    key = f"csi:{job.get('Namespace', 'default')}:{source}"
                else:
                    continue
                if key in self.volumes:
                    return key, VOLUME, disk_id
                return self._new(key).id, EMPTY, disk_id
            return disk_id, disk_origin, disk_id

    def _disk(self, group: dict, node: dict, prev, prev_node_down: bool) -> tuple[str, str]:
        disk = group.get("EphemeralDisk") or {}
        migrate = bool(disk.get("Migrate"))
        sticky = bool(disk.get("Sticky")) or migrate
        if prev is not None and prev.disk_id:
            if sticky and prev.node["ID"] == node["ID"]:
                return prev.disk_id, STICKY
            if migrate and prev.node["ID"] != node["ID"] and not prev_node_down:
                return prev.disk_id, MIGRATED
        return self._new().id, EMPTY

    def write(self, data_id: str, key: str, value: str) -> None:
        with self.lock:
            self.volumes[data_id].markers[key] = value

    def read(self, data_id: str) -> dict[str, str]:
        with self.lock:
            vol = self.volumes.get(data_id)
            return dict(vol.markers) if vol else {}
