"""The schema part: the job walked against ``components.schemas.Job`` of Nomad's published
OpenAPI spec (read from ``../shared``, never copied into the repo). The spec is loose, so the walk
is made strict: unknown keys are errors (Go's decoder would silently drop them, which is how typos
ship), types and integer ranges are enforced, ``null`` means "absent". Durations and string maps
are typed without the spec too (check_typed_fields)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .gosyntax import go_quote, parse_go_duration
from .values import is_int, type_name

_REPO_ROOT = Path(__file__).resolve().parents[3]  # dev/jobcheck/nomad_jobcheck/schema.py


# Fields real Nomad (1.5 .. 2.0) accepts that the 1.4-era OpenAPI spec lacks, plus a few that
# only appear in GET responses. Without this the strict walk would reject valid jobs. Shorthand
# types: string/integer/number/boolean/any, duration (integer ns), Component, [T] list, {T} map
# of T. Components the spec does not have (Disconnect, WorkloadIdentity, ...) are defined here.
POST_1_4_FIELDS: dict[str, dict[str, str]] = {
    "Job": {"NodePool": "string", "UI": "JobUIConfig", "VersionTag": "JobVersionTag"},
    "JobUIConfig": {"Description": "string", "Links": "[JobUILink]"},
    "JobUILink": {"Label": "string", "URL": "string"},
    "JobVersionTag": {
        "Name": "string",
        "Description": "string",
        "TaggedTime": "integer",
    },
    "PeriodicConfig": {"Specs": "[string]"},
    "TaskGroup": {
        "Disconnect": "DisconnectStrategy",
        "PreventRescheduleOnLost": "boolean",
    },
    "DisconnectStrategy": {
        "LostAfter": "duration",
        "Replace": "boolean",
        "Reconcile": "string",
        "StopOnClientAfter": "duration",
    },
    "Consul": {"Cluster": "string", "Partition": "string"},
    "Task": {
        "Identity": "WorkloadIdentity",
        "Identities": "[WorkloadIdentity]",
        "Actions": "[Action]",
        "Consul": "Consul",
        "Schedule": "TaskSchedule",
    },
    "WorkloadIdentity": {
        "Name": "string",
        "Audience": "[string]",
        "ChangeMode": "string",
        "ChangeSignal": "string",
        "Env": "boolean",
        "File": "boolean",
        "Filepath": "string",
        "ServiceName": "string",
        "TTL": "duration",
        "ExtraClaims": "{string}",
    },
    "Action": {"Name": "string", "Command": "string", "Args": "[string]"},
    "TaskSchedule": {"Cron": "TaskScheduleCron"},
    "TaskScheduleCron": {"Start": "string", "End": "string", "Timezone": "string"},
    "Resources": {"NUMA": "NUMAResource", "SecretsMB": "integer"},
    "NUMAResource": {"Affinity": "string", "Devices": "[string]"},
    "RestartPolicy": {"RenderTemplates": "boolean"},
    "LogConfig": {"Disabled": "boolean", "Enabled": "boolean"},
    "Template": {"ErrMissingKey": "boolean", "Once": "boolean"},
    "Vault": {
        "Role": "string",
        "Cluster": "string",
        "AllowTokenExpiration": "boolean",
        "DisableFile": "boolean",
    },
    "VolumeMount": {"SELinuxLabel": "string"},
    "VolumeRequest": {"Sticky": "boolean"},
    "TaskArtifact": {"Chown": "boolean", "GetterInsecure": "boolean"},
    "NetworkResource": {"CNI": "CNIConfig"},
    "CNIConfig": {"Args": "{string}"},
    "Port": {"IgnoreCollision": "boolean"},
    "Service": {
        "Weights": "ServiceWeights",
        "Identity": "WorkloadIdentity",
        "Cluster": "string",
        "Kind": "string",
        "Namespace": "string",
    },
    "ServiceWeights": {"Passing": "integer", "Warning": "integer"},
    "ServiceCheck": {
        "Notes": "string",
        "TLSServerName": "string",
        "FailuresBeforeWarning": "integer",
    },
    "ConsulSidecarService": {"Meta": "{string}"},
    "ConsulProxy": {
        "TransparentProxy": "ConsulTransparentProxy",
        "Expose": "ConsulExposeConfig",
    },
    "ConsulTransparentProxy": {
        "UID": "string",
        "OutboundPort": "integer",
        "ExcludeInboundPorts": "[string]",
        "ExcludeOutboundPorts": "[integer]",
        "ExcludeOutboundCIDRs": "[string]",
        "ExcludeUIDs": "[string]",
        "NoDNS": "boolean",
    },
    "ConsulExposeConfig": {"Paths": "[ConsulExposePath]"},
    "ConsulUpstream": {
        "LocalBindSocketPath": "string",
        "LocalBindSocketMode": "string",
        "DestinationPeer": "string",
        "DestinationPartition": "string",
        "DestinationType": "string",
        "Config": "{any}",
    },
    "SidecarTask": {
        "VolumeMounts": "[VolumeMount]",
        "Identities": "[WorkloadIdentity]",
    },
    "ConsulIngressService": {
        "TLS": "ConsulGatewayTLSConfig",
        "RequestHeaders": "any",
        "ResponseHeaders": "any",
        "MaxConnections": "integer",
        "MaxPendingRequests": "integer",
        "MaxConcurrentRequests": "integer",
    },
    "ConsulGatewayTLSConfig": {"SDS": "any"},
}

# Every duration field (time.Duration in Go = integer nanoseconds in JSON), by component. Checked
# with or without the spec, because "10s" leaking from HCL into JSON is the classic mistake.
DURATION_FIELDS: dict[str, frozenset[str]] = {
    "UpdateStrategy": frozenset(
        {"Stagger", "MinHealthyTime", "HealthyDeadline", "ProgressDeadline"}
    ),
    "MigrateStrategy": frozenset({"MinHealthyTime", "HealthyDeadline"}),
    "RestartPolicy": frozenset({"Interval", "Delay"}),
    "ReschedulePolicy": frozenset({"Interval", "Delay", "MaxDelay"}),
    "TaskGroup": frozenset({"ShutdownDelay", "StopAfterClientDisconnect", "MaxClientDisconnect"}),
    "DisconnectStrategy": frozenset({"LostAfter", "StopOnClientAfter"}),
    "Task": frozenset({"KillTimeout", "ShutdownDelay"}),
    "SidecarTask": frozenset({"KillTimeout", "ShutdownDelay"}),
    "ServiceCheck": frozenset({"Interval", "Timeout"}),
    "CheckRestart": frozenset({"Grace"}),
    "Template": frozenset({"Splay", "VaultGrace"}),
    "WaitConfig": frozenset({"Min", "Max"}),
    "ChangeScript": frozenset({"Timeout"}),
    "WorkloadIdentity": frozenset({"TTL"}),
    "TaskCSIPluginConfig": frozenset({"HealthTimeout"}),
    "ConsulGatewayProxy": frozenset({"ConnectTimeout"}),
}

# Where duration-bearing components sit; lets the duration check run without the spec.
_CHILDREN: dict[str, dict[str, str]] = {
    "Job": {
        "Update": "UpdateStrategy",
        "Migrate": "MigrateStrategy",
        "Reschedule": "ReschedulePolicy",
        "TaskGroups": "[TaskGroup]",
    },
    "TaskGroup": {
        "Update": "UpdateStrategy",
        "Migrate": "MigrateStrategy",
        "RestartPolicy": "RestartPolicy",
        "ReschedulePolicy": "ReschedulePolicy",
        "Disconnect": "DisconnectStrategy",
        "Services": "[Service]",
        "Tasks": "[Task]",
    },
    "Task": {
        "RestartPolicy": "RestartPolicy",
        "Services": "[Service]",
        "Templates": "[Template]",
        "Identity": "WorkloadIdentity",
        "Identities": "[WorkloadIdentity]",
        "CSIPluginConfig": "TaskCSIPluginConfig",
    },
    "Service": {
        "Checks": "[ServiceCheck]",
        "CheckRestart": "CheckRestart",
        "Connect": "ConsulConnect",
        "Identity": "WorkloadIdentity",
    },
    "ServiceCheck": {"CheckRestart": "CheckRestart"},
    "ConsulConnect": {"SidecarTask": "SidecarTask", "Gateway": "ConsulGateway"},
    "ConsulGateway": {"Proxy": "ConsulGatewayProxy"},
    "Template": {"Wait": "WaitConfig", "ChangeScript": "ChangeScript"},
}

# String maps the rule part checks itself (so the schema walk does not report them twice).
_STRING_MAPS: dict[str, tuple[str, ...]] = {
    "Job": ("Meta",),
    "TaskGroup": ("Meta",),
    "Task": ("Meta", "Env"),
}

_RULE_TYPED = frozenset(
    [(c, f) for c, fs in DURATION_FIELDS.items() for f in fs]
    + [(c, f) for c, fs in _STRING_MAPS.items() for f in fs]
)


def openapi_path() -> Path:
    """Where the OpenAPI spec is read from: $NOMADGEN_SHARED/nomad, else ../shared/nomad."""
    base = os.environ.get("NOMADGEN_SHARED")
    shared = Path(base) if base else _REPO_ROOT.parent / "shared"
    return shared / "nomad" / "openapi.yaml"


def schema_available() -> bool:
    """True if the OpenAPI spec could be found and compiled."""
    return _tables() is not None


def reset_cache() -> None:
    """Forget compiled specs (tests that move NOMADGEN_SHARED call this)."""
    _TABLE_CACHE.clear()


_ANY: tuple = ("any",)
_TABLE_CACHE: dict[str, dict[str, dict[str, tuple]] | None] = {}
_TABLE_LOCK = threading.Lock()  # the stand-in's first concurrent requests parse the YAML once


def _tables() -> dict[str, dict[str, tuple]] | None:
    path = str(openapi_path())
    if path not in _TABLE_CACHE:
        with _TABLE_LOCK:
            if path not in _TABLE_CACHE:
                _TABLE_CACHE[path] = _load_tables(path)
    return _TABLE_CACHE[path]


def _load_tables(path: str) -> dict[str, dict[str, tuple]] | None:
    if not os.path.isfile(path):
        return None
    try:
        import yaml
    except ImportError:  # pyyaml is a dev dependency; without it only the rules run
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=loader)
    return _compile(doc["components"]["schemas"])


def _compile(comps: dict[str, Any]) -> dict[str, dict[str, tuple]]:
    """Turn OpenAPI components into {component: {field: spec}} walk tables.

    spec is ("obj", name) | ("arr", spec) | ("map", spec) | ("prim", type, min, max) | ("any",).
    """
    tables: dict[str, dict[str, tuple]] = {}

    def props_of(node: dict) -> dict:
        props = dict(node.get("properties") or {})
        for part in node.get("allOf") or ():
            if "$ref" in part:
                part = comps.get(part["$ref"].rsplit("/", 1)[-1], {})
            props.update(props_of(part))
        return props

    def build(name: str, node: dict) -> None:
        if name in tables:
            return
        fields: dict[str, tuple] = {}
        tables[name] = fields  # registered first: specs may be recursive
        for key, sub in props_of(node).items():
            fields[key] = spec_of(sub, f"{name}.{key}")

    def spec_of(node: Any, owner: str) -> tuple:
        if not isinstance(node, dict) or not node:
            return _ANY
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            build(name, comps.get(name, {}))
            return ("obj", name)
        kind = node.get("type")
        if kind == "array":
            return ("arr", spec_of(node.get("items"), owner))
        if "properties" in node or "allOf" in node:
            build(owner, node)
            return ("obj", owner)
        if kind == "object":
            extra = node.get("additionalProperties")
            return ("map", spec_of(extra, owner) if isinstance(extra, dict) else _ANY)
        if kind in ("integer", "number", "string", "boolean"):
            return ("prim", kind, node.get("minimum"), node.get("maximum"))
        return _ANY

    build("Job", comps["Job"])
    for name, fields in POST_1_4_FIELDS.items():
        table = tables.setdefault(name, {})
        for key, short in fields.items():
            table.setdefault(key, _parse_short(short))
    for name, fields in list(tables.items()):
        for spec in fields.values():
            _assert_known(spec, tables, name)
    return tables


def _parse_short(short: str) -> tuple:
    if short.startswith("[") and short.endswith("]"):
        return ("arr", _parse_short(short[1:-1]))
    if short.startswith("{") and short.endswith("}"):
        return ("map", _parse_short(short[1:-1]))
    if short == "duration":
        return ("prim", "integer", None, None)
    if short in ("integer", "number", "string", "boolean"):
        return ("prim", short, None, None)
    if short == "any":
        return _ANY
    return ("obj", short)


def _assert_known(spec: tuple, tables: dict, where: str) -> None:
    while spec[0] in ("arr", "map"):
        spec = spec[1]
    if spec[0] == "obj" and spec[1] not in tables:
        raise RuntimeError(f"jobcheck: {where} refers to undefined component {spec[1]}")


def check_schema(job: dict, out: list[str]) -> None:
    """Walk `job` against the spec's Job component; nothing to do without the spec."""
    tables = _tables()
    if tables is not None:
        _SchemaWalk(tables, out).walk(("obj", "Job"), job, "Job")


class _SchemaWalk:
    def __init__(self, tables: dict[str, dict[str, tuple]], out: list[str]):
        self.tables = tables
        self.out = out

    def walk(self, spec: tuple, value: Any, path: str) -> None:
        if value is None:  # Nomad's JSON is full of nulls: null means "absent"
            return
        kind = spec[0]
        if kind == "any":
            return
        if kind == "obj":
            self._obj(spec[1], value, path)
        elif kind == "arr":
            if not isinstance(value, list):
                self.out.append(f"{path}: expected an array, got {type_name(value)}")
                return
            for i, item in enumerate(value):
                if item is None:
                    self.out.append(f"{path}[{i}]: must not be null")
                else:
                    self.walk(spec[1], item, f"{path}[{i}]")
        elif kind == "map":
            if not isinstance(value, dict):
                self.out.append(f"{path}: expected an object (map), got {type_name(value)}")
                return
            for key, item in value.items():
                if item is None and spec[1] is not _ANY:
                    self.out.append(f"{path}.{key}: must not be null")
                else:
                    self.walk(spec[1], item, f"{path}.{key}")
        else:
            self._prim(spec, value, path)

    def _obj(self, name: str, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.out.append(f"{path}: expected an object ({name}), got {type_name(value)}")
            return
        fields = self.tables[name]
        for key, item in value.items():
            spec = fields.get(key)
            if spec is None:
                self.out.append(f"{path}.{key}: {_unknown_field(name, key, fields)}")
            elif (name, key) not in _RULE_TYPED:
                self.walk(spec, item, f"{path}.{key}")

    def _prim(self, spec: tuple, value: Any, path: str) -> None:
        _, kind, lo, hi = spec
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            self.out.append(f"{path}: expected {kind}, got {_got(value)}")
        elif kind in ("integer", "number"):
            if lo is not None and value < lo:
                self.out.append(f"{path}: {value} is below the minimum {_num(lo)}")
            elif hi is not None and value > hi:
                self.out.append(f"{path}: {value} is above the maximum {_num(hi)}")


def _unknown_field(component: str, key: str, fields: dict) -> str:
    msg = f"unknown field (not part of Nomad's {component} API object)"
    for known in fields:
        if known.lower() == key.lower():
            return f'{msg}; did you mean "{known}"? (keys are CamelCase)'
    return msg


def check_typed_fields(job: dict, out: list[str]) -> None:
    """Durations must be integer ns; Meta/Env maps must hold strings. Runs without the spec."""
    stack: list[tuple[str, dict, str]] = [("Job", job, "Job")]
    while stack:
        comp, obj, path = stack.pop(0)
        for field in sorted(DURATION_FIELDS.get(comp, ())):
            value = obj.get(field)
            if value is not None and not is_int(value):
                out.append(f"{path}.{field}: {_duration_problem(value)}")
        for field in _STRING_MAPS.get(comp, ()):
            _check_string_map(obj.get(field), f"{path}.{field}", field, out)
        for field, child in _CHILDREN.get(comp, {}).items():
            value = obj.get(field)
            if child.startswith("["):
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, dict):
                            stack.append((child[1:-1], item, f"{path}.{field}[{i}]"))
            elif isinstance(value, dict):
                stack.append((child, value, f"{path}.{field}"))


def _duration_problem(value: Any) -> str:
    msg = f"duration must be an integer number of nanoseconds, got {_got(value)}"
    if isinstance(value, str):
        ns = parse_go_duration(value)
        if ns is not None:
            return f"{msg} (HCL duration syntax; in JSON write {ns})"
    return msg


def _check_string_map(value: Any, path: str, field: str, out: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.append(f"{path}: {field} must be an object of string values, got {type_name(value)}")
        return
    for key, item in value.items():
        if not isinstance(item, str):
            out.append(f"{path}.{key}: {field} values must be strings, got {_got(item)}")


def _got(value: Any) -> str:
    """Type and (for scalars) value, for "got ..." messages."""
    if isinstance(value, str):
        return "string " + go_quote(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"{type_name(value)} {value!r}"
    return type_name(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
