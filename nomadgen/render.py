"""Rendering: pure functions from a Plan to Nomad jobs (the API's JSON form, the single source of
truth) and to the interface documents published in Consul KV. No I/O here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]

from . import names, stateful
from .kinds import KINDS, NODE_LOCAL
from .model import (
    Job,
    KVEntry,
    Plan,
    Runtime,
    ServiceSet,
    Settings,
)

try:  # hashlib loads OpenSSL: 2 ms of start-up for one digest per job
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import sha256

SECOND = 1_000_000_000
META_MANIFEST = "nomadgen_manifest"
META_SET = "nomadgen_set"
META_HASH = "nomadgen_spec_hash"
_PH = re.compile(r"\{([a-z_]+)\}")


def render(plan: Plan, settings: Settings = Settings()) -> list[Job]:
    """One job per job-hosting set, sorted by ID. Node-local sets ride in their host's group.
    Identical blocks (update, spread, constraint) are one shared object across the jobs of a
    render: jobs are read-only once rendered, and a big manifest needs far less memory."""
    shared: dict = {}
    return [render_job(plan, s, settings, shared) for s in plan.sets if s.job_hosted]


def _once(shared: dict | None, key: tuple, make):
    if shared is None:
        return make()
    if key not in shared:
        shared[key] = make()
    return shared[key]


def render_job(plan: Plan, s: ServiceSet, settings: Settings, shared: dict | None = None) -> Job:
    zattr = Runtime(settings.zone_attribute)  # a runtime reference: written as such in HCL
    group: dict = {
        "Name": s.type,
        "Count": s.count,
        # The hard guarantee: never more than per_zone_max instances in one zone.
        "Constraints": _once(shared, ("constraint", zattr, s.per_zone_max), lambda: [
            {"LTarget": zattr, "Operand": "distinct_property", "RTarget": str(s.per_zone_max)}]),
        "Spreads": _once(shared, ("spread", zattr, plan.zones), lambda: [_spread(zattr, plan.zones)]),
        "Networks": [{"Mode": "host", "DynamicPorts": _ports(plan, s)}],
        "Services": _services(plan, s, settings),
        "Tasks": [_main_task(plan, s, settings)] + [
            _sidecar_task(plan.get(e)) for e in s.embedded],
    }
    stateful.apply(group, group["Tasks"][0], s, settings)
    if not group["Networks"][0]["DynamicPorts"]:
        del group["Networks"]
    if not group["Services"]:
        del group["Services"]
    job: dict = {
        "ID": s.job_id,
        "Name": s.job_id,
        "Type": "service",
        "Datacenters": _once(shared, ("dcs",), lambda: list(_datacenters(plan, settings))),
        "Meta": {META_MANIFEST: plan.manifest, META_SET: s.name},
        "Update": _once(shared, ("update",), lambda: {
            "MaxParallel": 1,
            "HealthCheck": "checks",
            "MinHealthyTime": 10 * SECOND,
            "HealthyDeadline": 300 * SECOND,
            "ProgressDeadline": 600 * SECOND,
            "AutoRevert": True,
        }),
        "TaskGroups": [group],
    }
    if settings.namespace and settings.namespace != "default":
        job["Namespace"] = settings.namespace
    if settings.region:
        job["Region"] = settings.region
    if settings.node_pool:  # Nomad 1.6+: only when nomad_version allows it (settings.py)
        job["NodePool"] = settings.node_pool
    digest = spec_hash(job)
    job["Meta"][META_HASH] = digest
    return Job(id=s.job_id, set=s.name, api=job, spec_hash=digest)


def spec_hash(job: dict) -> str:
    """Hash of everything nomadgen sets, so an unchanged job is never registered again."""
    body = {k: v for k, v in job.items() if k != "Meta"}
    body["Meta"] = {k: v for k, v in job.get("Meta", {}).items() if k != META_HASH}
    return sha256(canonical(body)).hexdigest()[:16]


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _datacenters(plan: Plan, settings: Settings) -> tuple[str, ...]:
    if settings.datacenters:
        return settings.datacenters
    if settings.zone_attribute == "${node.datacenter}":
        return plan.zones
    return ("*",)


def _spread(attr: str, zones: tuple[str, ...]) -> dict:
    pct = math.floor(100 / len(zones))  # the sum must stay <= 100; Nomad shares the rest evenly
    return {
        "Attribute": attr,
        "Weight": 100,
        "SpreadTarget": [{"Value": z, "Percent": pct} for z in zones],
    }


def port_label(s: ServiceSet) -> str:
    """An embedded set's port label: unique in its host group, valid in NOMAD_PORT_<label>."""
    return s.job_id.replace("-", "_")


def _ports(plan: Plan, s: ServiceSet) -> list[dict]:
    ports = [{"Label": p.label, "Value": 0, "To": p.to} for p in s.run.ports]
    for e in s.embedded:
        emb = plan.get(e)
        for p in emb.run.ports:
            if p.label == emb.interface.port:
                ports.append({"Label": port_label(emb), "Value": 0, "To": p.to})
    return ports


def _service(plan: Plan, s: ServiceSet, label: str, settings: Settings) -> dict:
    svc: dict = {
        "Name": s.job_id,
        "PortLabel": label,
        "Provider": "consul",
        # Tags double as DNS filters: zone-a.psql-app.service.consul
        "Tags": [Runtime(settings.zone_attribute), f"set-{s.job_id}"],
        "Meta": {META_MANIFEST: plan.manifest, META_SET: s.name},
    }
    c = s.run.check
    if c is not None:
        check: dict = {
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


def _services(plan: Plan, s: ServiceSet, settings: Settings) -> list[dict]:
    out = []
    if s.interface.port:
        out.append(_service(plan, s, s.interface.port, settings))
    for e in s.embedded:
        emb = plan.get(e)
        out.append(_service(plan, emb, port_label(emb), settings))
    return out


def _config(s: ServiceSet, ports: list[str]) -> dict:
    cfg: dict = {"image": s.run.image}
    if s.run.command:
        cfg["command"] = s.run.command
    if s.run.args:
        cfg["args"] = list(s.run.args)
    if ports:
        cfg["ports"] = ports
    return cfg


def _main_task(plan: Plan, s: ServiceSet, settings: Settings) -> dict:
    env = dict(s.run.env)
    templates = []
    for dep_name, prefix in s.prefixes:
        dep = plan.get(dep_name)
        if dep.kind == NODE_LOCAL:
            # Node-local: same group, so same node; reach it on the node's own address.
            label = port_label(dep)
            values = {"host": "${NOMAD_IP_%s}" % label, "port": "${NOMAD_PORT_%s}" % label}
            for suffix, pattern in dep.interface.env:
                env[f"{prefix}_{suffix}"] = Runtime(fill(pattern, dep, plan, settings, values))
        else:
            templates.append(_dependency_template(plan, dep, prefix, settings))
    if s.run.secrets_template:
        templates.append({
            "EmbeddedTmpl": s.run.secrets_template.replace("{credentials}", credentials(s, plan)) + "\n",
            "DestPath": "secrets/nomadgen.env",
            "Envvars": True,
            "ChangeMode": "restart",
        })
    task: dict = {
        "Name": s.type,
        "Driver": "docker",
        "Config": _config(s, [p.label for p in s.run.ports]),
        "Resources": {"CPU": s.run.resources.cpu, "MemoryMB": s.run.resources.memory},
    }
    if env:
        task["Env"] = {k: env[k] for k in sorted(env)}
    if templates:
        task["Templates"] = templates
    return task


def _sidecar_task(emb: ServiceSet) -> dict:
    return {
        "Name": emb.job_id,
        "Driver": "docker",
        # Started before the main task and kept running beside it, in the same allocation.
        "Lifecycle": {"Hook": "prestart", "Sidecar": True},
        "Config": _config(emb, [port_label(emb)]),
        "Resources": {"CPU": emb.run.resources.cpu, "MemoryMB": emb.run.resources.memory},
        **({"Env": dict(sorted(emb.run.env))} if emb.run.env else {}),
    }


def interface_key(plan: Plan, s: ServiceSet, settings: Settings) -> str:
    return names.interface_key(names.kv_root(settings.kv_prefix, plan.manifest), s.job_id)


def credentials(s: ServiceSet, plan: Plan) -> str:
    return names.credentials_path(s.interface.credentials, s.job_id)


def fill(pattern: str, s: ServiceSet, plan: Plan, settings: Settings, values: dict[str, str]) -> str:
    base = {
        "dns": names.dns(s.job_id, settings.consul_domain),
        "service": s.job_id,
        "set": s.name,
        "job": s.job_id,
        "credentials": credentials(s, plan),
    }
    base.update(values)
    return _PH.sub(lambda m: base.get(m.group(1), m.group(0)), pattern)


def ct_literal(text: str) -> str:
    """Literal text inside consul-template: delimiters become string actions, never code."""
    return re.sub(r"(\{\{|\}\})", lambda m: '{{ "%s" }}' % m.group(1), text)


def _dependency_template(plan: Plan, dep: ServiceSet, prefix: str, settings: Settings) -> dict:
    key = interface_key(plan, dep, settings)
    live = {"host": "\x00host\x00", "port": "\x00port\x00"}
    lines_live, lines_static = [], []
    for suffix, pattern in dep.interface.env:
        text = fill(pattern, dep, plan, settings, live)
        line = ct_literal(f"{prefix}_{suffix}=" + text)
        line = line.replace("\x00host\x00", "{{ .Address }}").replace("\x00port\x00", "{{ .Port }}")
        (lines_live if "{{ ." in line else lines_static).append(line)
    body = [
        # Nearest healthy instance first (RTT from this node's agent): the same zone when there is one.
        '{{- with service "%s~_agent" }}{{ with index . 0 }}' % dep.job_id,
        *lines_live,
        "{{- end }}{{ end }}",
        *lines_static,
        # Reading the interface document makes a change to it re-render and reload this task.
        '{{ with key "%s" | parseJSON }}%s_INTERFACE_VERSION={{ .version }}{{ end }}' % (key, prefix),
        "",
    ]
    return {
        "EmbeddedTmpl": "\n".join(body),
        "DestPath": f"local/nomadgen/{dep.job_id}.env",
        "Envvars": True,
        "ChangeMode": "restart",
    }


def interfaces(plan: Plan, settings: Settings = Settings()) -> list[KVEntry]:
    """The interface document of every set, as published under <prefix>/<manifest>/interfaces/."""
    return [KVEntry(interface_key(plan, s, settings), interface_document(plan, s, settings))
            for s in plan.sets]


def interface_document(plan: Plan, s: ServiceSet, settings: Settings) -> bytes:
    prefix = s.type.upper().replace("-", "_")
    dom = settings.consul_domain
    doc = {
        "set": s.name,
        "type": s.type,
        "manifest": plan.manifest,
        "service": s.job_id,
        "dns": names.dns(s.job_id, dom),
        "srv": names.srv(s.job_id, dom),
        "port_label": port_label(s) if s.kind == NODE_LOCAL else s.interface.port,
        "protocol": s.interface.protocol,
        "url": fill(s.interface.url, s, plan, settings, {}) if s.interface.url else "",
        "env": sorted(f"{prefix}_{suffix}" for suffix, _ in s.interface.env),
        "credentials": credentials(s, plan),
        "scheduling": s.kind,
        "zones": list(plan.zones) if KINDS[s.kind].zoned else [],
        "host": names.dns_name(s.host) if s.host else "",
        "instances": s.count,
        "users": list(s.users),
    }
    if s.external:
        doc["external"] = {"address": s.external[0], "port": s.external[1]}
    doc["version"] = sha256(canonical(doc)).hexdigest()[:16]
    return pretty_json(doc).encode() + b"\n"


def to_json(job: Job | dict) -> str:
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
