"""Observe: one read of the cluster into a plain record of what is (Observed), for the pure diff
(diff.py) and for `status`. Nothing here decides anything; it only reads, through the backends'
protocols, and the record round-trips through JSON (the golden diff cases store it).

Nomad's dry-run plan of each desired job is part of what is observed: it is Nomad's own word on
whether the live job differs (drift included) and whether a change is in place or destructive.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from . import names
from .errors import PermissionDenied, Problem
from .model import EXTERNAL, Job, RenderSettings, Resolution
from .render import META_MANIFEST

if TYPE_CHECKING:
    from .backends import ConsulAPI, Node, NomadAPI
    from .render import WorkloadPolicy


class Observed(NamedTuple):
    """What is, for one manifest (its owner name: `dockland` or `dockland@prod`)."""

    manifest: str
    jobs: dict[str, dict[str, Any]]  # every live job stub in the namespace, with its Meta
    plans: dict[str, dict[str, Any]]  # Nomad's dry-run plan per desired job (Diff, FailedTGAllocs)
    kv: dict[str, tuple[bytes, int]]  # the manifest's KV tree: value and ModifyIndex
    services: dict[str, dict[str, Any]] = {}  # agent services (read when nomadgen may own some)
    variables: dict[str, bool] = {}  # the credential paths nomadgen generates: present?
    policies: dict[str, dict[str, Any]] | None = None  # ACL policies; None: no ACLs
    # Health reads (plan and status; submit judges health itself while it waits):
    deployments: dict[str, dict[str, Any]] = {}  # latest deployment per owned job
    allocations: dict[str, list[dict[str, Any]]] = {}  # allocation stubs per owned job
    groups: dict[str, dict[str, int]] = {}  # per owned job: its groups' counts
    checked: dict[str, list[str]] = {}  # per owned job: its Consul services that have checks
    passing: dict[str, int] = {}  # Consul: passing instances per service name
    nodes: tuple[Node, ...] = ()
    # Interface documents of other manifests under the KV prefix that publish a service name
    # this manifest wants: key -> {"owner", "service", "namespace"} (diff.claimed_services).
    claims: dict[str, dict[str, str]] = {}

    def owned(self) -> list[str]:
        """The live jobs whose meta names this manifest (no push record needed)."""
        return sorted(
            jid
            for jid, s in self.jobs.items()
            if (s.get("Meta") or {}).get(META_MANIFEST) == self.manifest
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "jobs": self.jobs,
            "plans": self.plans,
            "kv": {k: _value_json(v, i) for k, (v, i) in sorted(self.kv.items())},
            "services": self.services,
            "variables": self.variables,
            "policies": self.policies,
            "deployments": self.deployments,
            "allocations": self.allocations,
            "groups": self.groups,
            "checked": self.checked,
            "passing": self.passing,
            "nodes": [n._asdict() for n in self.nodes],
            "claims": self.claims,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Observed:
        from .backends import Node

        return cls(
            doc["manifest"],
            doc.get("jobs") or {},
            doc.get("plans") or {},
            {k: _value_of(v) for k, v in (doc.get("kv") or {}).items()},
            doc.get("services") or {},
            doc.get("variables") or {},
            doc.get("policies"),
            doc.get("deployments") or {},
            doc.get("allocations") or {},
            doc.get("groups") or {},
            doc.get("checked") or {},
            doc.get("passing") or {},
            tuple(Node(**n) for n in doc.get("nodes") or ()),
            doc.get("claims") or {},
        )


def _value_json(value: bytes, index: int) -> dict[str, Any]:
    try:
        return {"value": value.decode("utf-8"), "index": index}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii"), "index": index}


def _value_of(doc: dict[str, Any]) -> tuple[bytes, int]:
    if "base64" in doc:
        return base64.b64decode(doc["base64"]), int(doc["index"])
    return str(doc["value"]).encode("utf-8"), int(doc["index"])


def observe(
    plan: Resolution,
    jobs: Iterable[Job],
    nomad: NomadAPI,
    consul: ConsulAPI,
    settings: RenderSettings,
    *,
    prune: bool = False,
    dry_run: bool = True,
    health: bool = False,
    nodes: Iterable[Node] = (),
    concurrency: int = 16,
) -> Observed:
    """Read what the diff needs. Every owned live job that the manifest declares is planned
    (the diff is what says "changed"); dry_run=False skips only new jobs' dry runs (a quick
    re-read that compares job indexes). health=True also reads each owned job's latest
    deployment, allocations and group counts, and the Consul checks of the manifest's sets."""
    jobs = list(jobs)
    current = nomad.jobs()
    manifest = plan.manifest

    def ours(jid: str) -> bool:
        return (current[jid].get("Meta") or {}).get(META_MANIFEST) == manifest

    todo = [
        j.api for j in jobs if (j.id in current and ours(j.id)) or (dry_run and j.id not in current)
    ]
    owned = sorted(jid for jid in current if ours(jid)) if health else []

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        planned = pool.map(nomad.plan, todo)
        healths = pool.map(lambda jid: _health_reads(nomad, jid), owned)
        plans = {j["ID"]: p for j, p in zip(todo, planned, strict=True)}
        read = dict(zip(owned, healths, strict=True))

    root = names.kv_root(settings.kv_prefix, manifest)
    externals = [s for s in plan.sets if s.kind == EXTERNAL]
    services = consul.services() if externals or prune else {}
    variables = {}
    for s in plan.sets:
        if s.run.secret_items and s.kind != EXTERNAL:  # node-local sets' too
            path = names.credentials_path(s.interface.credentials, s.job_id)
            variables[path] = nomad.variable_exists(path)
    policies = nomad.acl_policies()
    if policies is not None:
        from .render import workload_policies

        wanted = workload_policies(manifest, jobs)
        if wanted and not nomad.acl_management():
            raise needs_management(wanted)
        for p in wanted:
            if p.name in policies:
                policies[p.name] = nomad.acl_policy(p.name) or policies[p.name]
    services_seen = [names.job_id(s.name, settings.scope) for s in plan.sets] if health else []
    claims = read_claims(consul, settings.kv_prefix, manifest, {s.job_id for s in plan.sets})
    return Observed(
        manifest,
        current,
        plans,
        consul.kv_tree(root),
        services,
        variables,
        policies,
        {jid: h.deployment for jid, h in read.items() if h.deployment is not None},
        {jid: h.allocations for jid, h in read.items()},
        {jid: h.groups for jid, h in read.items()},
        {jid: h.checked for jid, h in read.items()},
        {svc: len(consul.healthy(svc)) for svc in services_seen},
        tuple(nodes),
        claims,
    )


def read_claims(
    consul: ConsulAPI, kv_prefix: str, manifest: str, services: set[str]
) -> dict[str, dict[str, str]]:
    """The interface documents other manifests publish under the KV prefix for any of these
    service names: one listing of the prefix's keys, then each such document (rare) for its
    namespace. A token that cannot read every key there would see only some (Consul filters
    list results by ACL): that is permission denied, said before anything is written."""
    base = kv_prefix.rstrip("/") + "/"
    keys, filtered = consul.kv_keys(base)
    if filtered:
        raise PermissionDenied(
            f"the Consul token cannot list every key under {base}, so the service names other "
            "manifests publish cannot be checked; nothing was written",
            hint=f'set CONSUL_HTTP_TOKEN (or --consul-token-file) to a token with key_prefix "{base}" '
            "{ policy = \"list\" } (README 'ACL policies'): one Consul catalog serves every Nomad "
            "namespace and manifest",
        )
    out = {}
    for key in keys:
        owner, sep, rest = key[len(base) :].partition("/interfaces/")
        if not sep or owner == manifest or "/" in owner or rest not in services:
            continue
        got = consul.kv_get(key)
        try:
            doc = json.loads(got[0]) if got else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict) or doc.get("service") != rest:
            continue  # not an interface document nomadgen wrote
        ns = doc.get("namespace")
        out[key] = {"owner": owner, "service": rest, "namespace": ns if isinstance(ns, str) else ""}
    return out


class _Reads(NamedTuple):
    deployment: dict[str, Any] | None
    allocations: list[dict[str, Any]]
    groups: dict[str, int]
    checked: list[str]


def _health_reads(nomad: NomadAPI, jid: str) -> _Reads:
    live = nomad.job(jid) or {}
    groups = live.get("TaskGroups") or ()
    checked = sorted(
        {
            svc["Name"]
            for g in groups
            for svc in tuple(g.get("Services") or ())
            + tuple(x for t in g.get("Tasks") or () for x in t.get("Services") or ())
            if svc.get("Checks")
        }
    )
    return _Reads(
        nomad.deployment(jid),
        nomad.allocations(jid),
        {g["Name"]: int(g.get("Count") or 0) for g in groups},
        checked,
    )


def observe_owned(
    manifest: str,
    nomad: NomadAPI,
    consul: ConsulAPI,
    settings: RenderSettings,
    *,
    nodes: Iterable[Node] = (),
    concurrency: int = 16,
) -> Observed:
    """What `status` reads without a manifest: the jobs this manifest owns (by their meta, no
    push record needed) with their deployments, allocations and checks, its KV keys and its
    external services."""
    current = nomad.jobs()
    owned = sorted(
        jid for jid, s in current.items() if (s.get("Meta") or {}).get(META_MANIFEST) == manifest
    )
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        read = dict(zip(owned, pool.map(lambda jid: _health_reads(nomad, jid), owned), strict=True))
    services = consul.services()
    watched = sorted({svc for h in read.values() for svc in h.checked})
    return Observed(
        manifest,
        current,
        {},
        consul.kv_tree(names.kv_root(settings.kv_prefix, manifest)),
        services,
        {},
        None,
        {jid: h.deployment for jid, h in read.items() if h.deployment is not None},
        {jid: h.allocations for jid, h in read.items()},
        {jid: h.groups for jid, h in read.items()},
        {jid: h.checked for jid, h in read.items()},
        {svc: len(consul.healthy(svc)) for svc in watched},
        tuple(nodes),
    )


def needs_management(wanted: list[WorkloadPolicy]) -> PermissionDenied:
    """A client token lists only the ACL policies it holds and writes none (nomad/acl_endpoint.go
    ListPolicies, UpsertPolicies): plan could not tell what is in place, and submit or destroy
    would fail half-way or leave them behind unseen. Said before anything is written."""
    return PermissionDenied(
        "the job-scoped ACL policies of this manifest need a management Nomad token",
        [
            Problem(
                f"acl policy {p.name}: job {p.job}, group {p.group}, task {p.task} reads "
                + ", ".join(p.paths)
            )
            for p in wanted
        ],
        hint="Nomad lists and writes ACL policies only for management tokens; run this with one "
        "(NOMAD_TOKEN, --nomad-token-file), see README 'ACL policies'",
    )
