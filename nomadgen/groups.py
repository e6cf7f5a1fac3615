"""How a per-zone set's instances become Nomad task groups. Pure: render calls it.

Two forms:
    zone groups   one group per zone (`<type>-<zone>`), pinned by a hard `=` constraint on the
                  zone attribute, count = that zone's instances (kinds.py instance_slots)
    single group  one group `<type>` with `distinct_property` on the zone and a spread

Zone groups are used by every set that keeps data, and by every stateless set whose every zone
gets an instance (per_zone sets; count sets with count >= zones). A stateless set smaller than
its zones keeps the single group, which leaves the choice of zones to Nomad; the single group
cannot scale in place when every zone is full (see zone_groups), and a set smaller than its
zones always has a zone with room.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .kinds import KINDS
from .model import ServiceSet
from .stateful import VOLUME, csi_source


def zone_grouped(s: ServiceSet, zones: tuple[str, ...]) -> bool:
    """Whether the set runs as one task group per zone (zone_groups)."""
    if not KINDS[s.kind].zoned:
        return False
    return s.run.state is not None or s.instance_count >= len(zones)


def group_name(s: ServiceSet, zone: str) -> str:
    return f"{s.type}-{zone}"


def zone_groups(
    group: dict[str, Any], s: ServiceSet, zones: tuple[str, ...], zone_attribute: str
) -> list[dict[str, Any]]:
    """One group per zone with a hard constraint on the zone and count = the zone's instances.
    The job-wide alternative, distinct_property, cannot scale in place: Nomad (1.5 to 1.10,
    scheduler/propertyset.go) counts an allocation updated in place twice, from the state and
    from the plan, so the new instances of a full zone find no room in that evaluation.
    distinct_hosts counts by allocation ID (scheduler/context.go ProposedAllocs) and has no such
    problem. A count change is then an in-place change of each group, and instance N of a zone
    is always `<type>-<zone>[N]`: its data identity (sticky disk, host volume node, CSI volume
    `<source>-<zone>[N]`) stays clear when the set scales."""
    counts = Counter(zone for zone, _ in KINDS[s.kind].instance_slots(s, None, zones))
    # distinct_property and set_contains_any on the zone are what the zone constraint replaces.
    rest = [
        c
        for c in group.get("Constraints") or ()
        if not (
            c.get("LTarget") == zone_attribute
            and c.get("Operand") in ("distinct_property", "set_contains_any")
        )
    ]
    out = []
    for zone in zones:
        if not counts[zone]:
            continue
        g = {k: v for k, v in group.items() if k != "Spreads"}  # one zone: nothing to spread
        g["Name"] = group_name(s, zone)
        g["Count"] = counts[zone]
        g["Constraints"] = [
            {"LTarget": zone_attribute, "Operand": "=", "RTarget": zone},
            *rest,
        ]
        vol = (group.get("Volumes") or {}).get(VOLUME)
        if vol and vol.get("PerAlloc"):
            g["Volumes"] = {VOLUME: {**vol, "Source": csi_source(s, zone)}}
        out.append(g)
    return out
