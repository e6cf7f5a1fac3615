"""Placement engine of the stand-in: Nomad's feasibility checks, bin-packing and scoring.

Generic over any job in API (JSON) form. It follows the order of Nomad's generic stack:
candidate nodes (ready, eligible, in the job's datacenters and node pool, shuffled per
evaluation) -> job constraints -> drivers -> group and task constraints -> network mode ->
distinct_hosts -> distinct_property -> resources (cpu, memory, reserved ports) -> score
(bin-pack, job anti-affinity, spread, affinity, averaged) -> best node. Failures are reported
as Nomad's AllocMetric, keyed the way Nomad keys them.
"""

from __future__ import annotations

import copy
import fnmatch
import random
import re
from dataclasses import dataclass, field

DISTINCT_HOSTS = "distinct_hosts"
DISTINCT_PROPERTY = "distinct_property"
_NUM = re.compile(r"^-?\d+(\.\d+)?$")


# -- node targets ---------------------------------------------------------------------------
def resolve_target(target: str, node: dict) -> tuple[str, bool]:
    """Value of a constraint target on a node: literal, or ${node.*}/${attr.*}/${meta.*}."""
    if not isinstance(target, str) or not target.startswith("${"):
        return ("" if target is None else str(target)), True
    if target == "${node.unique.id}":
        return node["ID"], True
    if target == "${node.datacenter}":
        return node["Datacenter"], True
    if target == "${node.unique.name}":
        return node["Name"], True
    if target == "${node.class}":
        return node.get("NodeClass", ""), True
    if target == "${node.pool}":
        return node.get("NodePool", "default"), True
    if target == "${node.region}":
        return "global", True
    for prefix, key in (("${attr.", "Attributes"), ("${meta.", "Meta")):
        if target.startswith(prefix) and target.endswith("}"):
            name = target[len(prefix) : -1]
            values = node.get(key) or {}
            if name in values:
                return values[name], True
            return "", False
    return "", False


def constraint_string(c: dict) -> str:
    return f"{c.get('LTarget', '')} {c.get('Operand', '')} {c.get('RTarget', '')}"


def _order(op: str, left: str, right: str) -> bool:
    a: object
    b: object
    if _NUM.match(left) and _NUM.match(right):
        a, b = float(left), float(right)
    else:
        a, b = left, right
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]  # type: ignore[operator]


def _version_tuple(text: str) -> tuple[tuple[int, ...], str] | None:
    m = re.match(r"^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.\-]+))?(?:\+[0-9A-Za-z.\-]+)?$", text.strip())
    if not m:
        return None
    nums = tuple(int(x) for x in m.group(1).split("."))
    return nums + (0,) * (3 - len(nums)), m.group(2) or ""


def check_version(have: str, constraint: str) -> bool:
    """go-version style: comma-separated clauses (=, !=, >, <, >=, <=, ~>); prereleases fail."""
    ver = _version_tuple(have)
    if ver is None or ver[1]:
        return False
    for clause in constraint.split(","):
        m = re.match(r"^\s*(~>|>=|<=|!=|=|>|<)?\s*(\S+)\s*$", clause)
        if not m:
            return False
        op, want_text = m.group(1) or "=", m.group(2)
        want = _version_tuple(want_text)
        if want is None:
            return False
        v, w = ver[0], want[0]
        if op == "~>":
            parts = len(want_text.lstrip("v").split("-")[0].split("."))
            keep = max(parts - 1, 1)
            if not (v >= w and v[:keep] == w[:keep]):
                return False
            continue
        ok = {"=": v == w, "!=": v != w, ">": v > w, "<": v < w, ">=": v >= w, "<=": v <= w}[op]
        if not ok:
            return False
    return True


def check_constraint(operand: str, left: str, right: str, lfound: bool, rfound: bool) -> bool:
    if operand in (DISTINCT_HOSTS, DISTINCT_PROPERTY):
        return True
    if operand in ("=", "==", "is"):
        return lfound and rfound and left == right
    if operand in ("!=", "not"):
        return left != right or lfound != rfound
    if operand in ("<", "<=", ">", ">="):
        return lfound and rfound and _order(operand, left, right)
    if operand == "is_set":
        return lfound
    if operand == "is_not_set":
        return not lfound
    if operand in ("version", "semver"):
        return lfound and rfound and check_version(left, right)
    if operand == "regexp":
        try:
            return lfound and rfound and re.search(right, left) is not None
        except re.error:
            return False
    if operand in ("set_contains", "set_contains_all"):
        have = {x.strip() for x in left.split(",")}
        return lfound and rfound and all(x.strip() in have for x in right.split(","))
    if operand == "set_contains_any":
        have = {x.strip() for x in left.split(",")}
        return lfound and rfound and any(x.strip() in have for x in right.split(","))
    return False


def meets(c: dict, node: dict) -> bool:
    left, lfound = resolve_target(c.get("LTarget", ""), node)
    right, rfound = resolve_target(c.get("RTarget", ""), node)
    return check_constraint(c.get("Operand", ""), left, right, lfound, rfound)


# -- job helpers ------------------------------------------------------------------------------
def group_resources(group: dict) -> tuple[int, int]:
    cpu = mem = 0
    for task in group.get("Tasks") or []:
        res = task.get("Resources") or {}
        cpu += int(res.get("CPU") or 0)
        mem += int(res.get("MemoryMB") or 0)
    return cpu, mem


def group_reserved_ports(group: dict) -> list[tuple[str, int]]:
    out = []
    for net in group.get("Networks") or []:
        for p in net.get("ReservedPorts") or []:
            out.append((p.get("Label", ""), int(p.get("Value") or 0)))
    for task in group.get("Tasks") or []:
        for net in (task.get("Resources") or {}).get("Networks") or []:
            for p in net.get("ReservedPorts") or []:
                out.append((p.get("Label", ""), int(p.get("Value") or 0)))
    return out


def node_in_scope(node: dict, job: dict) -> bool:
    pool = job.get("NodePool") or "default"
    if pool != "all" and node.get("NodePool", "default") != pool:
        return False
    dcs = job.get("Datacenters") or ["*"]
    return any(fnmatch.fnmatchcase(node["Datacenter"], dc) for dc in dcs)


@dataclass
class AllocRef:
    """What the scheduler needs to know about an allocation (existing or proposed)."""

    id: str
    node_id: str
    namespace: str
    job_id: str
    group: str
    cpu: int
    memory_mb: int
    ports: frozenset[int] = frozenset()


@dataclass
class Metric:
    NodesEvaluated: int = 0
    NodesFiltered: int = 0
    NodesInPool: int = 0
    NodePool: str = "default"
    NodesAvailable: dict = field(default_factory=dict)
    ClassFiltered: dict | None = None
    ConstraintFiltered: dict | None = None
    NodesExhausted: int = 0
    ClassExhausted: dict | None = None
    DimensionExhausted: dict | None = None
    QuotaExhausted: list | None = None
    ResourcesExhausted: dict | None = None
    Scores: dict | None = None
    ScoreMetaData: list | None = None
    AllocationTime: int = 0
    CoalescedFailures: int = 0

    def filter(self, node: dict, reason: str) -> None:
        self.NodesFiltered += 1
        if node.get("NodeClass"):
            self.ClassFiltered = self.ClassFiltered or {}
            self.ClassFiltered[node["NodeClass"]] = self.ClassFiltered.get(node["NodeClass"], 0) + 1
        self.ConstraintFiltered = self.ConstraintFiltered or {}
        self.ConstraintFiltered[reason] = self.ConstraintFiltered.get(reason, 0) + 1

    def exhaust(self, node: dict, dimension: str) -> None:
        self.NodesExhausted += 1
        if node.get("NodeClass"):
            self.ClassExhausted = self.ClassExhausted or {}
            self.ClassExhausted[node["NodeClass"]] = (
                self.ClassExhausted.get(node["NodeClass"], 0) + 1
            )
        self.DimensionExhausted = self.DimensionExhausted or {}
        self.DimensionExhausted[dimension] = self.DimensionExhausted.get(dimension, 0) + 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Placer:
    """Places allocations of one job, evaluation by evaluation.

    `allocs` are all non-terminal allocations in the cluster; `stopping` the ids the same plan
    stops (they free their resources and distinct_* slots, as in Nomad's plan).
    """

    def __init__(
        self,
        job: dict,
        nodes: list[dict],
        allocs: list[AllocRef],
        stopping: set[str],
        seed: str,
        updating: list[AllocRef] = (),
    ) -> None:
        self.job = job
        self.nodes = nodes
        self.allocs = [a for a in allocs if a.id not in stopping]
        # Allocations this plan updates in place: Nomad's propertySet counts them once from the
        # state and once more from the plan (scheduler/propertyset.go PopulateProposed,
        # unchanged from 1.5 to 1.10), so they fill distinct_property twice.
        self.updating = list(updating)
        self.proposed: list[AllocRef] = []
        self.rng = random.Random(seed)
        self.failed: dict[str, Metric] = {}
        self._seq = 0
        self.csi_volumes: set[str] | None = None  # None: not checked (probes of a known node)
        self._index: int | None = None

    # -- public -------------------------------------------------------------------------
    def place(
        self, group: dict, preferred: dict | None = None, index: int | None = None
    ) -> dict | None:
        """Pick a node for one allocation of `group`; None (and a failure metric) if none fits.
        A `preferred` node is tried alone first (scheduler/stack.go GenericStack.Select with
        PreferredNodes); its failure is not reported when another node fits."""
        self._index = index
        if preferred is not None:
            nodes, failed = self.nodes, copy.deepcopy(self.failed)
            self.nodes = [preferred]
            try:
                node = self.place(group, index=index)
            finally:
                self.nodes = nodes
            if node is not None:
                return node
            self.failed = failed
        metric = Metric(NodePool=self.job.get("NodePool") or "default")
        pool = metric.NodePool
        in_pool = [n for n in self.nodes if pool == "all" or n.get("NodePool", "default") == pool]
        metric.NodesInPool = len(in_pool)
        ready = [
            n
            for n in in_pool
            if n["Status"] == "ready"
            and n.get("SchedulingEligibility", "eligible") == "eligible"
            and node_in_scope(n, self.job)
        ]
        for n in ready:
            metric.NodesAvailable[n["Datacenter"]] = (
                metric.NodesAvailable.get(n["Datacenter"], 0) + 1
            )
        order = sorted(ready, key=lambda n: n["ID"])
        self.rng.shuffle(order)

        best: tuple[float, int, dict] | None = None
        for idx, node in enumerate(order):
            metric.NodesEvaluated += 1
            if not self._feasible(node, group, metric):
                continue
            dim = self._fits(node, group)
            if dim:
                metric.exhaust(node, dim)
                continue
            score = self._score(node, group)
            if best is None or score > best[0]:
                best = (score, idx, node)
        if best is None:
            prior = self.failed.get(group["Name"])
            if prior is not None:
                prior.CoalescedFailures += 1
            else:
                self.failed[group["Name"]] = metric
            return None
        node = best[2]
        cpu, mem = group_resources(group)
        self._seq += 1
        self.proposed.append(
            AllocRef(
                id=f"proposed-{self._seq}",
                node_id=node["ID"],
                namespace=self.job["Namespace"],
                job_id=self.job["ID"],
                group=group["Name"],
                cpu=cpu,
                memory_mb=mem,
                ports=frozenset(p for _, p in group_reserved_ports(group)),
            )
        )
        return node

    def failed_allocs(self) -> dict | None:
        if not self.failed:
            return None
        return {name: m.to_dict() for name, m in sorted(self.failed.items())}

    # -- feasibility ----------------------------------------------------------------------
    def _all_allocs(self) -> list[AllocRef]:
        return self.allocs + self.proposed

    def _feasible(self, node: dict, group: dict, metric: Metric) -> bool:
        for c in self.job.get("Constraints") or []:
            if c.get("Operand") in (DISTINCT_HOSTS, DISTINCT_PROPERTY):
                continue
            if not meets(c, node):
                metric.filter(node, constraint_string(c))
                return False
        drivers = node.get("Drivers") or {}
        for task in group.get("Tasks") or []:
            info = drivers.get(task.get("Driver", ""))
            if not info or not (info.get("Detected") and info.get("Healthy")):
                metric.filter(node, "missing drivers")
                return False
        tg_constraints = list(group.get("Constraints") or [])
        for task in group.get("Tasks") or []:
            tg_constraints.extend(task.get("Constraints") or [])
        for c in tg_constraints:
            if c.get("Operand") in (DISTINCT_HOSTS, DISTINCT_PROPERTY):
                continue
            if not meets(c, node):
                metric.filter(node, constraint_string(c))
                return False
        modes = {
            n.get("Mode") or "host" for n in (node.get("NodeResources") or {}).get("Networks") or []
        }
        for net in group.get("Networks") or []:
            mode = net.get("Mode") or "host"
            if mode != "none" and mode not in modes:
                metric.filter(node, "missing network")
                return False
        for v in (group.get("Volumes") or {}).values():
            if v.get("Type") != "csi" or self.csi_volumes is None:
                continue
            vid = v.get("Source", "") + (f"[{self._index}]" if v.get("PerAlloc") else "")
            if vid not in self.csi_volumes:
                metric.filter(node, f"missing CSI Volume {vid}")  # scheduler/feasible.go
                return False
        wanted = {
            v.get("Source")
            for v in (group.get("Volumes") or {}).values()
            if v.get("Type") == "host"
        }
        if wanted - set(node.get("HostVolumes") or {}):
            metric.filter(node, "missing compatible host volumes")  # scheduler/feasible.go
            return False
        if not self._distinct_hosts(node, group):
            metric.filter(node, DISTINCT_HOSTS)
            return False
        for level, constraints in (
            ("job", self.job.get("Constraints")),
            ("group", group.get("Constraints")),
        ):
            for c in constraints or []:
                if c.get("Operand") != DISTINCT_PROPERTY:
                    continue
                reason = self._distinct_property(node, group, c, level)
                if reason:
                    metric.filter(node, reason)
                    return False
        return True

    @staticmethod
    def _enabled(constraints: list | None) -> bool:
        for c in constraints or []:
            if c.get("Operand") == DISTINCT_HOSTS:
                value = str(c.get("RTarget") or "").strip().lower()
                return value not in ("false", "0", "f")
        return False

    def _distinct_hosts(self, node: dict, group: dict) -> bool:
        job_level = self._enabled(self.job.get("Constraints"))
        group_level = self._enabled(group.get("Constraints"))
        if not (job_level or group_level):
            return True
        for a in self._all_allocs():
            if a.node_id != node["ID"]:
                continue
            same_job = a.job_id == self.job["ID"] and a.namespace == self.job["Namespace"]
            if (job_level and same_job) or (same_job and a.group == group["Name"]):
                return False
        return True

    def _node(self, node_id: str) -> dict | None:
        for n in self.nodes:
            if n["ID"] == node_id:
                return n
        return None

    def _distinct_property(self, node: dict, group: dict, c: dict, level: str) -> str:
        target = c.get("LTarget", "")
        rtarget = str(c.get("RTarget") or "").strip()
        try:
            allowed = int(rtarget) if rtarget else 1
        except ValueError:
            return f'failed to convert RTarget "{rtarget}" to uint64'
        value, ok = resolve_target(target, node)
        if not ok:
            return f'missing property "{target}"'
        used = 0
        for a in self._all_allocs() + self.updating:
            if a.job_id != self.job["ID"] or a.namespace != self.job["Namespace"]:
                continue
            if level == "group" and a.group != group["Name"]:
                continue
            other = self._node(a.node_id)
            if other is None:
                continue
            v, vok = resolve_target(target, other)
            if vok and v == value:
                used += 1
        if used < allowed:
            return ""
        return f"distinct_property: {target}={value} used by {used} allocs"

    # -- resources and scores -------------------------------------------------------------
    def _fits(self, node: dict, group: dict) -> str:
        res = node.get("NodeResources") or {}
        cap_cpu = int((res.get("Cpu") or {}).get("CpuShares") or 0)
        cap_mem = int((res.get("Memory") or {}).get("MemoryMB") or 0)
        cpu, mem = group_resources(group)
        used_cpu = used_mem = 0
        used_ports: set[int] = set()
        for a in self._all_allocs():
            if a.node_id == node["ID"]:
                used_cpu += a.cpu
                used_mem += a.memory_mb
                used_ports |= a.ports
        if used_cpu + cpu > cap_cpu:
            return "cpu"
        if used_mem + mem > cap_mem:
            return "memory"
        for label, port in group_reserved_ports(group):
            if port in used_ports:
                return f"network: reserved port collision {label}={port}"
        return ""

    def _score(self, node: dict, group: dict) -> float:
        scores = [self._binpack(node, group)]
        collisions = sum(
            1
            for a in self._all_allocs()
            if a.node_id == node["ID"] and a.job_id == self.job["ID"] and a.group == group["Name"]
        )
        if collisions:
            scores.append(-1.0 * (collisions + 1) / max(int(group.get("Count") or 1), 1))
        affinity = self._affinity(node, group)
        if affinity:
            scores.append(affinity)
        spread = self._spread(node, group)
        if spread:
            scores.append(spread)
        return sum(scores) / len(scores)

    def _binpack(self, node: dict, group: dict) -> float:
        res = node.get("NodeResources") or {}
        cap_cpu = float((res.get("Cpu") or {}).get("CpuShares") or 1)
        cap_mem = float((res.get("Memory") or {}).get("MemoryMB") or 1)
        cpu, mem = group_resources(group)
        for a in self._all_allocs():
            if a.node_id == node["ID"]:
                cpu += a.cpu
                mem += a.memory_mb
        free_cpu = max(0.0, 1 - cpu / cap_cpu)
        free_mem = max(0.0, 1 - mem / cap_mem)
        return (20.0 - (10**free_cpu + 10**free_mem)) / 18.0

    def _affinity(self, node: dict, group: dict) -> float:
        affinities = list(self.job.get("Affinities") or []) + list(group.get("Affinities") or [])
        for task in group.get("Tasks") or []:
            affinities.extend(task.get("Affinities") or [])
        if not affinities:
            return 0.0
        total = sum(abs(int(a.get("Weight") or 50)) for a in affinities) or 1
        score = 0.0
        for a in affinities:
            if meets(a, node):
                score += int(a.get("Weight") or 50)
        return score / total

    def _spread(self, node: dict, group: dict) -> float:
        spreads = list(self.job.get("Spreads") or []) + list(group.get("Spreads") or [])
        if not spreads:
            return 0.0
        total_weight = sum(int(s.get("Weight") or 50) for s in spreads) or 1
        count = max(int(group.get("Count") or 1), 1)
        score = 0.0
        for s in spreads:
            attr = s.get("Attribute", "")
            weight = int(s.get("Weight") or 50) / total_weight
            value, ok = resolve_target(attr, node)
            if not ok:
                score -= weight
                continue
            used: dict[str, int] = {}
            for a in self._all_allocs():
                if a.job_id != self.job["ID"] or a.group != group["Name"]:
                    continue
                other = self._node(a.node_id)
                if other is None:
                    continue
                v, vok = resolve_target(attr, other)
                if vok:
                    used[v] = used.get(v, 0) + 1
            targets = {
                t.get("Value"): float(t.get("Percent") or 0) for t in s.get("SpreadTarget") or []
            }
            if targets:
                if value in targets:
                    desired = targets[value] / 100.0 * count
                else:
                    rest = max(0.0, 100.0 - sum(targets.values()))
                    desired = rest / 100.0 * count
                if desired <= 0:
                    score -= weight
                    continue
                score += (desired - used.get(value, 0)) / desired * weight
            else:
                score += _even_spread_boost(used, value) * weight
        return score


def _even_spread_boost(used: dict[str, int], value: str) -> float:
    """Nomad's even-spread boost: favour values below the current minimum, penalise the rest."""
    if not used:
        return 1.0
    current = used.get(value, 0)
    lo, hi = min(used.values()), max(used.values())
    if current != lo:
        return (lo - current) / lo if lo else -1.0
    if lo == hi:
        return -1.0
    return (hi - lo) / lo if lo else -1.0
