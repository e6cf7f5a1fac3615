"""Rendering: pure functions from a Resolution to Nomad jobs (the API's JSON form, the single source of
truth) and to the interface documents published in Consul KV. No I/O here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any, NamedTuple, TypeVar

from . import names, stateful
from .groups import zone_grouped, zone_groups
from .kinds import KINDS, NODE_LOCAL
from .model import (
    Job,
    KVEntry,
    Link,
    RenderSettings,
    Resolution,
    Runtime,
    ServiceSet,
)

try:  # hashlib loads OpenSSL: start-up time for one digest per job (README: Speed)
    from _sha256 import sha256  # type: ignore[import-not-found]  # CPython 3.11
except ImportError:  # pragma: no cover
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12+
    except ImportError:  # other interpreters
        from hashlib import sha256

SECOND = 1_000_000_000
META_MANIFEST = "nomadgen_manifest"
META_SET = "nomadgen_set"
META_HASH = "nomadgen_spec_hash"
# On each instance's service: which instance of its group it is, for dependents' stable choice.
META_INDEX = "nomadgen_alloc_index"
_T = TypeVar("_T")
Shared = dict[tuple[Any, ...], Any]  # render's identical blocks, by what makes them
# A piece of an env value: literal text, or (field, set name) read from a dependency.
Segment = str | tuple[str, str]
_PH = re.compile(r"\{((?:env\.|secret\.)?[A-Za-z0-9_]+)\}")


def render(plan: Resolution, settings: RenderSettings = RenderSettings()) -> list[Job]:
    """One job per job-hosting set, sorted by ID. Node-local sets ride in their host's group.
    Identical blocks (update, spread, constraint) are one shared object across the jobs of a
    render: jobs are read-only once rendered, and a big manifest needs far less memory."""
    shared: Shared = {}
    return [render_job(plan, s, settings, shared) for s in plan.sets if s.job_hosted]


def _once(shared: Shared | None, key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
    if shared is None:
        return make()
    if key not in shared:
        shared[key] = make()
    out: _T = shared[key]
    return out


def render_job(
    plan: Resolution, s: ServiceSet, settings: RenderSettings, shared: Shared | None = None
) -> Job:
    zattr = Runtime(settings.zone_attribute)  # a runtime reference: written as such in HCL
    group: dict[str, Any] = {
        "Name": s.type,
        "Count": s.instance_count,
        # The hard guarantee: never more than per_zone_max instances in one zone.
        "Constraints": _once(
            shared,
            (
                "constraint",
                zattr,
                s.per_zone_max,
                plan.zones,
                s.constraints,
                s.node_pool,
                _datacenters(plan, settings),
            ),
            lambda: _constraints(plan, s, settings),
        ),
        "Spreads": _once(
            shared, ("spread", zattr, plan.zones), lambda: [_spread(zattr, plan.zones)]
        ),
        "Networks": [{"Mode": "host", "DynamicPorts": _ports(plan, s)}],
        "Services": _services(plan, s, settings),
        "Tasks": [_main_task(plan, s, settings)]
        + [_sidecar_task(plan, plan.get(e)) for e in s.embedded],
    }
    stateful.apply(group, group["Tasks"][0], s, settings)
    if not group["Networks"][0]["DynamicPorts"]:
        del group["Networks"]
    if not group["Services"]:
        del group["Services"]
    groups = [group]
    if zone_grouped(s, plan.zones):  # one group per zone: scaling stays in place (groups.py)
        groups = zone_groups(group, s, plan.zones, settings.zone_attribute)
    job: dict[str, Any] = {
        "ID": s.job_id,
        "Name": s.job_id,
        "Type": "service",
        "Datacenters": _once(shared, ("dcs",), lambda: list(_datacenters(plan, settings))),
        "Meta": {META_MANIFEST: plan.manifest, META_SET: s.name},
        "Update": _once(
            shared,
            ("update",),
            lambda: {
                "MaxParallel": 1,
                "HealthCheck": "checks",
                "MinHealthyTime": 10 * SECOND,
                "HealthyDeadline": 300 * SECOND,
                "ProgressDeadline": 600 * SECOND,
                "AutoRevert": True,
            },
        ),
        "TaskGroups": groups,
    }
    if settings.namespace and settings.namespace != "default":
        job["Namespace"] = settings.namespace
    if settings.region:
        job["Region"] = settings.region
    if settings.node_pool:  # Nomad 1.6+: only when nomad_version allows it (settings.py)
        job["NodePool"] = settings.node_pool
    digest = spec_hash(job)
    # The hash stays out of the job: job meta reaches every task, so Nomad would replace every
    # allocation on every change. "Changed?" is Nomad's own plan diff against the live job.
    return Job(id=s.job_id, set=s.name, api=job, spec_hash=digest)


def spec_hash(job: dict[str, Any]) -> str:
    """Hash of everything nomadgen sets, so an unchanged job is never registered again."""
    body = {k: v for k, v in job.items() if k != "Meta"}
    body["Meta"] = {k: v for k, v in job.get("Meta", {}).items() if k != META_HASH}
    return str(sha256(canonical(body)).hexdigest()[:16])


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _datacenters(plan: Resolution, settings: RenderSettings) -> tuple[str, ...]:
    if settings.datacenters:
        return settings.datacenters
    if settings.zone_attribute == "${node.datacenter}":
        return plan.zones
    return ("*",)


def _constraints(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> list[dict[str, Any]]:
    zattr = settings.zone_attribute
    out = [{"LTarget": zattr, "Operand": "distinct_property", "RTarget": str(s.per_zone_max)}]
    if tuple(_datacenters(plan, settings)) != plan.zones:
        # The zones are not the datacenters list: keep every instance inside the configured ones
        # (a spread alone only prefers them).
        out.append(
            {"LTarget": zattr, "Operand": "set_contains_any", "RTarget": ",".join(plan.zones)}
        )
    if s.node_pool:
        out.append({"LTarget": "${node.pool}", "Operand": "=", "RTarget": s.node_pool})
    for c in s.constraints:
        out.append({"LTarget": c.attribute, "Operand": c.operator, "RTarget": c.value})
    return out


def _spread(attr: str, zones: tuple[str, ...]) -> dict[str, Any]:
    pct = math.floor(100 / len(zones))  # the sum must stay <= 100; Nomad shares the rest evenly
    return {
        "Attribute": attr,
        "Weight": 100,
        "SpreadTarget": [{"Value": z, "Percent": pct} for z in zones],
    }


def port_label(s: ServiceSet) -> str:
    """An embedded set's port label: unique in its host group, valid in NOMAD_PORT_<label>."""
    return s.job_id.replace("-", "_")


def _ports(plan: Resolution, s: ServiceSet) -> list[dict[str, Any]]:
    ports = [{"Label": p.label, "Value": 0, "To": p.to} for p in s.run.ports]
    for e in s.embedded:
        emb = plan.get(e)
        for p in emb.run.ports:
            if p.label == emb.interface.port:
                ports.append({"Label": port_label(emb), "Value": 0, "To": p.to})
    return ports


def _service(
    plan: Resolution, s: ServiceSet, label: str, settings: RenderSettings
) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "Name": s.job_id,
        "PortLabel": label,
        "Provider": "consul",
        # Tags double as DNS filters: zone-a.psql-app.service.consul
        "Tags": [Runtime(settings.zone_attribute), f"set-{s.job_id}", *s.tags],
        "Meta": {
            META_MANIFEST: plan.manifest,
            META_SET: s.name,
            META_INDEX: Runtime("${NOMAD_ALLOC_INDEX}"),
        },
    }
    c = s.run.check
    if c is not None:
        check: dict[str, Any] = {
            "Name": f"{s.job_id} {c.type}",
            "Type": c.type,
            "Interval": c.interval_s * SECOND,
            "Timeout": c.timeout_s * SECOND,
        }
        if c.type == "http":
            check["Path"] = c.path
        check.update(stateful.check_fields(s, c))
        svc["Checks"] = [check]
    return svc


def _services(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> list[dict[str, Any]]:
    out = []
    if s.interface.port:
        out.append(_service(plan, s, s.interface.port, settings))
    for e in s.embedded:
        emb = plan.get(e)
        out.append(_service(plan, emb, port_label(emb), settings))
    return out


def _config(s: ServiceSet, ports: list[str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {"image": s.run.image}
    if s.run.command:
        cfg["command"] = s.run.command
    if s.run.args:
        cfg["args"] = list(s.run.args)
    if ports:
        cfg["ports"] = ports
    return cfg


def _main_task(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> dict[str, Any]:
    env = dict(s.run.env)
    wiring = _wire(plan, s, settings)
    env.update(wiring.env)
    blocks = list(wiring.template_blocks)
    if s.run.secrets_template:
        blocks.append(_secrets_block(plan, s))
    task: dict[str, Any] = {
        "Name": s.type,
        "Driver": "docker",
        "Config": _config(s, [p.label for p in s.run.ports]),
        "Resources": {"CPU": s.run.resources.cpu, "MemoryMB": s.run.resources.memory},
    }
    if env:
        task["Env"] = {k: env[k] for k in sorted(env)}
    if blocks:
        task["Templates"] = blocks
    return task


# -- wiring: how a dependent's task receives its dependencies ---------------------------------
# A value is a list of segments: literal text, or (what, set) with what in host | port | addrs |
# secret.<item>. Values that need nothing live go into the task's env; the rest into one template
# per dependency that reads only what they use: its instances, its credentials.


class _Wiring(NamedTuple):
    env: dict[str, str]
    template_blocks: list[dict[str, Any]]  # Nomad template blocks
    reads: list[Read]


class Read(NamedTuple):
    """What one of a dependent's template blocks reads live, so what re-renders it."""

    set: str  # the dependency
    instance: bool  # one instance (its own zone's, or the nearest)
    all_instances: bool  # the list of every healthy instance
    change_mode: str
    zone_fallback: bool = True  # a zone without an instance of a per-zone set reads another's


def reads(
    plan: Resolution, s: ServiceSet, settings: RenderSettings = RenderSettings()
) -> list[Read]:
    return _wire(plan, s, settings).reads


def _segments(
    dep: ServiceSet, pattern: str, plan: Resolution, settings: RenderSettings
) -> list[Any]:
    out: list[Any] = []
    pos = 0
    live = {"host", "port"} | {f"secret.{i}" for i in dep.run.secret_items}
    for m in _PH.finditer(pattern):
        if m.group(1) in live:
            out.append(pattern[pos : m.start()])
            out.append((m.group(1), dep.name))
            pos = m.end()
    out.append(pattern[pos:])
    return [
        _fill_static(x, dep, plan, settings) if isinstance(x, str) else x for x in out if x != ""
    ]


def _fill_static(text: str, dep: ServiceSet, plan: Resolution, settings: RenderSettings) -> str:
    return fill(text, dep, plan, settings, {})


def _field(dep: ServiceSet, field: str, plan: Resolution, settings: RenderSettings) -> list[Any]:
    if field == "addrs":
        return [("addrs", dep.name)]
    for suffix, pattern in dep.interface.env + dep.interface.extra:
        if suffix.lower() == field:
            return _segments(dep, pattern, plan, settings)
    raise KeyError(field)  # resolve checked every reference


def _wire(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> _Wiring:
    values: list[tuple[str, list[Segment]]] = []
    for link in s.links:
        if link.mapped:
            continue  # it chose its own names for this dependency
        dep = plan.get(link.set)
        for suffix, pattern in dep.interface.env:
            values.append((f"{link.prefix}_{suffix}", _segments(dep, pattern, plan, settings)))
    for var, parts in s.mapped_env:
        segs: list[Segment] = []
        for part in parts:
            segs.extend(
                [part]
                if isinstance(part, str)
                else _field(plan.get(part.dep), part.field, plan, settings)
            )
        values.append((var, segs))

    def local(name: str) -> bool:  # node-local in this group: same node, reached directly
        return plan.get(name).host == s.name

    env: dict[str, str] = {}
    per_dep: dict[str, list[tuple[str, list[Segment]]]] = {}
    for var, segs in values:
        remote = sorted({x[1] for x in segs if not isinstance(x, str) and not local(x[1])})
        secret = any(not isinstance(x, str) and x[0].startswith("secret.") for x in segs)
        if not remote and not secret:
            value = "".join(
                x if isinstance(x, str) else _local_ref(plan.get(x[1]), x[0]) for x in segs
            )
            # Nomad's own references (${NOMAD_IP_x}) read as such in HCL; literal text that
            # holds `${` keeps the value a plain, fully escaped string.
            runtime = value != "".join(x for x in segs if isinstance(x, str)) and not any(
                isinstance(x, str) and "${" in x for x in segs
            )
            env[var] = Runtime(value) if runtime else value
        else:
            # resolve allows one dependency read live per variable
            per_dep.setdefault(remote[0] if remote else segs_set(segs), []).append((var, segs))
    blocks, read = [], []
    for link in s.links:
        if link.set in per_dep:
            blocks.append(_dependency_block(plan, s, link, per_dep[link.set], settings))
            used = {
                x[0]
                for _, segs in per_dep[link.set]
                for x in segs
                if not isinstance(x, str) and x[1] == link.set
            }
            dep = plan.get(link.set)
            fallback = link.wiring.zone_fallback
            read.append(
                Read(
                    link.set,
                    bool(used & {"host", "port"}),
                    "addrs" in used,
                    link.wiring.change_mode,
                    dep.interface.zone_fallback if fallback is None else fallback,
                )
            )
    return _Wiring(env, blocks, read)


def segs_set(segs: list[Segment]) -> str:
    return next(x[1] for x in segs if not isinstance(x, str))


def _local_ref(dep: ServiceSet, what: str) -> str:
    # Docker maps the host port to the container port: NOMAD_PORT_<label> is the port inside
    # the sidecar's container, NOMAD_HOST_PORT_<label> the one reachable on the node's address
    # (client/taskenv/env.go, addGroupPort).
    label = port_label(dep)
    if what == "host":
        return "${NOMAD_IP_%s}" % label
    if what == "port":
        return "${NOMAD_HOST_PORT_%s}" % label
    return "${NOMAD_ADDR_%s}" % label  # addrs: the one beside this instance


def _go_string(text: str) -> str:
    """A Go string literal: JSON's escapes are Go's, and raw UTF-8 avoids surrogate escapes."""
    return json.dumps(text, ensure_ascii=False)


def _line(var: str, segs: list[Segment], arg: Callable[[tuple[str, str]], str]) -> str:
    """NAME={{ printf "literal %v literal" .Address | toJSON }}: every literal character stays
    literal (a Go string, % doubled), the value is quoted for the env file."""
    fmt, args = [], []
    url = any(isinstance(x, str) and "://" in x for x in segs)
    for x in segs:
        if isinstance(x, str):
            fmt.append(x.replace("%", "%%"))
        else:
            fmt.append("%v")
            a = arg(x)
            if x[0].startswith("secret.") and url:
                a = f"({a} | urlquery)"  # a password inside a URL
            args.append(a)
    if fmt == ["%v"] and not segs[0][0].startswith("secret."):
        return f"{var}={{{{ {args[0]} | toJSON }}}}"
    return f"{var}={{{{ printf {_go_string(''.join(fmt))} {' '.join(args)} | toJSON }}}}"


def wait_key(plan: Resolution, dep: ServiceSet, settings: RenderSettings) -> str:
    """A key nobody writes: reading it makes consul-template wait, and Nomad shows the reason
    (`Missing: kv.block(<this key>)`) in the task's events."""
    return names.wait_key(names.kv_root(settings.kv_prefix, plan.manifest), dep.job_id)


class WorkloadPolicy(NamedTuple):
    """A job-scoped Nomad ACL policy: the dependent's tasks may read these variables."""

    name: str
    description: str
    job: str
    group: str
    task: str
    paths: tuple[str, ...]

    def body(self, namespace: str) -> dict[str, Any]:
        rules = [f"namespace {json.dumps(namespace)} {{", "  variables {"]
        for p in self.paths:
            rules += [f"    path {json.dumps(p)} {{", '      capabilities = ["read"]', "    }"]
        rules += ["  }", "}", ""]
        return {
            "Name": self.name,
            "Description": self.description,
            "Rules": "\n".join(rules),
            "JobACL": {
                "Namespace": namespace,
                "JobID": self.job,
                "Group": self.group,
                "Task": self.task,
            },
        }


_NOMADVAR = re.compile(r'nomadVar\s+"([^"]+)"')


def workload_policies(manifest: str, jobs: list[Job]) -> list[WorkloadPolicy]:
    """For each task whose templates read variables outside its job's own `nomad/jobs/<job>`
    (which its workload identity reads anyway), a policy granting read on exactly those paths.
    A policy with a task is attached to one group (nomad/auth/auth.go
    ResolvePoliciesForClaims), so a job with zone groups has one per group and task."""
    out = []
    for j in jobs:
        for tg in j.api["TaskGroups"]:
            for task in tg["Tasks"]:
                paths = sorted(
                    {
                        p.split("@", 1)[0]
                        for tmpl in task.get("Templates") or ()
                        for p in _NOMADVAR.findall(tmpl["EmbeddedTmpl"])
                        if p != f"nomad/jobs/{j.id}" and not p.startswith(f"nomad/jobs/{j.id}/")
                    }
                )
                if paths:
                    who = (j.id, tg["Name"], task["Name"])
                    out.append(
                        WorkloadPolicy(
                            names.workload_policy_name(manifest, *who),
                            names.workload_policy_description(manifest, *who),
                            *who,
                            tuple(paths),
                        )
                    )
    return out


def _dependency_block(
    plan: Resolution,
    s: ServiceSet,
    link: Link,
    values: list[tuple[str, list[Segment]]],
    settings: RenderSettings,
) -> dict[str, Any]:
    dep = plan.get(link.set)
    svc = names.in_datacenter(dep.job_id, settings.consul_datacenter)
    items = sorted(
        {
            x[0][7:]
            for _, segs in values
            for x in segs
            if not isinstance(x, str) and x[0].startswith("secret.")
        }
    )
    uses_addrs = any(not isinstance(x, str) and x[0] == "addrs" for _, segs in values for x in segs)
    head: list[str] = []
    if items:
        head.append('{{- $creds := nomadVar "%s" }}' % credentials(dep, plan))
    if uses_addrs:
        # Every healthy instance, for clients that balance themselves.
        head.append(
            '{{- $addrs := "" }}{{ $sep := "" }}{{ range service "%s" }}'
            '{{ $addrs = printf "%%s%%s%%s:%%d" $addrs $sep .Address .Port }}'
            '{{ $sep = "," }}{{ end }}' % svc
        )

    def local(name: str) -> bool:  # node-local in this group: same allocation, no lookup
        return plan.get(name).host == s.name

    def arg(x: tuple[str, str]) -> str:
        what, name = x
        if name != dep.name or (local(name) and not what.startswith("secret.")):
            o = plan.get(name)
            return '(env "%s")' % _local_ref(o, what)[2:-1]
        if what == "addrs":
            return "$addrs"
        if what.startswith("secret."):
            return '(index $creds "%s")' % what[7:]
        return ".Address" if what == "host" else ".Port"

    def instance(x: Segment) -> bool:
        return (
            not isinstance(x, str)
            and x[1] == dep.name
            and x[0] in ("host", "port")
            and not local(dep.name)
        )

    live = [_line(v, segs, arg) for v, segs in values if any(instance(x) for x in segs)]
    rest = [_line(v, segs, arg) for v, segs in values if not any(instance(x) for x in segs)]
    body = head
    if live:
        wait = '{{ key "%s" }}' % wait_key(plan, dep, settings)
        # Nearest healthy instance first (RTT from this node's agent).
        nearest = (
            'with service "%s~_agent" }}{{ with index . 0 }}\n%s\n{{- end }}{{ else }}%s{{ end }}'
            % (svc, "\n".join(live), wait)
        )
        fallback = link.wiring.zone_fallback
        if fallback is None:
            fallback = dep.interface.zone_fallback
        if KINDS[dep.kind].zoned:
            # This instance's own zone first (the zone tag of each instance's service), and in
            # it the instance with the lowest alloc index: consul-template sorts by node, then
            # service ID (dependency/health_service.go ByNodeThenID), so `index . 0` could
            # switch when an instance is added; new allocations take higher indexes
            # (scheduler/reconcile_util.go allocNameIndex), so this choice stays on a scale.
            # A zone without one falls back (when allowed) to the lowest index of all: unlike
            # the nearest by RTT, a scale that leaves this zone as it was does not move it, so
            # plan can say which dependents reload (diff.py _reloads).
            zone_key = settings.zone_attribute[2:-1]
            lowest = (
                "  {{- $i := parseInt .ServiceMeta.%s }}\n"
                "  {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}\n"
                "{{- end }}\n" % META_INDEX
            )
            own = (
                '{{- $pick := "" }}{{ $low := -1 }}\n'
                '{{- range service (print (env "%s") ".%s") }}\n%s' % (zone_key, svc, lowest)
            )
            if fallback:
                own += '{{- if lt $low 0 }}{{ range service "%s" }}\n%s{{- end }}\n' % (
                    svc,
                    lowest,
                )
            body.append(
                own + "{{- with $pick }}\n%s\n{{- else }}%s{{ end }}" % ("\n".join(live), wait)
            )
        else:
            body.append("{{- " + nearest)
    body.extend(rest)
    tmpl: dict[str, Any] = {
        "EmbeddedTmpl": "\n".join(body) + "\n",
        "DestPath": f"{'secrets' if items else 'local'}/nomadgen/{dep.job_id}.env",
        "Envvars": True,
        "ChangeMode": link.wiring.change_mode,
    }
    return tmpl


def _secrets_block(plan: Resolution, s: ServiceSet) -> dict[str, Any]:
    """The set's own credentials (its template's secrets_template) for its task."""
    return {
        "EmbeddedTmpl": s.run.secrets_template.replace("{credentials}", credentials(s, plan))
        + "\n",
        "DestPath": "secrets/nomadgen.env",
        "Envvars": True,
        "ChangeMode": "restart",
    }


def _sidecar_task(plan: Resolution, emb: ServiceSet) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Name": emb.job_id,
        "Driver": "docker",
        # Started before the main task and kept running beside it, in the same allocation.
        "Lifecycle": {"Hook": "prestart", "Sidecar": True},
        "Config": _config(emb, [port_label(emb)]),
        "Resources": {"CPU": emb.run.resources.cpu, "MemoryMB": emb.run.resources.memory},
        **({"Env": dict(sorted(emb.run.env))} if emb.run.env else {}),
    }
    if emb.run.secrets_template:
        task["Templates"] = [_secrets_block(plan, emb)]
    return task


def interface_key(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> str:
    return names.interface_key(names.kv_root(settings.kv_prefix, plan.manifest), s.job_id)


def credentials(s: ServiceSet, plan: Resolution) -> str:
    return names.credentials_path(s.interface.credentials, s.job_id)


def fill(
    pattern: str, s: ServiceSet, plan: Resolution, settings: RenderSettings, values: dict[str, str]
) -> str:
    base = {
        "dns": names.dns(s.job_id, settings.consul_domain, settings.consul_datacenter),
        "service": s.job_id,
        "set": s.name,
        "job": s.job_id,
        "credentials": credentials(s, plan),
    }
    base.update({f"env.{k}": v for k, v in s.run.env})
    base.update(values)
    return _PH.sub(lambda m: base.get(m.group(1), m.group(0)), pattern)


def ct_literal(text: str) -> str:
    """Literal text inside consul-template: delimiters become string actions, never code."""
    return re.sub(r"(\{\{|\}\})", lambda m: '{{ "%s" }}' % m.group(1), text)


def interfaces(plan: Resolution, settings: RenderSettings = RenderSettings()) -> list[KVEntry]:
    """The interface document of every set, as published under <prefix>/<manifest>/interfaces/."""
    return [
        KVEntry(interface_key(plan, s, settings), interface_document(plan, s, settings))
        for s in plan.sets
    ]


def interface_document(plan: Resolution, s: ServiceSet, settings: RenderSettings) -> bytes:
    prefix = s.type.upper().replace("-", "_")
    dom = settings.consul_domain
    doc = {
        "set": s.name,
        "type": s.type,
        "manifest": plan.manifest,
        "service": s.job_id,
        "dns": names.dns(s.job_id, dom, settings.consul_datacenter),
        "srv": names.srv(s.job_id, dom, datacenter=settings.consul_datacenter),
        "port_label": port_label(s) if s.kind == NODE_LOCAL else s.interface.port,
        "protocol": s.interface.protocol,
        "url": fill(s.interface.url, s, plan, settings, {}) if s.interface.url else "",
        "env": sorted(f"{prefix}_{suffix}" for suffix, _ in s.interface.env),
        "credentials": credentials(s, plan),
        "scheduling": s.kind,
        "zones": list(plan.zones) if KINDS[s.kind].zoned else [],
        "host": names.dns_name(s.host) if s.host else "",
        "instances": s.instance_count,
        "users": list(s.users),
    }
    if s.external:
        doc["external"] = {"address": s.external[0], "port": s.external[1]}
    doc.update(home(settings))
    doc["version"] = sha256(canonical(doc)).hexdigest()[:16]
    return pretty_json(doc).encode() + b"\n"


def home(settings: RenderSettings) -> dict[str, str]:
    """Where a deployment lives, as its KV records say it (interface documents, push record):
    the Nomad namespace, left out for `default` (as nomadgen wrote every record before it was
    recorded, so an unrecorded one reads as default), and the region when one is set. Consul is
    shared by every Nomad namespace; diff.foreign_records reads this back."""
    out = {}
    if (settings.namespace or "default") != "default":
        out["namespace"] = settings.namespace
    if settings.region:
        out["region"] = settings.region
    return out


def to_json(job: Job | dict[str, Any]) -> str:
    api = job.api if isinstance(job, Job) else job
    return pretty_json({"Job": api}) + "\n"


def pretty_json(obj: object, indent: str = "  ") -> str:
    """The same bytes as json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False), about
    1.5x faster: with an indent the stdlib falls back to its pure-Python generator encoder."""
    out: list[str] = []
    _encode(obj, "", indent, out.append)
    return "".join(out)


# Module-level rather than a closure in pretty_json: a nested function that calls itself is a
# reference cycle, which kept every job's text fragments alive while the CLI runs with the
# cyclic collector off (2.3 GB at 50k services instead of under 600 MB).
def _encode(o: object, pad: str, indent: str, app: Callable[[str], None]) -> None:
    if type(o) is str:
        app(encode_basestring(o))
    elif type(o) is dict:
        if not o:
            app("{}")
            return
        inner = pad + indent
        sep = "{\n" + inner
        for k in sorted(o):
            app(sep + encode_basestring(k) + ": ")
            sep = ",\n" + inner
            _encode(o[k], inner, indent, app)
        app("\n" + pad + "}")
    elif type(o) is list or type(o) is tuple:
        if not o:
            app("[]")
            return
        inner = pad + indent
        sep = "[\n" + inner
        for v in o:
            app(sep)
            sep = ",\n" + inner
            _encode(v, inner, indent, app)
        app("\n" + pad + "]")
    elif o is True:  # most scalars in a job are numbers and booleans: no json.dumps call
        app("true")
    elif o is False:
        app("false")
    elif o is None:
        app("null")
    elif type(o) is int:
        app(int.__repr__(o))
    elif isinstance(o, str):
        app(encode_basestring(o))
    elif isinstance(o, dict):
        _encode(dict(o), pad, indent, app)
    elif isinstance(o, list | tuple):
        _encode(list(o), pad, indent, app)
    else:
        app(json.dumps(o))
