"""The whole-manifest preflight: does everything this push places fit the cluster? Pure: the
rendered jobs, the nodes and the allocations come in as the Nomad API returns them, and what
cannot fit comes out, per set, zone and reason, with the numbers. No I/O here.

Nomad's own plan check looks at one job at a time against the cluster as it is; the preflight
adds up the demand of every job this push places (cpu, memory, disk, static ports, per-zone
counts, distinct_hosts / distinct_property, the node-local sidecars riding in their dependent's
group) and places it, job after job, on the free capacity of the ready, eligible, undrained
nodes: node resources minus reserved minus the running allocations this push does not replace.
The rules follow Nomad's feasibility and bin-packing checks (scheduler/feasible.go, rank.go,
nomad/structs/funcs.go AllocsFit; v1.5.8 and v1.9.7 agree on what is modelled here). It does not
model dynamic-port exhaustion, devices, cores, CSI volumes, preemption or bandwidth: Nomad's
per-job plan check, which still runs after it, sees those."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .errors import Problem

# Nomad's defaults for what a job leaves out (api/resources.go DefaultResources,
# api/tasks.go DefaultEphemeralDisk).
DEFAULT_CPU = 100
DEFAULT_MEMORY_MB = 300
DEFAULT_DISK_MB = 300
_TERMINAL_CLIENT = {"complete", "failed", "lost"}
_TERMINAL_DESIRED = {"stop", "evict"}
# Nomad's words in AllocMetric (DimensionExhausted / ConstraintFiltered), in its check order.
CPU, MEMORY, DISK, PORT = "cpu", "memory", "disk", "network: reserved port collision"
DISTINCT_HOSTS, DISTINCT_PROPERTY = "distinct_hosts", "distinct_property"
NO_NODE = "no ready, eligible node"
_ORDER = {NO_NODE: 0, "constraint": 1, DISTINCT_HOSTS: 2, DISTINCT_PROPERTY: 3}


class Shortfall(NamedTuple):
    """Instances of one group that cannot be placed in one zone, and why."""

    set: str
    job: str
    group: str
    zone: str  # "" when no zone could take them at all
    missing: int
    wanted: int  # the group's count
    reason: str  # cpu, memory, disk, network: ..., distinct_hosts, distinct_property, ...
    detail: str  # the numbers


class _Node:
    """One node's free room as the preflight fills it."""

    def __init__(self, raw: Mapping[str, Any], zone_attribute: str) -> None:
        self.raw = raw
        self.id = str(raw.get("ID", ""))
        self.name = str(raw.get("Name") or self.id[:8])
        self.zone = target(zone_attribute, raw)
        drained = bool(raw.get("DrainStrategy")) or bool(raw.get("Drain"))
        self.usable = (
            raw.get("Status", "ready") == "ready"
            and raw.get("SchedulingEligibility", "eligible") == "eligible"
            and not drained
        )
        res, reserved = raw.get("NodeResources") or {}, raw.get("ReservedResources") or {}
        legacy = raw.get("Resources") or {}
        self.cpu = _int((res.get("Cpu") or {}).get("CpuShares"), legacy.get("CPU"))
        self.memory = _int((res.get("Memory") or {}).get("MemoryMB"), legacy.get("MemoryMB"))
        self.disk = _int((res.get("Disk") or {}).get("DiskMB"), legacy.get("DiskMB"))
        self.cpu_total, self.memory_total = self.cpu, self.memory
        self.cpu -= _int((reserved.get("Cpu") or {}).get("CpuShares"))
        self.memory -= _int((reserved.get("Memory") or {}).get("MemoryMB"))
        self.disk -= _int((reserved.get("Disk") or {}).get("DiskMB"))
        self.ports = parse_ports(
            str((reserved.get("Networks") or {}).get("ReservedHostPorts") or "")
        )
        self.placed: Counter[tuple[str, str]] = Counter()  # (job, group) -> instances here
        self.jobs: Counter[str] = Counter()

    def use(self, cpu: int, memory: int, disk: int, ports: Iterable[int]) -> None:
        self.cpu -= cpu
        self.memory -= memory
        self.disk -= disk
        self.ports |= set(ports)


class _Ask(NamedTuple):
    """One task group as the preflight places it."""

    set: str
    job: dict[str, Any]
    group: dict[str, Any]
    cpu: int
    memory: int
    disk: int
    ports: tuple[int, ...]  # static ports
    constraints: tuple[dict[str, Any], ...]  # job, group and task constraints
    zones: tuple[str, ...]  # the spread's target zones, when it names them

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.job.get("ID", "")), str(self.group.get("Name", "")))


def check(
    jobs: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    allocations: Iterable[Mapping[str, Any]],
    *,
    zone_attribute: str = "${node.datacenter}",
    replaced: Iterable[tuple[str, str]] = (),
) -> list[Shortfall]:
    """Place every group of `jobs` (API form, in submit order) on `nodes` (full node records)
    around `allocations` (with AllocatedResources); the allocations of the (namespace, job ID)
    pairs in `replaced` are the ones this push replaces, so their room counts as free.
    Returns what does not fit; an empty list means everything does."""
    room = [_Node(n, zone_attribute) for n in nodes]
    by_id = {n.id: n for n in room}
    gone = {(ns or "default", jid) for ns, jid in replaced}
    for a in allocations:
        node = by_id.get(str(a.get("NodeID", "")))
        if node is None or not _live(a):
            continue
        if (a.get("Namespace") or "default", a.get("JobID", "")) in gone:
            continue
        node.use(*alloc_usage(a))
        node.jobs[str(a.get("JobID", ""))] += 1
    out: list[Shortfall] = []
    for job in jobs:
        for group in job.get("TaskGroups") or ():
            out += _place(_ask(job, group), room, zone_attribute)
    return out


class _Tally:
    """One group's placements so far: per zone and per distinct_property value."""

    def __init__(self, ask: _Ask, room: list[_Node]) -> None:
        self.hosts = _distinct_hosts(ask.constraints)
        self.prop = _distinct_property(ask.constraints)
        self.zones: Counter[str | None] = Counter()
        self.values: Counter[str | None] = Counter()
        # What does not change while the group is placed: node state, datacenter, pool,
        # constraints and volumes (scheduler/feasible.go, checked once per node here).
        self.fixed = {n.id: _fixed_refusal(ask, n) for n in room}

    def add(self, n: _Node) -> None:
        self.zones[n.zone] += 1
        if self.prop is not None:
            self.values[target(self.prop[0], n.raw)] += 1


def _place(ask: _Ask, room: list[_Node], attr: str) -> list[Shortfall]:
    count = _int(ask.group.get("Count"), 1)
    tally = _Tally(ask, room)
    failed: Counter[tuple[str, str]] = Counter()  # (zone, reason)
    details: dict[tuple[str, str], str] = {}
    missing: Counter[str] = Counter()  # per zone: instances that could not go there
    for _ in range(count):
        candidates = [n for n in room if not _refusal(ask, n, tally)]
        if candidates:
            best = min(candidates, key=lambda n: _score(ask, n, tally))
            best.use(ask.cpu, ask.memory, ask.disk, ask.ports)
            best.placed[ask.key] += 1
            tally.add(best)
            continue
        zone, reason, detail = _diagnose(ask, room, tally, attr, missing)
        missing[zone] += 1
        failed[(zone, reason)] += 1
        details[(zone, reason)] = detail
    return [
        Shortfall(ask.set, ask.key[0], ask.key[1], zone, n, count, reason, details[(zone, reason)])
        for (zone, reason), n in sorted(failed.items())
    ]


def _score(ask: _Ask, n: _Node, tally: _Tally) -> tuple[Any, ...]:
    """Like Nomad's ranking: even across zones (the spread), away from this group's other
    instances (job anti-affinity), then the fullest node that fits (bin-packing)."""
    in_zone = tally.zones[n.zone] if n.zone else 0
    left = min(
        (n.cpu - ask.cpu) / max(n.cpu_total, 1),
        (n.memory - ask.memory) / max(n.memory_total, 1),
    )
    return (in_zone, n.placed[ask.key], left, n.name)


def _refusal(ask: _Ask, n: _Node, tally: _Tally) -> str:
    """Why node `n` cannot take one more instance of `ask` ('' when it can), in Nomad's order:
    node state, datacenter, pool, constraints and volumes, distinct_*, then resources."""
    fixed = tally.fixed[n.id]
    if fixed:
        return fixed
    if tally.hosts and n.placed[ask.key]:
        return DISTINCT_HOSTS
    if tally.prop is not None:
        value = target(tally.prop[0], n.raw)
        if value is None or tally.values[value] >= tally.prop[1]:
            return DISTINCT_PROPERTY
    return _exhausted(ask, n)


def _fixed_refusal(ask: _Ask, n: _Node) -> str:
    if not n.usable:
        return NO_NODE
    dcs = [str(d) for d in ask.job.get("Datacenters") or ("*",)]
    if not any(fnmatch.fnmatchcase(str(n.raw.get("Datacenter", "")), d) for d in dcs):
        return "constraint"
    pool = str(ask.job.get("NodePool") or "default")
    if "NodePool" in n.raw and pool != "all" and n.raw.get("NodePool") != pool:
        return "constraint"
    for c in ask.constraints:
        if c.get("Operand") in (DISTINCT_HOSTS, DISTINCT_PROPERTY):
            continue
        if not satisfies(c, n.raw):
            return "constraint"
    for vol in (ask.group.get("Volumes") or {}).values():
        if vol.get("Type") == "host" and vol.get("Source") not in (n.raw.get("HostVolumes") or {}):
            return "constraint"
    return ""


def _exhausted(ask: _Ask, n: _Node) -> str:
    if n.cpu < ask.cpu:
        return CPU
    if n.memory < ask.memory:
        return MEMORY
    if n.disk < ask.disk:
        return DISK
    taken = sorted(set(ask.ports) & n.ports)
    if taken:
        return f"{PORT} {taken[0]}"
    return ""


def _diagnose(
    ask: _Ask, room: list[_Node], tally: _Tally, attr: str, missing: Counter[str]
) -> tuple[str, str, str]:
    """The zone an instance that cannot be placed was meant for, the reason, and the numbers."""
    zones = ask.zones or tuple(sorted({n.zone for n in room if n.zone}))
    zone = ""

    def taken(z: str) -> int:  # placed in zone z, or meant for it and missing
        return tally.zones[z] + missing[z]

    prop = tally.prop
    pinned = [
        str(c.get("RTarget"))
        for c in ask.constraints
        if c.get("LTarget") == attr and c.get("Operand") in ("=", "==", "is")
    ]
    if pinned:  # a group pinned to one zone (a stateful set's zone group, stateful.py)
        zone = pinned[0]
    elif prop is not None and prop[0] == attr:
        # The zone cap: the instance belongs in the zone with the fewest instances so far.
        open_zones = [z for z in zones if taken(z) < prop[1]]
        if not open_zones:
            return (
                "",
                DISTINCT_PROPERTY,
                f"{len(zones)} zone(s) of at most {prop[1]} instance(s) each",
            )
        zone = min(open_zones, key=lambda z: (taken(z), z))
    here = [n for n in room if not zone or n.zone == zone]
    reasons = Counter(_refusal(ask, n, tally) for n in here)
    usable = [n for n in here if n.usable]
    if not usable:
        where = f"in {zone}" if zone else "at all"
        return zone, NO_NODE, f"{len(here)} node(s) {where}, none ready, eligible and undrained"
    # The reason Nomad would name: the most common one among the nodes it evaluates.
    counted = Counter({r: c for r, c in reasons.items() if r != NO_NODE})
    reason = max(counted, key=lambda r: (counted[r], -_ORDER.get(r, 9)))
    return zone, reason, _numbers(ask, usable, reason, zone, counted[reason])


def _numbers(ask: _Ask, nodes: list[_Node], reason: str, zone: str, k: int) -> str:
    where = f" in {zone}" if zone else ""
    if reason in (CPU, MEMORY, DISK):
        unit = "MHz" if reason == CPU else "MB"
        need = {CPU: ask.cpu, MEMORY: ask.memory, DISK: ask.disk}[reason]
        free = [max(getattr(n, reason), 0) for n in nodes]
        return (
            f"{reason} exhausted on {k} of {len(nodes)} node(s){where}: each instance needs "
            f"{need} {unit}, the most free on one node is {max(free)} {unit} "
            f"({sum(free)} {unit} free{where} in all)"
        )
    if reason.startswith(PORT):
        return f"static port {reason.rsplit(' ', 1)[1]} is taken on {k} node(s){where}"
    if reason == DISTINCT_HOSTS:
        return (
            f"one instance per node (distinct_hosts), and {len(nodes)} ready, eligible node(s)"
            f"{where} take at most {len(nodes)}"
        )
    if reason == DISTINCT_PROPERTY:
        return f"every node{where} already has its distinct_property limit"
    return f"{k} of {len(nodes)} node(s){where} fail a constraint (datacenter, node pool, class, meta or host volume)"


def problems(shortfalls: Iterable[Shortfall]) -> list[Problem]:
    """One Problem per set, zone and reason, with a hint."""
    out = []
    for s in shortfalls:
        where = f" in {s.zone}" if s.zone else ""
        out.append(
            Problem(
                f"{s.set}: {s.missing} of {s.wanted} instance(s) cannot be placed{where}: {s.detail}",
                hint=_hint(s),
            )
        )
    return out


def _hint(s: Shortfall) -> str:
    where = s.zone or "the cluster"
    if s.reason in (CPU, MEMORY, DISK):
        return (
            f"add capacity to {where} (nodes, or stop other jobs), or lower the {s.reason} "
            "of the sets placed there"
        )
    if s.reason.startswith(PORT):
        return "free the port on those nodes, or let Nomad pick the port (no static port)"
    if s.reason == DISTINCT_HOSTS:
        return f"add nodes to {where}, or lower the set's per-zone count"
    if s.reason == DISTINCT_PROPERTY:
        return "add zones or nodes, or lower the set's per-zone count"
    if s.reason == NO_NODE:
        return (
            f"make a node of {where} ready and eligible (`nomad node eligibility -enable`, "
            "`nomad node drain -disable`)"
        )
    return "check the set's constraints, node pool and datacenters against the nodes"


# --- Reading the API's records --------------------------------------------------------------


def _ask(job: Mapping[str, Any], group: Mapping[str, Any]) -> _Ask:
    tasks = list(group.get("Tasks") or ())
    summed, ephemeral = [0, 0], [0, 0]
    constraints = list(job.get("Constraints") or ()) + list(group.get("Constraints") or ())
    for t in tasks:
        res = t.get("Resources") or {}
        cpu = _int(res.get("CPU"), DEFAULT_CPU)
        mem = _int(res.get("MemoryMB"), DEFAULT_MEMORY_MB)
        life = t.get("Lifecycle") or {}
        if life.get("Hook") and not life.get("Sidecar"):
            # A prestart/poststart task that runs and ends: Nomad counts the larger of it and
            # the rest (structs.AllocatedResources.Comparable).
            ephemeral = [max(ephemeral[0], cpu), max(ephemeral[1], mem)]
        else:
            summed = [summed[0] + cpu, summed[1] + mem]
        constraints += list(t.get("Constraints") or ())
    disk = _int((group.get("EphemeralDisk") or {}).get("SizeMB"), DEFAULT_DISK_MB)
    ports = tuple(
        sorted(
            int(p["Value"])
            for net in group.get("Networks") or ()
            for p in net.get("ReservedPorts") or ()
            if p.get("Value")
        )
    )
    zones = tuple(
        str(t.get("Value"))
        for s in list(group.get("Spreads") or ()) + list(job.get("Spreads") or ())
        for t in s.get("SpreadTarget") or ()
    )
    meta = job.get("Meta") or {}
    return _Ask(
        str(meta.get("nomadgen_set") or job.get("ID", "")),
        dict(job),
        dict(group),
        max(summed[0], ephemeral[0]),
        max(summed[1], ephemeral[1]),
        disk,
        ports,
        tuple(constraints),
        zones,
    )


def alloc_usage(a: Mapping[str, Any]) -> tuple[int, int, int, set[int]]:
    """CPU, memory, disk and ports one allocation holds on its node."""
    res = a.get("AllocatedResources")
    if not res:
        legacy = a.get("Resources") or {}
        return (
            _int(legacy.get("CPU")),
            _int(legacy.get("MemoryMB")),
            _int(legacy.get("DiskMB")),
            set(),
        )
    cpu = mem = 0
    ports: set[int] = set()
    for t in (res.get("Tasks") or {}).values():
        cpu += _int((t.get("Cpu") or {}).get("CpuShares"))
        mem += _int((t.get("Memory") or {}).get("MemoryMB"))
        ports |= _net_ports(t.get("Networks"))
    shared = res.get("Shared") or {}
    ports |= _net_ports(shared.get("Networks"))
    ports |= {int(p["Value"]) for p in shared.get("Ports") or () if p.get("Value")}
    return cpu, mem, _int(shared.get("DiskMB")), ports


def _net_ports(nets: Any) -> set[int]:
    return {
        int(p["Value"])
        for net in nets or ()
        for p in list(net.get("ReservedPorts") or ()) + list(net.get("DynamicPorts") or ())
        if p.get("Value")
    }


def _live(a: Mapping[str, Any]) -> bool:
    """An allocation that holds its node's resources (structs.Allocation.TerminalStatus)."""
    return (
        a.get("DesiredStatus", "run") not in _TERMINAL_DESIRED
        and a.get("ClientStatus", "pending") not in _TERMINAL_CLIENT
    )


def needs_node_details(jobs: Iterable[Mapping[str, Any]], zone_attribute: str) -> bool:
    """Whether the zone attribute or a constraint reads node meta or attributes, which the
    API's node list leaves out."""
    refs = [zone_attribute]
    for job in jobs:
        for group in job.get("TaskGroups") or ():
            ask = _ask(job, group)
            refs += [str(c.get(k) or "") for c in ask.constraints for k in ("LTarget", "RTarget")]
    return any(r.startswith(("${meta.", "${attr.")) for r in refs)


def _distinct_hosts(constraints: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        c.get("Operand") == DISTINCT_HOSTS
        and str(c.get("RTarget") or "true").lower() not in ("false", "0", "f")
        for c in constraints
    )


def _distinct_property(constraints: Iterable[Mapping[str, Any]]) -> tuple[str, int] | None:
    for c in constraints:
        if c.get("Operand") == DISTINCT_PROPERTY:
            return str(c.get("LTarget", "")), _int(c.get("RTarget"), 1) or 1
    return None


def parse_ports(text: str) -> set[int]:
    """Nomad's ReservedHostPorts: `22,80,8000-8100`."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out |= set(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


def target(ref: str, node: Mapping[str, Any]) -> str | None:
    """A constraint target on a node (scheduler/feasible.go resolveTarget): a literal, or
    ${node.*}, ${attr.*}, ${meta.*}; None when the node has no such value."""
    if not ref.startswith("${"):
        return ref
    key = ref[2:-1]
    fixed = {
        "node.unique.id": node.get("ID"),
        "node.datacenter": node.get("Datacenter"),
        "node.unique.name": node.get("Name"),
        "node.class": node.get("NodeClass"),
        "node.pool": node.get("NodePool"),
    }
    if key in fixed:
        value = fixed[key]
        return None if value is None else str(value)
    if key.startswith("attr."):
        got = (node.get("Attributes") or {}).get(key[5:])
    elif key.startswith("meta."):
        got = (node.get("Meta") or {}).get(key[5:])
    else:
        return None
    return None if got is None else str(got)


def satisfies(c: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """One constraint on one node, as scheduler/feasible.go checkConstraint decides it.
    Operators it does not model (version, semver) pass: Nomad's plan check still applies."""
    op = str(c.get("Operand") or "=")
    left = target(str(c.get("LTarget") or ""), node)
    right = target(str(c.get("RTarget") or ""), node)
    both = left is not None and right is not None
    if op in ("=", "==", "is"):
        return both and left == right
    if op in ("!=", "not"):
        return left != right
    if op in ("<", "<=", ">", ">="):
        if not both:
            return False
        assert left is not None and right is not None
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    if op == "is_set":
        return left is not None
    if op == "is_not_set":
        return left is None
    if op == "regexp":
        try:
            return both and re.search(str(right), str(left)) is not None
        except re.error:
            return False
    if op in ("set_contains", "set_contains_all", "set_contains_any"):
        if not both:
            return False
        have = {x.strip() for x in str(left).split(",")}
        want = {x.strip() for x in str(right).split(",")}
        return bool(have & want) if op == "set_contains_any" else want <= have
    return True


def _int(*values: Any) -> int:
    """The first of `values` that is set, as an int (0 when none is)."""
    for v in values:
        if v is not None:
            try:
                return int(v)
            except (TypeError, ValueError):
                continue
    return 0
