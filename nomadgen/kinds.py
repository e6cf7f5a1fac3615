"""Set kinds. A set is one of:

    per-zone    a Nomad job of its own, its instances spread over the zones
    node-local  a sidecar task in its owner's group: one beside each owner instance, same node
    external    runs elsewhere; nomadgen only registers it in Consul and publishes its interface

Everything that differs between kinds lives here, one class per kind; the rest of the code asks
`KINDS[s.kind]` instead of testing fields. A new kind (a batch job for migrations) is a new class
here plus its rendering. Pure: no imports from the rest of nomadgen at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from .model import ServiceSet

PER_ZONE = "per-zone"
NODE_LOCAL = "node-local"
EXTERNAL = "external"


class Kind:
    name = ""
    own_job = False  # the set is a Nomad job of its own (rendered, registered, in a layer)
    zoned = False  # its instances are spread over the zones and published with them

    def total(self, wanted: int) -> int:
        """The set's instance count from what the template or manifest asks for."""
        return wanted

    def instance_slots(
        self, s: ServiceSet, host: ServiceSet | None, zones: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        """(zone, index) of each instance."""
        return [(zones[i % len(zones)], i // len(zones)) for i in range(s.instance_count)]

    def job_set(self, get: Callable[[str], ServiceSet], s: ServiceSet) -> ServiceSet | None:
        """The set whose Nomad job runs this set's tasks; None when no job of ours does.
        `get` finds a set by name (Resolution.get, or resolve's dict while it builds)."""
        return s


class PerZone(Kind):
    name = PER_ZONE
    own_job = True
    zoned = True


class NodeLocal(Kind):
    name = NODE_LOCAL

    def instance_slots(
        self, s: ServiceSet, host: ServiceSet | None, zones: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        assert host is not None
        return Kind.instance_slots(self, host, None, zones)

    def job_set(self, get: Callable[[str], ServiceSet], s: ServiceSet) -> ServiceSet | None:
        while s.host:
            s = get(s.host)
        return s


class External(Kind):
    name = EXTERNAL

    def total(self, wanted: int) -> int:
        return 1  # one registered address

    def instance_slots(
        self, s: ServiceSet, host: ServiceSet | None, zones: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        return []  # runs elsewhere: no instances of ours

    def job_set(self, get: Callable[[str], ServiceSet], s: ServiceSet) -> ServiceSet | None:
        return None


KINDS: dict[str, Kind] = {k.name: k for k in (PerZone(), NodeLocal(), External())}
SCHEDULINGS = (PER_ZONE, NODE_LOCAL)  # what a template may ask for
