"""Names and layout: every name nomadgen writes to a cluster is formatted here, and only here.
Job IDs and Consul service names, DNS names, the Consul KV layout (interface documents, push
records), external service IDs, credentials paths, env variable prefixes and the zone attribute.
Changing the layout is one edit in this file. Pure and dependency-free (stdlib only): every other
module may import it.

An environment's scope (`prod`) prefixes everything global (`prod-psql-app`), so two
environments on one cluster never write the same job, service, key, variable or policy. The
empty scope is the unscoped layout (no environment)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")  # the seed: three zones, one node each
DEFAULT_ZONE_ATTRIBUTE = "${node.datacenter}"
DEFAULT_KV_PREFIX = "nomadgen"

ZONE_ATTR_RE = re.compile(
    r"^\$\{(node\.datacenter|node\.class|node\.pool|meta\.[A-Za-z0-9_.-]{1,128}|"
    r"attr\.[A-Za-z0-9_.-]{1,128})\}\Z"
)
ZONE_RE = re.compile(r'^[^\s,"\\\x00-\x1f\x7f]{1,128}\Z')
KV_PREFIX_RE = re.compile(r"^(?=.{1,128}\Z)[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z")


# --- Sets, jobs and services ----------------------------------------------------------------


def dns_name(set_name: str) -> str:
    """`psql:app` -> `psql-app`: the set's label (job ID, Consul service name, DNS label)."""
    return set_name.replace(":", "-").lower()


def job_id(set_name: str, scope: str = "") -> str:
    """The Nomad job ID and Consul service name of a set: `psql-app`, `prod-psql-app` in scope prod."""
    label = dns_name(set_name)
    return f"{scope}-{label}" if scope else label


def env_prefix(name: str) -> str:
    """`psql` -> `PSQL`: the prefix of the variables a dependent gets (PSQL_HOST ...)."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def dns(service: str, domain: str = "consul", datacenter: str = "") -> str:
    return f"{service}.service.{datacenter + '.' if datacenter else ''}{domain}"


def srv(service: str, domain: str = "consul", protocol: str = "tcp", datacenter: str = "") -> str:
    return f"_{service}._{protocol}.service.{datacenter + '.' if datacenter else ''}{domain}"


def in_datacenter(name: str, datacenter: str = "") -> str:
    """A consul-template `service` or `key` argument in another Consul datacenter: `name@dc1`."""
    return f"{name}@{datacenter}" if datacenter else name


EXTERNAL_ID_PREFIX = "nomadgen:"


def external_id(manifest: str, service: str) -> str:
    """The Consul agent service ID of an external service nomadgen registers:
    `nomadgen:<manifest>:<service>`. Names never hold a colon, so the pair is unambiguous and
    no Nomad-registered instance (`_nomad-task-...`) can look like one."""
    return f"{EXTERNAL_ID_PREFIX}{manifest}:{service}"


def is_external_of(service_id: str, manifest: str) -> bool:
    return service_id.startswith(f"{EXTERNAL_ID_PREFIX}{manifest}:")


# The item nomadgen adds to the credentials it generates: the owner that generated them, so
# `destroy` can tell them from variables put by hand (Nomad Variables have no metadata).
CREDENTIALS_OWNER_ITEM = "nomadgen_owner"


def credentials_path(pattern: str, job: str) -> str:
    """A template's credentials reference (`nomad/jobs/{job}`) for one job."""
    return pattern.replace("{job}", job)


def policy_name(manifest: str, scope: str = "") -> str:
    """The ACL policy name of a manifest's deployment (`dockland@prod` is scope prod's)."""
    return "nomadgen-" + owner(manifest, scope).replace("@", "--")


def owner(manifest: str, scope: str = "") -> str:
    """Who owns what a deployment writes (job and service meta, the KV root): `dockland`, or
    `dockland@prod` in scope prod. `@` is never in a manifest name, so no two owners clash."""
    return f"{manifest}@{scope}" if scope else manifest


_LOWER_NAME = re.compile(r"[a-z0-9-]{1,128}\Z")


def _fnv(text: str) -> str:
    h = 0xCBF29CE484222325  # FNV-1a, 64 bits: stable across runs and Python versions
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def workload_policy_name(owner_: str, job: str, group: str, task: str) -> str:
    """The job-scoped ACL policy that lets one task of one group read its dependencies'
    credentials (Nomad attaches a policy with a task to one job, group and task:
    nomad/structs/acl.go ACLPolicy.Validate). Nomad policy names are at most 128 of
    [A-Za-z0-9-], and every part here is lower case ([a-z0-9-]: manifest, scope, job IDs and
    task names are DNS labels), so upper-case markers keep the parts apart:
    `nomadgen-dockland-J-app-G-app-zone-a-T-app`; the scope of `dockland@prod` is `-S-prod`.
    A group whose zone is not lower case is written `x<digest>`; a name past 128 characters
    ends in `-H-<digest>` of the whole."""
    manifest, _, scope = owner_.partition("@")
    group = group if _LOWER_NAME.match(group) else f"x{_fnv(group)}"
    name = f"nomadgen-{manifest}" + (f"-S-{scope}" if scope else "")
    name += f"-J-{job}-G-{group}-T-{task}"
    if len(name) <= 128:
        return name
    return f"{name[:109]}-H-{_fnv(name)}"


def workload_policy_description(manifest: str, job: str, group: str, task: str) -> str:
    text = f"nomadgen {manifest}: job {job}, group {group}, task {task} reads the credentials"
    if len(text) > 200:  # Nomad takes 256 at most; ownership needs only the prefix
        text = f"nomadgen {manifest}: job {job}, task {task} reads the credentials"
    return text + " of what it depends on"


def owns_policy(description: str, manifest: str) -> bool:
    return (description or "").startswith(f"nomadgen {manifest}: ")


# --- Consul KV layout -----------------------------------------------------------------------


def kv_root(kv_prefix: str, manifest: str, scope: str = "") -> str:
    """Everything one manifest (in one environment) keeps in KV. A scoped root is never inside an
    unscoped one: destroying `dockland` (its tree under `dockland/`) leaves `dockland@prod` alone."""
    return f"{kv_prefix}/{owner(manifest, scope)}"


def interfaces_root(root: str) -> str:
    return f"{root}/interfaces/"


def interface_key(root: str, service: str) -> str:
    return f"{root}/interfaces/{service}"


def push_key(root: str, what: str) -> str:
    """`manifest`, `plan` or `data` (instances recorded as started empty): the record of the
    last push, which `status` compares against."""
    return f"{root}/push/{what}"


def lock_key(root: str) -> str:
    """The manifest's lock (a Consul session holds it while submit or destroy writes)."""
    return f"{root}/lock"


def is_interface_of(key: str, service: str) -> bool:
    """Whether a key (anywhere under the KV prefix) is the interface document of a service."""
    return key.endswith(f"/interfaces/{service}")


def wait_key(root: str, service: str) -> str:
    """A key nobody writes: a template reading it waits, and Nomad shows it in the task's events."""
    return f"{root}/no-healthy-instance/{service}"


def owner_of_key(key: str) -> str:
    """The manifest (with `@scope`) that published an interface key."""
    return key.split("/")[-3]


def service_of_key(key: str) -> str:
    return key.rsplit("/", 1)[1]


# --- Zones ----------------------------------------------------------------------------------


class NodeLike(Protocol):
    """A node as zones see it: backends.Node, or a test's stand-in."""

    @property
    def datacenter(self) -> str: ...
    @property
    def meta(self) -> Mapping[str, str]: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


def node_zone(node: NodeLike, zone_attribute: str) -> str | None:
    """The zone of a node (anything with datacenter, meta and attributes) by the zone attribute
    (`${node.datacenter}`, `${meta.zone}`, `${attr.x}`); None when the node has none."""
    key = zone_attribute[2:-1]
    if key == "node.datacenter":
        return node.datacenter
    if key.startswith("meta."):
        return node.meta.get(key[5:]) or None
    if key.startswith("attr."):
        return node.attributes.get(key[5:]) or None
    return None
