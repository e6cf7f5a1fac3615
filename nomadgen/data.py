"""What a change does to the data of stateful sets, and what happened to it: pure functions over
Nomad's plan annotations, the jobs' storage settings, allocations and nodes.

Nomad carries an allocation's data over to its replacement (facts from Nomad v1.5.8's code, as
modelled by dev/standin/nomad_standin/data.py):
- sticky ephemeral disk: a replacement is first tried on the previous node if that node is ready
  (scheduler/generic_sched.go findPreferredNode) and takes over the old directory there; with
  `migrate` one placed elsewhere copies it from the old node, which fails (soft: empty
  directory) when that node is down (client/allocwatcher, client/allocrunner/migrate_hook.go).
  The new job version's ephemeral_disk decides.
- host volume: the data stays on the node; whoever mounts the volume there sees it.
- CSI volume with per_alloc: instance N always claims volume `source[N]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

KEPT, LOST, NEW = "kept", "lost", "new"
CONTINUED, STARTED_EMPTY, FRESH = "continued", "started empty", "new"
RECORDED = "recorded"  # plan: submit records instances that started empty (acknowledged)


class DataStatement(NamedTuple):
    set: str
    job: str
    storage: (
        str  # ephemeral | sticky | host | csi | none (a disk that is neither sticky nor a volume)
    )
    outcome: str  # kept | lost | new
    instances: int
    how: str

    def text(self) -> str:
        return f"{self.set}: data {self.outcome} for {self.instances} instance(s): {self.how}"

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


class NodeView(NamedTuple):
    name: str
    up: bool  # not down: its client answers (a migration can copy from it)
    ready: bool  # ready and eligible (not draining): a replacement may go back to it
    room: tuple[int, int] | None = None  # free (cpu MHz, memory MB); None: not known


def group_needs(group: dict[str, Any] | None) -> tuple[int, int]:
    """(cpu, memory) an allocation of the group asks for: the sum over its tasks."""
    tasks = (group or {}).get("Tasks") or []
    return (
        sum(int((t.get("Resources") or {}).get("CPU") or 0) for t in tasks),
        sum(int((t.get("Resources") or {}).get("MemoryMB") or 0) for t in tasks),
    )


def group_storage(group: dict[str, Any]) -> tuple[str, str]:
    """(mode, where) of a task group: a mounted host/csi volume, else its ephemeral disk."""
    mounted = {
        m.get("Volume") for t in group.get("Tasks") or [] for m in t.get("VolumeMounts") or []
    }
    for name, vol in sorted((group.get("Volumes") or {}).items()):
        if name in mounted and vol.get("Type") in ("host", "csi"):
            source = vol.get("Source", "")
            return vol["Type"], source + ("[N]" if vol.get("PerAlloc") else "")
    disk = group.get("EphemeralDisk") or {}
    if disk.get("Migrate"):
        return "ephemeral", "/alloc/data"
    if disk.get("Sticky"):
        return "sticky", "/alloc/data"
    return "none", "/alloc/data"


def _groups(job: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {g["Name"]: g for g in (job or {}).get("TaskGroups") or []}


def predict(
    set_name: str,
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    updates: dict[str, Any] | None,
    allocs: list[dict[str, Any]],
    nodes: dict[str, NodeView],
    job_changed: bool = True,
) -> list[DataStatement]:
    """What submitting `desired` over `live` does to the set's data, from Nomad's plan annotations
    (`updates`: DesiredTGUpdates) and the running allocations (`allocs`, DesiredStatus run).

    A rolling update shows only its first batch as DestructiveUpdate; the rest waits as Ignore,
    and new placements take max_parallel first (scheduler/reconcile.go), so a changed job whose
    group has Ignore but no InPlaceUpdate will replace those allocations later in the rollout."""
    out: list[DataStatement] = []
    job_id = desired.get("ID", "")
    live_groups = _groups(live)
    for name, group in sorted(_groups(desired).items()):
        mode, where = group_storage(group)
        u = (updates or {}).get(name) or {}
        mine = [
            a
            for a in allocs
            if a.get("TaskGroup") == name
            and a.get("DesiredStatus") == "run"
            and a.get("ClientStatus") not in ("lost", "failed", "complete")
        ]

        def say(outcome: str, n: int, how: str, m: str = mode) -> None:
            out.append(DataStatement(set_name, job_id, m, outcome, n, how))

        deferred = job_changed and u.get("Ignore") and not u.get("InPlaceUpdate")
        replaced = (
            mine
            if u.get("DestructiveUpdate") or deferred
            else [
                a
                for a in mine
                if not nodes.get(a.get("NodeID", ""), NodeView("", False, False)).ready
            ]
            if u.get("Migrate")
            else []
        )
        if replaced:
            old_mode, old_where = group_storage(live_groups.get(name) or {})
            if (
                name in live_groups
                and (old_mode, old_where) != (mode, where)
                and not ({old_mode, mode} <= {"none", "sticky", "ephemeral"} and mode != "none")
            ):
                say(
                    LOST,
                    len(replaced),
                    f"storage changes from {old_mode} ({old_where}) to {mode} "
                    f"({where}); the replacements start empty and the old data is not moved",
                )
            else:
                kept, lost = _replaced(
                    mode,
                    where,
                    replaced,
                    nodes,
                    group_needs(live_groups.get(name)),
                    group_needs(group),
                )
                for how, n in sorted(kept.items()):
                    say(KEPT, n, how)
                for how, n in sorted(lost.items()):
                    say(LOST, n, how)
        elif u.get("InPlaceUpdate"):
            say(
                KEPT, int(u["InPlaceUpdate"]), "updated in place: the same allocations keep running"
            )
        if u.get("Stop"):
            n = int(u["Stop"])
            if mode == "host":
                say(
                    KEPT,
                    n,
                    f"stopped instances leave their data in host volume {where} on their nodes",
                )
            elif mode == "csi":
                say(
                    KEPT,
                    n,
                    f"stopped instances release their volumes {where}; the data stays there",
                )
            else:
                say(LOST, n, "stopped instances' ephemeral disks are discarded")
        new = max(0, int(group.get("Count") or 0) - len(mine))
        if new and mine:  # a set that grows; a new set starting empty is no news
            say(NEW, new, f"new instance(s) start empty ({mode}: {where})")
    desired_groups = _groups(desired)
    for name, group in sorted(live_groups.items()):
        gone = [
            a
            for a in allocs
            if name not in desired_groups
            and a.get("TaskGroup") == name
            and a.get("DesiredStatus") == "run"
            and a.get("ClientStatus") not in ("lost", "failed", "complete")
        ]
        if gone:
            # A group that goes away (e.g. a stateful set moving to one group per zone): its
            # allocations stop and the new groups' instances have no previous allocation, so no
            # disk is carried over and nothing places them where the old data is.
            mode, where = group_storage(group)
            out.append(
                DataStatement(
                    set_name,
                    job_id,
                    mode,
                    LOST,
                    len(gone),
                    f"group {name} is removed: its instances stop and the data in {where} "
                    "is not carried to the new groups",
                )
            )
    return _merged(out)


def _merged(statements: list[DataStatement]) -> list[DataStatement]:
    """One statement per set, outcome and reason: a set's zone groups say the same things."""
    total: dict[tuple[str, str, str, str, str], int] = {}
    for d in statements:
        key = (d.set, d.job, d.storage, d.outcome, d.how)
        total[key] = total.get(key, 0) + d.instances
    return [DataStatement(s, j, m, o, n, h) for (s, j, m, o, h), n in total.items()]


def _replaced(
    mode: str,
    where: str,
    allocs: list[dict[str, Any]],
    nodes: dict[str, NodeView],
    had: tuple[int, int] = (0, 0),
    needs: tuple[int, int] = (0, 0),
) -> tuple[dict[str, int], dict[str, int]]:
    """The scheduler tries a replacement on its previous node first (findPreferredNode, for a
    sticky or migrating disk) and, when that node has no room for the new resources, on any
    other feasible node (scheduler/stack.go Select with PreferredNodes): `had` is what the old
    allocation frees there, `needs` what the new one asks for."""
    kept: dict[str, int] = {}
    lost: dict[str, int] = {}

    def add(bucket: dict[str, int], how: str) -> None:
        bucket[how] = bucket.get(how, 0) + 1

    for a in allocs:
        node = nodes.get(a.get("NodeID", ""), NodeView(a.get("NodeName", "?"), False, False))
        fits = node.room is None or all(
            free + old >= new for free, old, new in zip(node.room, had, needs, strict=True)
        )
        if node.ready and not fits:
            full = (
                f"does not fit on {node.name} any more (free cpu {node.room[0] + had[0]} MHz, "
                f"memory {node.room[1] + had[1]} MB there; it asks for {needs[0]} MHz, "
                f"{needs[1]} MB)"
                if node.room
                else ""
            )
            node = node._replace(ready=False)
        else:
            full = ""
        if mode == "csi":
            add(kept, f"replaced; each instance claims its own volume {where} again")
        elif mode == "host":
            if node.ready:
                add(kept, f"replaced on the same node (preferred), in host volume {where} there")
            elif full:
                add(
                    lost,
                    f"the replacement {full}: Nomad places it on another node with a host "
                    f"volume {where} (that node's, without this instance's data), or cannot "
                    "place it",
                )
            else:
                add(
                    lost,
                    f"replaced on another node than {node.name} (not eligible): "
                    f"another node's host volume {where}",
                )
        elif mode in ("ephemeral", "sticky"):
            if node.ready:
                add(kept, "replaced on the same node (preferred), on its sticky ephemeral disk")
            elif mode == "ephemeral" and node.up:
                add(
                    kept,
                    f"replaced on another node; the ephemeral disk migrates from {node.name}"
                    + (f" (the replacement {full})" if full else ""),
                )
            elif full:
                add(lost, f"the replacement {full}, and the disk does not migrate")
            else:
                add(
                    lost,
                    f"replaced away from {node.name}, which "
                    + (
                        "is down: a sticky disk does not survive its node"
                        if not node.up
                        else "is not eligible and the disk does not migrate"
                    ),
                )
        else:
            add(lost, "replaced, and the ephemeral disk is neither sticky nor migrating")
    return kept, lost


def losses(statements: Iterable[DataStatement]) -> list[DataStatement]:
    return [s for s in statements if s.outcome == LOST]


class InstanceData(NamedTuple):
    name: str  # job.group[N]
    alloc: str
    node: str
    storage: str
    outcome: str  # continued | started empty | new
    how: str
    origin: str = ""  # started empty: the allocation whose data started empty
    acknowledged: bool = False  # started empty, and a submit since has recorded it


def continuity(
    alloc: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    history: list[dict[str, Any]],
    node_status: dict[str, str],
) -> InstanceData:
    """Whether a running allocation's data continued from the instance's earlier allocations or
    started empty. `alloc` and `by_id` values are full allocations (with PreviousAllocation and
    Job); `history` every allocation of the job (stubs); `node_status` node ID -> status."""
    mode, where = _storage_of(alloc)
    base = (alloc.get("Name", ""), alloc.get("ID", ""), alloc.get("NodeName", ""), mode)
    name = alloc.get("Name", "")
    if mode == "csi":
        vol = where.replace("[N]", name[name.rfind("[") :]) if where.endswith("[N]") else where
        earlier = [
            h
            for h in history
            if h.get("Name") == name
            and h.get("ID") != alloc.get("ID")
            and h.get("CreateIndex", 0) < alloc.get("CreateIndex", 0)
        ]
        if any(_storage_of(by_id.get(h["ID"])) == (mode, where) for h in earlier):
            return InstanceData(*base, CONTINUED, f"in volume {vol}, as before")
        return _first(base, alloc, history, f"volume {vol} first claimed by this allocation")
    if mode == "host":
        before = [
            h
            for h in history
            if h.get("ID") != alloc.get("ID")
            and h.get("NodeID") == alloc.get("NodeID")
            and h.get("CreateIndex", 0) < alloc.get("CreateIndex", 0)
        ]
        if any(_storage_of(by_id.get(h["ID"])) == (mode, where) for h in before):
            return InstanceData(
                *base, CONTINUED, f"in host volume {where} on {alloc.get('NodeName')}"
            )
        return _first(
            base,
            alloc,
            history,
            f"host volume {where} on {alloc.get('NodeName')} was not used by this set before",
        )
    # Ephemeral: walk back while each step carried the data over.
    cur, steps = alloc, 0
    while cur.get("PreviousAllocation"):
        prev = by_id.get(cur["PreviousAllocation"])
        if prev is None:
            break
        same = prev.get("NodeID") == cur.get("NodeID")
        cur_mode, _ = _storage_of(cur)
        on_disk = _storage_of(prev)[0] in ("none", "sticky", "ephemeral")  # not in a volume
        carried = on_disk and (
            (same and cur_mode in ("sticky", "ephemeral"))
            or (
                not same
                and cur_mode == "ephemeral"
                and prev.get("ClientStatus") != "lost"
                and node_status.get(prev.get("NodeID", "")) != "down"
            )
        )
        if not carried:
            why = (
                "its previous node was lost"
                if prev.get("ClientStatus") == "lost"
                else "the disk was not carried over"
            )
            return InstanceData(
                *base,
                STARTED_EMPTY,
                f"{'its data' if cur is alloc else 'an earlier replacement'} started "
                f"empty on {cur.get('NodeName')}: {why} ({prev.get('NodeName')})",
                cur.get("ID", ""),
            )
        cur, steps = prev, steps + 1
    if steps:
        return _first(
            base, cur, history, f"carried over {steps} time(s) on sticky ephemeral disks", True
        )
    return _first(base, alloc, history, "")


def _storage_of(alloc: dict[str, Any] | None) -> tuple[str, str]:
    if not alloc:
        return "", ""
    group: dict[str, Any] = next(
        (
            g
            for g in (alloc.get("Job") or {}).get("TaskGroups") or []
            if g["Name"] == alloc.get("TaskGroup")
        ),
        {},
    )
    return group_storage(group)


def _first(
    base: tuple[str, str, str, str],
    root: dict[str, Any],
    history: list[dict[str, Any]],
    how: str,
    carried: bool = False,
) -> InstanceData:
    """The allocation where the data began: the instance's first ever, or a replacement."""
    earlier = [
        h
        for h in history
        if h.get("Name") == root.get("Name")
        and h.get("ID") != root.get("ID")
        and h.get("CreateIndex", 0) < root.get("CreateIndex", 0)
    ]
    if earlier:
        return InstanceData(
            *base,
            STARTED_EMPTY,
            (how + "; " if how else "")
            + f"{root.get('Name')} started empty on {root.get('NodeName')} "
            "after an earlier allocation of it",
            root.get("ID", ""),
        )
    return InstanceData(
        *base, CONTINUED if carried else FRESH, how or "since the instance was created"
    )


def acknowledged(
    instances: Iterable[InstanceData], recorded: Iterable[str]
) -> tuple[InstanceData, ...]:
    """The rule for clearing "started empty": it stays until a successful submit records the
    allocation where the data started empty (the operator has seen it, in plan, submit and
    status, and restored the data or accepted the loss); from then on the instance reads
    "started empty (recorded)" and no longer puts its set out of sync. A later replacement that
    starts empty again has another origin, so it is flagged anew. New instances (a scale-up)
    are "new", never "started empty", and need nothing."""
    seen = set(recorded)
    return tuple(
        d._replace(acknowledged=True) if d.outcome == STARTED_EMPTY and d.origin in seen else d
        for d in instances
    )


def unacknowledged(instances: Iterable[InstanceData]) -> list[InstanceData]:
    return [d for d in instances if d.outcome == STARTED_EMPTY and not d.acknowledged]
