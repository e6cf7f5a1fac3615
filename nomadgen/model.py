"""The data that flows between layers: immutable records (NamedTuple: a frozen dataclass costs
~0.5 ms of start-up per class), tuples not lists, sorted wherever order reaches the output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .kinds import EXTERNAL, KINDS, NODE_LOCAL, PER_ZONE, SCHEDULINGS
from .names import DEFAULT_KV_PREFIX, DEFAULT_ZONE_ATTRIBUTE, job_id

if TYPE_CHECKING:
    from .refs import Part

__all__ = ["EXTERNAL", "NODE_LOCAL", "PER_ZONE", "SCHEDULINGS"]


OLDEST_NOMAD = (1, 5)  # the oldest Nomad release the output supports


class Runtime(str):
    """Text nomadgen itself writes that holds Nomad runtime references (`${node.datacenter}`,
    `${meta.zone}`, `${NOMAD_PORT_x}`). The same text as a str everywhere (JSON, hashes); only
    the HCL writer looks at the type, to write those references as Nomad users do instead of
    escaping them. Manifest values are plain str and always fully escaped."""

    __slots__ = ()


class Port(NamedTuple):
    label: str
    to: int = 0  # port inside the task; 0 = same as the allocated host port


class Check(NamedTuple):
    type: str = "tcp"  # tcp | http | script
    path: str = ""
    interval_s: int = 10
    timeout_s: int = 2
    command: tuple[str, ...] = ()  # script checks: run inside the task (from templates only)


EPHEMERAL, HOST, CSI = "ephemeral", "host", "csi"
STORAGES = (EPHEMERAL, HOST, CSI)


class State(NamedTuple):
    """Where a stateful service keeps its data: `path` inside the container (where a host or CSI
    volume is mounted), `size_mb`, and the storage mode ("" = nomadgen.toml's, else ephemeral)."""

    path: str
    size_mb: int = 1024
    storage: str = ""
    override: str = ""  # the storage mode a manifest override asks for


class Resources(NamedTuple):
    cpu: int = 100
    memory: int = 128


class InterfaceSpec(NamedTuple):
    """What a dependent gets. `env` maps a suffix (HOST) to a value pattern with {host}, {port},
    {dns}, {service}, {set}, {credentials}; the dependent sees <PREFIX>_<SUFFIX>."""

    protocol: str
    port: str
    env: tuple[tuple[str, str], ...] = ()
    url: str = ""
    credentials: str = ""  # a reference (Nomad Variables or Vault path pattern), never a secret
    extra: tuple[tuple[str, str], ...] = ()  # fields a dependent gets only when it maps them
    zone_fallback: bool = True  # a dependent may use another zone's instance when its own has none


class Runnable(NamedTuple):
    """What one task runs: shared by service templates and manifest services."""

    image: str
    command: str = ""
    args: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    resources: Resources = Resources()
    check: Check | None = Check()
    secrets_template: str = ""  # trusted consul-template text from a service template only
    secret_items: tuple[str, ...] = ()  # Nomad Variables items to generate if missing (password)
    state: State | None = None  # data that must outlive an allocation (databases)
    kill_timeout_s: int = 0  # 0: Nomad's default (5 s)
    kill_signal: str = ""  # "": the driver's default (SIGTERM for docker)


class ServiceTemplate(NamedTuple):
    """A generic service a manifest can depend on (templates/psql.toml ...)."""

    name: str
    description: str
    run: Runnable
    interface: InterfaceSpec
    scheduling: str = PER_ZONE
    per_zone: int = 1
    depends: tuple[str, ...] = ()
    source: str = ""


class Override(NamedTuple):
    """A dependent's tuning of the set dedicated to it (`app` wants psql 17): None keeps the
    template's value; env is merged over the template's."""

    image: str | None = None
    args: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    resources: Resources | None = None
    per_zone: int | None = None
    state: tuple[tuple[str, object], ...] = ()  # state fields to change: storage, size_mb, path


class Wiring(NamedTuple):
    """How a dependent takes one of its dependencies (`wiring` in the manifest)."""

    change_mode: str = "restart"  # restart | noop: what a change of its data does (no signal:
    # manifest.py CHANGE_MODES)
    zone_fallback: bool | None = None  # None: the dependency's template decides


class Constraint(NamedTuple):
    attribute: str  # ${node.class}, ${meta.x}, ${attr.x}
    operator: str
    value: str = ""


class Link(NamedTuple):
    """One dependency of a set, as the dependent's task receives it."""

    set: str
    prefix: str  # default env names: <prefix>_HOST ...
    wiring: Wiring = Wiring()
    mapped: bool = False  # the dependent maps some of its fields to names of its own


class Service(NamedTuple):
    """A service the manifest declares."""

    name: str
    depends: tuple[str, ...]
    run: Runnable
    interface: InterfaceSpec
    per_zone: int = 1
    total: int | None = None  # the manifest's `count`: a total instead of per-zone
    overrides: tuple[tuple[str, Override], ...] = ()  # generic dependency -> tuning
    external: tuple[str, int] | None = None  # runs elsewhere: (address, port), registered in Consul
    env_refs: tuple[
        tuple[str, tuple[Part, ...]], ...
    ] = ()  # env values with ${dep.field}: refs.parse parts
    wiring: tuple[tuple[str, Wiring], ...] = ()  # dependency as written -> how it is taken
    tags: tuple[str, ...] = ()  # extra Consul tags of its service
    constraints: tuple[Constraint, ...] = ()
    node_pool: str = ""


_SERVICE_INDEX: tuple[tuple[Service, ...], dict[str, Service]] = (
    (),
    {},
)  # (the last Manifest.services, name -> service)


class Manifest(NamedTuple):
    name: str
    path: str
    services: tuple[Service, ...]
    text: str = ""  # to point errors at lines

    def service(self, name: str) -> Service | None:
        # An index, built once per services tuple: resolution asks for every service, and a
        # scan each time made 10k-service manifests quadratic.
        global _SERVICE_INDEX
        services, index = _SERVICE_INDEX
        if services is not self.services:
            index = {s.name: s for s in reversed(self.services)}  # the first one wins
            _SERVICE_INDEX = (self.services, index)
        return index.get(name)


class Instance(NamedTuple):
    set: str
    zone: str  # "" for node-local instances: they follow their host
    ordinal: int  # the instance's number within its zone


class ServiceSet(NamedTuple):
    """One deployed group of a service with one configuration: `app`, `psql:app`."""

    name: str
    type: str  # the service or template name: "psql", "app"
    owner: str  # the dependent set a dedicated set was made for; "" for declared services
    declared: bool  # True for the manifest's own services
    kind: str  # per-zone | node-local | external: see kinds.py
    instance_count: int
    per_zone_max: int  # the hard per-zone limit (distinct_property)
    depends: tuple[str, ...]  # set names, sorted
    users: tuple[str, ...]  # set names that depend on this one, sorted
    run: Runnable
    interface: InterfaceSpec
    host: str = ""  # node-local: the set whose group carries this one
    embedded: tuple[str, ...] = ()  # node-local sets carried in this set's group
    prefixes: tuple[tuple[str, str], ...] = ()  # (dependency set, env prefix) for this dependent
    external: tuple[str, int] | None = None  # (address, port) of a service that runs elsewhere
    links: tuple[Link, ...] = ()  # this dependent's dependencies, in `depends` order
    mapped_env: tuple[
        tuple[str, tuple[Part, ...]], ...
    ] = ()  # NAME -> parts; each Ref.dep is a set name
    tags: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    node_pool: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        """What a dependent can refer to: ${psql.url} ..."""
        return tuple(
            sorted({s.lower() for s, _ in self.interface.env + self.interface.extra} | {"addrs"})
        )

    scope: str = ""  # the environment's scope: prefixes the job ID and service name

    @property
    def job_id(self) -> str:
        return job_id(self.name, self.scope)

    @property
    def scheduling(self) -> str:
        return self.kind

    @property
    def job_hosted(self) -> bool:
        """False for node-local sets (they live inside their host's job) and external services."""
        return KINDS[self.kind].own_job


class Resolution(NamedTuple):
    manifest: str
    zones: tuple[str, ...]
    sets: tuple[ServiceSet, ...]
    instances: tuple[Instance, ...]
    layers: tuple[tuple[str, ...], ...]  # job-hosting set names in dependency order
    by_name: dict[str, ServiceSet] = {}  # noqa: RUF012 - filled by resolve, never mutated

    def get(self, name: str) -> ServiceSet:
        return self.by_name[name]

    def job_set(self, name: str) -> ServiceSet | None:
        """The set whose Nomad job runs `name`'s tasks (itself, or a node-local set's host);
        None for an external service."""
        s = self.by_name[name]
        return KINDS[s.kind].job_set(self.get, s)

    def job_of(self, name: str) -> str:
        """The ID of the Nomad job running set `name`; "" for an external service."""
        j = self.job_set(name)
        return j.job_id if j is not None else ""


class RenderSettings(NamedTuple):
    """Rendering choices that are not in the manifest."""

    zone_attribute: str = DEFAULT_ZONE_ATTRIBUTE
    namespace: str = "default"
    region: str = ""
    kv_prefix: str = DEFAULT_KV_PREFIX
    consul_domain: str = "consul"
    datacenters: tuple[str, ...] = ()  # empty: the zones when zones are datacenters, else ["*"]
    storage: str = ""  # default storage mode of stateful sets ("": the template's, else ephemeral)
    storage_sets: tuple[tuple[str, str], ...] = ()  # set name -> storage mode
    csi_plugin: str = ""  # the CSI plugin the volumes of csi sets are created with
    # The oldest Nomad the jobs must run on: fields newer than it are rendered only when a
    # setting asks for them and this allows it (README "What gets rendered").
    nomad_version: tuple[int, int] = OLDEST_NOMAD
    node_pool: str = ""  # Job.NodePool (Nomad 1.6+)
    scope: str = ""  # the environment's scope: prefixes job IDs, services, KV roots ("" = none)
    consul_datacenter: str = ""  # where dependents read Consul data ("" = the local agent's)


class Job(NamedTuple):
    id: str
    set: str
    api: dict[str, Any]  # the Nomad API form, {"ID": ...}
    spec_hash: str = ""


class KVEntry(NamedTuple):
    key: str
    value: bytes
