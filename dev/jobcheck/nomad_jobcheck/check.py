"""Strict checker for Nomad jobs in the JSON API form (what ``POST /v1/jobs`` takes in ``"Job"``).

Nomad cannot run here, so this stands in for its server-side validation. Two parts:

* schema part: the job is walked against ``components.schemas.Job`` of Nomad's published
  OpenAPI spec (read from ``../shared``, never copied into the repo). The spec is loose, so the
  walk is made strict: unknown keys are errors (Go's decoder would silently drop them, which is
  how typos ship), types and integer ranges are enforced, ``null`` means "absent".
* rule part: Nomad's own ``Job/TaskGroup/Task/Service/...Validate`` rules, with Nomad's wording,
  applied after the defaults ``api.*.Canonicalize`` would fill in. It needs no spec.

Problems are flat strings. Rule problems carry Nomad's nesting as a prefix chain
("Task group web validation failed: Task app validation failed: ..."); schema and typing problems
name a JSON path ("Job.TaskGroups[0].Services[1].Name: ...").
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "FIELD_SINCE",
    "OLDEST_NOMAD",
    "check_job",
    "newer_fields",
    "nomad_error_text",
    "openapi_path",
    "reset_cache",
    "schema_available",
]

_REPO_ROOT = Path(__file__).resolve().parents[3]  # dev/jobcheck/nomad_jobcheck/check.py

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# Fields real Nomad (1.5 .. 2.0) accepts that the 1.4-era OpenAPI spec lacks, plus a few that
# only appear in GET responses. Without this the strict walk would reject valid jobs. Shorthand
# types: string/integer/number/boolean/any, duration (integer ns), Component, [T] list, {T} map
# of T. Components the spec does not have (Disconnect, WorkloadIdentity, ...) are defined here.
POST_1_4_FIELDS: dict[str, dict[str, str]] = {
    "Job": {"NodePool": "string", "UI": "JobUIConfig", "VersionTag": "JobVersionTag"},
    "JobUIConfig": {"Description": "string", "Links": "[JobUILink]"},
    "JobUILink": {"Label": "string", "URL": "string"},
    "JobVersionTag": {"Name": "string", "Description": "string", "TaggedTime": "integer"},
    "PeriodicConfig": {"Specs": "[string]"},
    "TaskGroup": {"Disconnect": "DisconnectStrategy", "PreventRescheduleOnLost": "boolean"},
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
    "ConsulProxy": {"TransparentProxy": "ConsulTransparentProxy", "Expose": "ConsulExposeConfig"},
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
    "SidecarTask": {"VolumeMounts": "[VolumeMount]", "Identities": "[WorkloadIdentity]"},
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

JOB_TYPES = ("service", "system", "batch", "sysbatch", "_core")
CONSTRAINT_OPERANDS = (
    "=", "==", "is", "!=", "not", "<", "<=", ">", ">=",
    "regexp", "version", "semver",
    "set_contains", "set_contains_all", "set_contains_any",
    "is_set", "is_not_set", "distinct_hosts", "distinct_property",
)  # fmt: skip
_COMPARISONS = ("=", "==", "is", "!=", "not", "<", "<=", ">", ">=")
_SET_CONTAINS = ("set_contains", "set_contains_all", "set_contains_any")
_SERVICE_NAME_RE = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
_ENV_VAR_RE = re.compile(r"\$\{[a-zA-Z0-9_\-.]+\}")  # helper/args interpolation syntax
_SERVICE_NAME_ERR = (
    "Service name must be valid per RFC 1123 and can contain only alphanumeric characters or "
    "dashes and must be no longer than 63 characters"
)
_CONSUL_KINDS = ("", "api-gateway", "ingress-gateway", "mesh-gateway", "terminating-gateway")

# api.DefaultUpdateStrategy, api restart/reschedule/migrate defaults: what a partial JSON block
# is merged over before the server validates it.
_UPDATE_DEFAULTS = {
    "Stagger": 30 * SECOND,
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND,
    "HealthyDeadline": 5 * MINUTE,
    "ProgressDeadline": 10 * MINUTE,
    "AutoRevert": False,
    "AutoPromote": False,
    "Canary": 0,
}
_MIGRATE_DEFAULTS = {
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND,
    "HealthyDeadline": 5 * MINUTE,
}
_RESTART_DEFAULTS = {
    "service": {"Attempts": 2, "Interval": 30 * MINUTE, "Delay": 15 * SECOND, "Mode": "fail"},
    "batch": {"Attempts": 3, "Interval": 24 * HOUR, "Delay": 15 * SECOND, "Mode": "fail"},
}
_RESTART_DEFAULTS["system"] = _RESTART_DEFAULTS["service"]
_RESTART_DEFAULTS["sysbatch"] = _RESTART_DEFAULTS["batch"]
_RESCHEDULE_DEFAULTS = {
    "service": {
        "Attempts": 0,
        "Interval": 0,
        "Delay": 30 * SECOND,
        "DelayFunction": "exponential",
        "MaxDelay": HOUR,
        "Unlimited": True,
    },
    "batch": {
        "Attempts": 1,
        "Interval": 24 * HOUR,
        "Delay": 5 * SECOND,
        "DelayFunction": "constant",
        "MaxDelay": 0,
        "Unlimited": False,
    },
}
_RESCHEDULE_EMPTY = {
    "Attempts": 0,
    "Interval": 0,
    "Delay": 0,
    "DelayFunction": "",
    "MaxDelay": 0,
    "Unlimited": False,
}
_DELAY_FUNCTIONS = ("constant", "exponential", "fibonacci")


# --------------------------------------------------------------------------- versions

OLDEST_NOMAD = (1, 5)  # the oldest Nomad nomadgen's output supports

# The first Nomad release whose api.Job has each field newer than 1.5 ("Component.Field"),
# read from hashicorp/nomad's release tags (the first vX.Y.0 whose api/*.go declares it;
# (2, 0) where no 1.x api struct has it), less those a 1.5 patch release added (1.5.8 knows
# LogConfig.Enabled/Disabled and the sidecar service's Meta). A component new in that
# release is covered by the field that holds it. Nomad 1.5.8's parser rejects these and its
# decoder drops them (tests/test_versions.py proves it for each).
FIELD_SINCE: dict[str, tuple[int, int]] = {
    "Job.NodePool": (1, 6),
    "Job.UI": (1, 8),
    "Job.VersionTag": (1, 9),
    "PeriodicConfig.Specs": (1, 7),
    "TaskGroup.Disconnect": (1, 8),
    "TaskGroup.PreventRescheduleOnLost": (1, 8),
    "Consul.Cluster": (1, 7),
    "Consul.Partition": (1, 8),
    "Task.Identities": (1, 7),
    "Task.Actions": (1, 7),
    "Task.Consul": (1, 7),
    "Task.Schedule": (1, 8),
    "WorkloadIdentity.Name": (1, 7),
    "WorkloadIdentity.Audience": (1, 7),
    "WorkloadIdentity.ChangeMode": (1, 7),
    "WorkloadIdentity.ChangeSignal": (1, 7),
    "WorkloadIdentity.Filepath": (1, 9),
    "WorkloadIdentity.ServiceName": (1, 7),
    "WorkloadIdentity.TTL": (1, 7),
    "WorkloadIdentity.ExtraClaims": (2, 0),
    "Resources.NUMA": (1, 7),
    "Resources.SecretsMB": (1, 9),
    "RestartPolicy.RenderTemplates": (1, 7),
    "Template.Once": (2, 0),
    "Vault.Role": (1, 7),
    "Vault.Cluster": (1, 7),
    "Vault.AllowTokenExpiration": (1, 8),
    "Vault.DisableFile": (1, 6),
    "VolumeMount.SELinuxLabel": (1, 8),
    "VolumeRequest.Sticky": (1, 10),
    "TaskArtifact.Chown": (1, 10),
    "TaskArtifact.GetterInsecure": (1, 8),
    "NetworkResource.CNI": (1, 9),
    "Port.IgnoreCollision": (1, 9),
    "Service.Weights": (1, 10),
    "Service.Identity": (1, 7),
    "Service.Cluster": (1, 7),
    "Service.Kind": (2, 0),
    "Service.Namespace": (2, 0),
    "ServiceCheck.Notes": (1, 9),
    "ServiceCheck.TLSServerName": (1, 6),
    "ServiceCheck.FailuresBeforeWarning": (1, 8),
    "ConsulProxy.TransparentProxy": (1, 8),
    "ConsulUpstream.LocalBindSocketPath": (1, 7),
    "ConsulUpstream.LocalBindSocketMode": (1, 7),
    "ConsulUpstream.DestinationPeer": (1, 7),
    "ConsulUpstream.DestinationPartition": (1, 8),
    "ConsulUpstream.DestinationType": (1, 7),
    "SidecarTask.VolumeMounts": (1, 8),
    "SidecarTask.Identities": (2, 0),
    "ConsulIngressService.TLS": (1, 8),
    "ConsulIngressService.RequestHeaders": (1, 8),
    "ConsulIngressService.ResponseHeaders": (1, 8),
    "ConsulIngressService.MaxConnections": (1, 8),
    "ConsulIngressService.MaxPendingRequests": (1, 8),
    "ConsulIngressService.MaxConcurrentRequests": (1, 8),
    "ConsulGatewayTLSConfig.SDS": (1, 8),
}

# JSON key -> the component below it, for the walk of newer_fields (maps: "{Component}").
_COMPONENT_OF = {
    "TaskGroups": "TaskGroup",
    "Tasks": "Task",
    "Services": "Service",
    "Checks": "ServiceCheck",
    "Resources": "Resources",
    "Networks": "NetworkResource",
    "DynamicPorts": "Port",
    "ReservedPorts": "Port",
    "Templates": "Template",
    "Vault": "Vault",
    "Consul": "Consul",
    "VolumeMounts": "VolumeMount",
    "Volumes": "{VolumeRequest}",
    "Artifacts": "TaskArtifact",
    "LogConfig": "LogConfig",
    "RestartPolicy": "RestartPolicy",
    "Periodic": "PeriodicConfig",
    "Identity": "WorkloadIdentity",
    "Identities": "WorkloadIdentity",
    "Connect": "ConsulConnect",
    "SidecarService": "ConsulSidecarService",
    "Proxy": "ConsulProxy",
    "Upstreams": "ConsulUpstream",
    "SidecarTask": "SidecarTask",
    "Gateway": "ConsulGateway",
    "Ingress": "ConsulIngressConfigEntry",
    "Listeners": "ConsulIngressListener",
    "TLS": "ConsulGatewayTLSConfig",
}
_COMPONENT_UNDER = {("ConsulIngressListener", "Services"): "ConsulIngressService"}


def newer_fields(job: Any, nomad_version: tuple[int, int]) -> list[str]:
    """Fields of `job` that Nomad `nomad_version` does not have: "Job.NodePool: needs Nomad
    1.6, ..." (FIELD_SINCE)."""
    out: list[str] = []

    def walk(obj: Any, comp: str, path: str) -> None:
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                walk(item, comp, f"{path}[{i}]")
            return
        if not isinstance(obj, dict):
            return
        if comp.startswith("{"):
            for k, item in obj.items():
                walk(item, comp[1:-1], f"{path}.{k}")
            return
        for key, value in obj.items():
            if value is None:
                continue
            since = FIELD_SINCE.get(f"{comp}.{key}")
            if since is not None and since > nomad_version:
                out.append(
                    f"{path}.{key}: needs Nomad {since[0]}.{since[1]}; the target is "
                    f"Nomad {nomad_version[0]}.{nomad_version[1]}"
                )
            sub = _COMPONENT_UNDER.get((comp, key)) or _COMPONENT_OF.get(key)
            if sub is not None:
                walk(value, sub, f"{path}.{key}")

    walk(job, "Job", "Job")
    return out


# --------------------------------------------------------------------------- public API


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


def check_job(job: Any, nomad_version: tuple[int, int] | None = None) -> list[str]:
    """Return the problems with a bare Job dict (empty list = Nomad would accept it).
    With `nomad_version`, fields that release does not have are problems too."""
    if not isinstance(job, dict):
        return [f"Job: expected a JSON object, got {_tname(job)}"]
    if set(job) == {"Job"} and isinstance(job["Job"], dict):
        return ['Job: got the request wrapper {"Job": ...}; pass the bare Job object']
    out: list[str] = []
    tables = _tables()
    if tables is not None:
        _SchemaWalk(tables, out).walk(("obj", "Job"), job, "Job")
    _check_typed_fields(job, out)
    _Rules(job, out).run()
    if nomad_version is not None:
        out.extend(newer_fields(job, nomad_version))
    return out


def nomad_error_text(problems: list[str]) -> str:
    """The plain-text body Nomad sends with HTTP 500 (hashicorp/go-multierror list format)."""
    if not problems:
        return ""
    if len(problems) == 1:
        return f"1 error occurred:\n\t* {problems[0]}\n\n"
    points = "\n\t".join(f"* {p}" for p in problems)
    return f"{len(problems)} errors occurred:\n\t{points}\n\n"


# --------------------------------------------------------------------------- schema part

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
                self.out.append(f"{path}: expected an array, got {_tname(value)}")
                return
            for i, item in enumerate(value):
                if item is None:
                    self.out.append(f"{path}[{i}]: must not be null")
                else:
                    self.walk(spec[1], item, f"{path}[{i}]")
        elif kind == "map":
            if not isinstance(value, dict):
                self.out.append(f"{path}: expected an object (map), got {_tname(value)}")
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
            self.out.append(f"{path}: expected an object ({name}), got {_tname(value)}")
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


# --------------------------------------------------------------------------- typed fields


def _check_typed_fields(job: dict, out: list[str]) -> None:
    """Durations must be integer ns; Meta/Env maps must hold strings. Runs without the spec."""
    stack: list[tuple[str, dict, str]] = [("Job", job, "Job")]
    while stack:
        comp, obj, path = stack.pop(0)
        for field in sorted(DURATION_FIELDS.get(comp, ())):
            value = obj.get(field)
            if value is not None and not _is_int(value):
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
        ns = _parse_go_duration(value)
        if ns is not None:
            return f"{msg} (HCL duration syntax; in JSON write {ns})"
    return msg


def _check_string_map(value: Any, path: str, field: str, out: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.append(f"{path}: {field} must be an object of string values, got {_tname(value)}")
        return
    for key, item in value.items():
        if not isinstance(item, str):
            out.append(f"{path}.{key}: {field} values must be strings, got {_got(item)}")


# --------------------------------------------------------------------------- rule part


class _Rules:
    """Nomad's server-side validation (structs *.Validate + the job endpoint's validators)."""

    def __init__(self, job: dict, out: list[str]):
        self.job = job
        self.out = out
        self.prefix: list[str] = []
        jtype = job.get("Type")
        self.jtype = jtype if isinstance(jtype, str) else "service"
        job_id = _s(job, "ID")
        name = job.get("Name")
        self.name = name if isinstance(name, str) else job_id

    # -- output helpers
    def add(self, msg: str) -> None:
        self.out.append("".join(self.prefix) + msg)

    def push(self, prefix: str) -> None:
        self.prefix.append(prefix)

    def pop(self) -> None:
        self.prefix.pop()

    def add_all(self, prefix: str, errors: list[str]) -> None:
        for err in errors:
            self.add(prefix + err)

    # -- job
    def run(self) -> None:
        job, jtype = self.job, self.jtype
        job_id = _s(job, "ID")
        if job_id == "":
            self.add("Missing job ID")
        elif " " in job_id:
            self.add("Job ID contains a space")
        elif "\0" in job_id:
            self.add("Job ID contains a null character")
        if isinstance(job.get("Name"), str):
            if job["Name"] == "":
                self.add("Missing job name")
            elif "\0" in job["Name"]:
                self.add("Job Name contains a null character")
        if jtype == "":
            self.add("Missing job type")
        elif jtype not in JOB_TYPES:
            self.add(f"Invalid job type: {_q(jtype)}")
        for dc in _list(job, "Datacenters"):
            if dc == "":
                self.add("Job datacenter must be non-empty string")
        groups = [g for g in _list(job, "TaskGroups") if isinstance(g, dict)]
        if not groups:
            self.add("Missing job task groups")
        for idx, con in enumerate(_dicts(job, "Constraints")):
            self.add_all(f"Constraint {idx + 1} validation failed: ", _constraint_errors(con))
        if jtype == "system":
            if _list(job, "Affinities"):
                self.add("System jobs may not have an affinity block")
            if _list(job, "Spreads"):
                self.add("System jobs may not have a spread block")
            if job.get("Reschedule") is not None:
                self.add("System jobs should not have a reschedule policy")
        else:
            for idx, aff in enumerate(_dicts(job, "Affinities")):
                self.add_all(f"Affinity {idx + 1} validation failed: ", _affinity_errors(aff))
            for idx, spread in enumerate(_dicts(job, "Spreads")):
                self.add_all(f"Spread {idx + 1} validation failed: ", _spread_errors(spread))

        seen: dict[str, int] = {}
        for idx, tg in enumerate(groups):
            name = _s(tg, "Name")
            if name == "":
                self.add(f"Job task group {idx + 1} missing name")
            elif name in seen:
                self.add(f"Job task group {idx + 1} redefines '{name}' from group {seen[name] + 1}")
            else:
                seen[name] = idx
            delay = _dur(tg, "ShutdownDelay")
            if delay is not None and delay < 0:
                self.add("ShutdownDelay must be a positive value")
            stop_after = _dur(tg, "StopAfterClientDisconnect")
            if stop_after:
                if stop_after > 0 and jtype not in ("batch", "service"):
                    self.add(
                        "stop_after_client_disconnect can only be set in batch and service jobs"
                    )
                elif stop_after < 0:
                    self.add("stop_after_client_disconnect must be a positive value")
            max_disconnect = _dur(tg, "MaxClientDisconnect")
            if max_disconnect is not None and max_disconnect < 0:
                self.add("max_client_disconnect cannot be negative")
            count = _group_count(tg)
            if jtype == "system" and count > 1:
                self.add(
                    f"Job task group {name} has count {count}. "
                    "Count cannot exceed 1 with system scheduler"
                )
            if jtype == "system" and tg.get("Scaling") is not None:
                self.add("Task groups with job type system do not support scaling blocks")

        for tg in groups:
            self.push(f"Task group {_s(tg, 'Name')} validation failed: ")
            self.group(tg)
            self.pop()

        self.periodic_and_parameterized()

        priority = _int(job, "Priority")
        if priority is not None and not 1 <= priority <= 100:
            # api.Job.Priority is a pointer: an explicit 0 is kept, and the server's admission
            # check refuses it (nomad/job_endpoint_hooks.go jobValidate); absent means default.
            self.add("job priority must be between [1, 100]")

    def periodic_and_parameterized(self) -> None:
        job, jtype = self.job, self.jtype
        periodic = job.get("Periodic")
        if isinstance(periodic, dict) and periodic.get("Enabled") is not False:
            if jtype not in ("batch", "sysbatch"):
                self.add('Periodic can only be used with "batch" or "sysbatch" scheduler')
            spec_type = _s(periodic, "SpecType", "cron")
            if spec_type == "cron":
                specs = [s for s in _list(periodic, "Specs") if isinstance(s, str)]
                if _s(periodic, "Spec"):
                    specs.append(_s(periodic, "Spec"))
                if not specs:
                    self.add("Must specify a spec")
            elif spec_type != "test":
                self.add(f"Unknown periodic specification type {_q(spec_type)}")
        param = job.get("ParameterizedJob")
        if isinstance(param, dict) and job.get("Dispatched") is not True:
            if jtype not in ("batch", "sysbatch"):
                self.add('Parameterized job can only be used with "batch" or "sysbatch" scheduler')
            payload = _s(param, "Payload", "optional")
            if payload not in ("", "optional", "required", "forbidden"):
                self.add(f"Unknown payload requirement: {_q(payload)}")
            required = [m for m in _list(param, "MetaRequired") if isinstance(m, str)]
            optional = {m for m in _list(param, "MetaOptional") if isinstance(m, str)}
            both = sorted(set(required) & optional)
            if both:
                self.add(
                    "Required and optional meta keys should be disjoint. "
                    f"Following keys exist in both: [{' '.join(both)}]"
                )

    # -- group
    def group(self, tg: dict) -> None:
        jtype = self.jtype
        name = _s(tg, "Name")
        if "\0" in name:
            self.add("Task group name contains null character")
        count = _group_count(tg)
        if count < 0:
            self.add("Task group count can't be negative")
        tasks = _dicts(tg, "Tasks")
        if not tasks:
            self.add("Missing tasks for task group")
        for idx, con in enumerate(_dicts(tg, "Constraints")):
            self.add_all(f"Constraint {idx + 1} validation failed: ", _constraint_errors(con))
        if jtype == "system":
            if _list(tg, "Affinities"):
                self.add("System jobs may not have an affinity block")
        else:
            for idx, aff in enumerate(_dicts(tg, "Affinities")):
                self.add_all(f"Affinity {idx + 1} validation failed: ", _affinity_errors(aff))

        restart = _merged(_RESTART_DEFAULTS.get(jtype), tg.get("RestartPolicy"))
        if restart is not None:
            for err in _restart_errors(restart):
                self.add(err)

        if jtype == "system":
            if _list(tg, "Spreads"):
                self.add("System jobs may not have a spread block")
            if tg.get("ReschedulePolicy") is not None:
                self.add("System jobs should not have a reschedule policy")
        else:
            for idx, spread in enumerate(_dicts(tg, "Spreads")):
                self.add_all(f"Spread {idx + 1} validation failed: ", _spread_errors(spread))
            job_rp, tg_rp = self.job.get("Reschedule"), tg.get("ReschedulePolicy")
            base = _RESCHEDULE_DEFAULTS.get(jtype)
            if base is None and (isinstance(job_rp, dict) or isinstance(tg_rp, dict)):
                base = _RESCHEDULE_EMPTY
            if base is not None:
                policy = _merged(_merged(base, job_rp), tg_rp)
                for err in _reschedule_errors(policy):
                    self.add(err)

        disk = tg.get("EphemeralDisk")
        disk_mb = _int(disk, "SizeMB") if isinstance(disk, dict) else None
        if disk_mb is not None and disk_mb < 10:
            self.add(f"minimum DiskMB value is 10; got {disk_mb}")
        disk_mb = 300 if disk_mb is None else disk_mb

        update = self.group_update(tg)
        # The job's update block is merged into every group first (api TaskGroup.Canonicalize)
        if jtype not in ("service", "system") and (
            tg.get("Update") is not None or _update_set(self.job.get("Update"))
        ):
            self.add(f"Job type {_q(jtype)} does not allow update block")
        if update is not None:
            for err in _update_errors(update):
                self.add(err)
            progress = update["ProgressDeadline"]
            if isinstance(progress, int) and progress != 0:
                for task in tasks:
                    kill = _dur(task, "KillTimeout", 5 * SECOND)
                    if kill > progress:
                        self.add(
                            f"Task {_s(task, 'Name')} has a KillTimout ({_godur(kill)}) longer "
                            f"than the group's ProgressDeadline ({_godur(progress)})"
                        )

        if jtype == "service":
            migrate = _merged(
                _merged(_MIGRATE_DEFAULTS, self.job.get("Migrate")), tg.get("Migrate")
            )
            for err in _migrate_errors(migrate):
                self.add(err)
        elif tg.get("Migrate") is not None:
            self.add(f"Job type {_q(jtype)} does not allow migrate block")

        names: dict[str, int] = {}
        leaders = 0
        for idx, task in enumerate(tasks):
            tname = _s(task, "Name")
            if tname == "":
                self.add(f"Task {idx + 1} missing name")
            elif tname in names:
                self.add(f"Task {idx + 1} redefines '{tname}' from task {names[tname] + 1}")
            else:
                names[tname] = idx
            if task.get("Leader") is True:
                leaders += 1
        if leaders > 1:
            self.add("Only one task may be marked as leader")

        volumes = tg.get("Volumes") if isinstance(tg.get("Volumes"), dict) else {}
        for vname in sorted(volumes):
            vol = volumes[vname]
            if not isinstance(vol, dict):
                continue
            prefix = f"Task group volume validation for {vname} failed: "
            vtype = _s(vol, "Type")
            if vtype not in ("host", "csi"):
                self.add(f"{prefix}volume has unrecognized type {vtype}")
            if _s(vol, "Source") == "":
                self.add(f"{prefix}volume has an empty source")

        self.push("Task group network validation failed: ")
        self.group_networks(tg, tasks)
        self.pop()
        self.push("Task group service validation failed: ")
        self.group_services(tg, tasks)
        self.pop()
        self.group_service_ports(tg)

        for svc in _dicts(tg, "Services"):
            if _s(svc, "TaskName") == "":
                sname = _service_name(svc, self.name, name, None)
                for check in _dicts(svc, "Checks"):
                    if _s(check, "Type") == "script" and _s(check, "TaskName") == "":
                        self.add(
                            "Task group service check validation failed: Service "
                            f"[{name}]->{sname} or Check "
                            f"{_check_name(check, svc, sname)} must specify task parameter"
                        )

        scaling = tg.get("Scaling")
        if isinstance(scaling, dict):
            prefix = "Task group scaling policy validation failed: Scaling policy invalid: "
            smin, smax = _int(scaling, "Min"), _int(scaling, "Max")
            if smax is None or smax < 0:
                self.add(prefix + "maximum count must be specified and non-negative")
            elif smin is not None and smax < smin:
                self.add(prefix + "maximum count must not be less than minimum count")
            if smin is not None and smin < 0:
                self.add(prefix + "minimum count must be specified and non-negative")
            if smax is not None and smax < count:
                self.add(
                    prefix
                    + "task group count must not be greater than maximum count in scaling policy"
                )
            if smin is not None and count < smin:
                self.add(
                    prefix
                    + "task group count must not be less than minimum count in scaling policy"
                )

        for task in tasks:
            self.push(f"Task {_s(task, 'Name')} validation failed: ")
            self.task(task, tg, disk_mb, volumes)
            self.pop()

    def group_update(self, tg: dict) -> dict | None:
        """The update strategy the server validates: defaults <- job Update <- group Update."""
        if self.jtype not in ("service", "system"):
            return None
        job_up, tg_up = self.job.get("Update"), tg.get("Update")
        if not _update_set(job_up) and not isinstance(tg_up, dict):
            return None
        return _merged(_merged(_UPDATE_DEFAULTS, job_up), tg_up)

    def group_networks(self, tg: dict, tasks: list[dict]) -> None:
        networks = _dicts(tg, "Networks")
        if len(networks) > 1:
            # Stricter than Nomad on purpose: 1.5.8 accepts a second group network, but its
            # client uses only the first (command/agent/consul/structs.go), so it is ignored.
            self.add("Only one network block is allowed per group")
        labels: dict[str, str] = {}
        static: dict[str, dict[int, str]] = {}
        for net in networks:
            for kind, port in _ports(net):
                label = _s(port, "Label")
                if label == "":
                    # Stricter than Nomad on purpose: accepted, but no task or service can
                    # ever name the port, so it is a mistake.
                    self.add(f"{kind} port has an empty Label")
                if label in labels:
                    self.add(f"Port label {label} already in use by {labels[label]}")
                else:
                    labels[label] = "taskgroup network"
                self.port_value(kind, port, label, static, f"taskgroup network:{label}")
                to = _int(port, "To", 0)
                if to < -1:
                    self.add(f"Port {_q(label)} cannot be mapped to negative value {to}")
                elif to > 65535:
                    self.add(
                        f"Port {_q(label)} cannot be mapped to a port ({to}) greater than 65535"
                    )
        for task in tasks:
            res = task.get("Resources")
            for net in _dicts(res, "Networks") if isinstance(res, dict) else ():
                for kind, port in _ports(net):
                    label = _s(port, "Label")
                    if label in labels:
                        self.add(f"Port label {label} already in use by {labels[label]}")
                    self.port_value(kind, port, label, static, f"{_s(task, 'Name')}:{label}")

    def port_value(self, kind: str, port: dict, label: str, static: dict, owner: str) -> None:
        value = _int(port, "Value", 0)
        if kind == "ReservedPorts" and value < 1:
            self.add(f"Static port {label} must have a Value between 1 and 65535; got {value}")
            return
        if value < 0:
            self.add(f"Port {label} cannot have a negative Value {value}")
            return
        if value == 0:
            return
        index = static.setdefault(_s(port, "HostNetwork") or "default", {})
        if value in index and port.get("IgnoreCollision") is not True:
            self.add(f"Static port {value} already reserved by {index[value]}")
        elif value > 65535:
            self.add(f"Port {label} ({value}) cannot be greater than 65535")
        else:
            index[value] = owner

    def group_services(self, tg: dict, tasks: list[dict]) -> None:
        task_names = {_s(t, "Name") for t in tasks}
        ids: set[tuple[str, str, str]] = set()
        dupes: set[tuple[str, str, str]] = set()
        providers: set[str] = set()
        for task in tasks:
            tname = _s(task, "Name")
            for svc in _dicts(task, "Services"):
                svc_task = _s(svc, "TaskName")
                sname = _service_name(svc, self.name, _s(tg, "Name"), tname)
                if svc_task and svc_task != tname:
                    self.add(
                        f"Service {sname} is invalid: may only specify task the service "
                        f"belongs to, got {_q(svc_task)}"
                    )
                for check in _dicts(svc, "Checks"):
                    check_task = _s(check, "TaskName")
                    if check_task and check_task != tname:
                        self.add(
                            f"Check {_check_name(check, svc, sname)} is invalid: only task "
                            "group service checks can be assigned tasks"
                        )
                sid = (sname, tname, _s(svc, "PortLabel"))
                (dupes if sid in ids else ids).add(sid)
                providers.add(_s(svc, "Provider") or "consul")
        for idx, svc in enumerate(_dicts(tg, "Services")):
            sname = _service_name(svc, self.name, _s(tg, "Name"), None)
            sid = (sname, "group", _s(svc, "PortLabel"))
            (dupes if sid in ids else ids).add(sid)
            providers.add(_s(svc, "Provider") or "consul")
            errors = _service_errors(svc, sname)
            if errors:
                self.add_all(f"Service[{idx}] {sname} validation failed: ", errors)
                continue
            if _s(svc, "AddressMode") == "driver":
                self.add(
                    f'service {_q(sname)} cannot use address_mode="driver", only services '
                    'defined in a "task" block can use this mode'
                )
            for check in _dicts(svc, "Checks"):
                check_task = _s(check, "TaskName")
                if check_task:
                    if _s(check, "AddressMode") == "driver":
                        self.add(
                            f'Check {_q(sname)} invalid: cannot use address_mode="driver", only '
                            'checks defined in a "task" service block can use this mode'
                        )
                    if check_task not in task_names:
                        self.add(
                            f"Check {_check_name(check, svc, sname)} invalid: refers to "
                            f"non-existent task {check_task}"
                        )
        if dupes:
            shown = sorted(f"{t}->{n}" + (f":{p}" if p else "") for n, t, p in dupes)
            self.add(f"Services are not unique: {', '.join(shown)}")
        if len(providers) > 1:
            self.add(
                "Multiple service providers used: task group services must use the same provider"
            )

    def group_service_ports(self, tg: dict) -> None:
        """Group services must name ports of the group network (stricter than Nomad's submit
        checks, which only cover task services; such a service could never register)."""
        labels = set()
        for net in _dicts(tg, "Networks"):
            labels.update(_s(p, "Label") for _, p in _ports(net))
        wanted: dict[str, set[str]] = {}
        for svc in _dicts(tg, "Services"):
            sname = _service_name(svc, self.name, _s(tg, "Name"), None)
            port = _s(svc, "PortLabel")
            if port and not _is_numeric(port):
                wanted.setdefault(port, set()).add(sname)
            for check in _dicts(svc, "Checks"):
                if check.get("Expose") is True or not _requires_port(check):
                    continue
                cport = _s(check, "PortLabel") or port
                if cport and not _is_numeric(cport):
                    wanted.setdefault(cport, set()).add(sname)
        for label in sorted(wanted):
            if label not in labels:
                names = ", ".join(sorted(wanted[label]))
                self.add(f"port label {_q(label)} referenced by services {names} does not exist")

    # -- task
    def task(self, task: dict, tg: dict, disk_mb: int, volumes: dict) -> None:
        jtype = self.jtype
        name = _s(task, "Name")
        if name == "":
            self.add("Missing task name")
        if "/" in name or "\\" in name:
            self.add("Task name cannot include slashes")
        elif "\0" in name:
            self.add("Task name cannot include null characters")
        if name == "alloc":
            self.add('Task name cannot be "alloc" (reserved since Nomad 1.11)')
        driver = _s(task, "Driver")
        if driver == "":
            self.add("Missing task driver")
        self.driver_config(task, driver)
        kill = _dur(task, "KillTimeout")
        if kill is not None and kill < 0:
            self.add("KillTimeout must be a positive value")
        delay = _dur(task, "ShutdownDelay")
        if delay is not None and delay < 0:
            self.add("ShutdownDelay must be a positive value")

        res = task.get("Resources")
        if isinstance(res, dict):
            for err in _resources_errors(res):
                self.add(err)

        logs = task.get("LogConfig")
        max_files, max_size = 10, 10
        if isinstance(logs, dict):
            max_files = _int(logs, "MaxFiles", 10)
            max_size = _int(logs, "MaxFileSizeMB", 10)
            if max_files < 1:
                self.add(f"minimum number of files is 1; got {max_files}")
            if max_size < 1:
                self.add(f"minimum file size is 1MB; got {max_size}")

        for idx, con in enumerate(_dicts(task, "Constraints")):
            self.add_all(f"Constraint {idx + 1} validation failed: ", _constraint_errors(con))
            operand = _s(con, "Operand")
            if operand in ("distinct_hosts", "distinct_property"):
                self.add(f"Constraint {idx + 1} has disallowed Operand at task level: {operand}")
        if jtype == "system":
            if _list(task, "Affinities"):
                self.add("System jobs may not have an affinity block")
        else:
            for idx, aff in enumerate(_dicts(task, "Affinities")):
                self.add_all(f"Affinity {idx + 1} validation failed: ", _affinity_errors(aff))

        self.task_services(task, tg)

        if disk_mb <= max_files * max_size:
            self.add(
                f"log storage ({max_files * max_size} MB) must be less than requested disk "
                f"capacity ({disk_mb} MB)"
            )

        for idx, art in enumerate(_dicts(task, "Artifacts")):
            prefix = f"Artifact {idx + 1} validation failed: "
            if _s(art, "GetterSource") == "":
                self.add(prefix + "source must be specified")
            mode = _s(art, "GetterMode")
            if mode not in ("", "any", "file", "dir"):
                self.add(
                    prefix + f"invalid artifact mode {_q(mode)}; must be one of: any, file, dir"
                )
            if _escapes_alloc("task", _s(art, "RelativeDest")):
                self.add(prefix + "destination escapes allocation directory")

        dests: dict[str, int] = {}
        for idx, tmpl in enumerate(_dicts(task, "Templates")):
            self.add_all(f"Template {idx + 1} validation failed: ", _template_errors(tmpl))
            dest = _s(tmpl, "DestPath")
            if dest in dests:
                self.add(f"Template {idx + 1} has same destination as {dests[dest]}")
            else:
                dests[dest] = idx + 1

        payload = task.get("DispatchPayload")
        if isinstance(payload, dict) and _escapes_alloc("task/local/", _s(payload, "File")):
            self.add("Dispatch Payload validation failed: destination escapes allocation directory")

        life = task.get("Lifecycle")
        # api TaskLifecycle.Empty(): a block without a hook is dropped, sidecar and all, so
        # the server's "no lifecycle hook provided" cannot be reached through the API.
        if isinstance(life, dict) and _s(life, "Hook"):
            hook = _s(life, "Hook")
            if hook not in ("prestart", "poststart", "poststop"):
                self.add(f"Lifecycle validation failed: invalid hook: {hook}")

        for idx, mount in enumerate(_dicts(task, "VolumeMounts")):
            vol = _s(mount, "Volume")
            if vol == "":
                self.add(f"Volume Mount ({idx}) references an empty volume")
            elif vol not in volumes:
                self.add(f"Volume Mount ({idx}) references undefined volume {vol}")

        if isinstance(task.get("RestartPolicy"), dict):
            # Nomad merges the task's policy over the group's; validated here too (stricter)
            base = _merged(_RESTART_DEFAULTS.get(jtype), tg.get("RestartPolicy"))
            if base is not None:
                for err in _restart_errors(_merged(base, task["RestartPolicy"])):
                    self.add(f"Task restart policy: {err}")

    def driver_config(self, task: dict, driver: str) -> None:
        # Stricter than Nomad on purpose: Nomad leaves driver config to the client's driver
        # plugin; checked here so a job that could never start is caught at submit time.
        config = task.get("Config")
        config = config if isinstance(config, dict) else {}
        required = {"docker": "image", "podman": "image", "exec": "command", "raw_exec": "command"}
        key = required.get(driver)
        if key and not (isinstance(config.get(key), str) and config[key].strip()):
            self.add(f'{driver} driver config requires a non-empty "{key}" (Config.{key})')

    def task_services(self, task: dict, tg: dict) -> None:
        tname = _s(task, "Name")
        group = _s(tg, "Name")
        wanted: dict[str, set[str]] = {}
        known: set[str] = set()
        for idx, svc in enumerate(_dicts(task, "Services")):
            sname = _service_name(svc, self.name, group, tname)
            self.add_all(
                f"service[{idx}] {_q(sname)} validation failed: ", _service_errors(svc, sname)
            )
            mode = _s(svc, "AddressMode")
            if mode == "alloc":
                self.add(
                    f'service {_q(sname)} cannot use address_mode="alloc", only services defined '
                    'in a "group" block can use this mode'
                )
            port = _s(svc, "PortLabel")
            if sname + port in known:
                self.add(f"service {_q(sname)} is duplicate")
            known.add(sname + port)
            if port and not (mode == "driver" and _is_numeric(port)):
                wanted.setdefault(port, set()).add(sname)
            if svc.get("Connect") is not None:
                self.add(
                    f'service {_q(sname)} cannot have "connect" block, only services defined in '
                    'a "group" block can'
                )
            checks: set[str] = set()
            for check in _dicts(svc, "Checks"):
                cname = _check_name(check, svc, sname)
                if cname in checks:
                    self.add(f"check {_q(cname)} is duplicate")
                checks.add(cname)
                if _s(check, "AddressMode") == "alloc":
                    self.add(
                        f'check {_q(sname)} cannot use address_mode="alloc", only checks '
                        'defined in a "group" service block can use this mode'
                    )
                if not _requires_port(check):
                    continue
                effective = _s(check, "PortLabel") or port
                if effective == "":
                    self.add(f"check {_q(cname)} is missing a port")
                    continue
                if _is_numeric(effective):
                    number = int(effective)
                    if _s(check, "AddressMode") == "driver":
                        if number <= 0:
                            self.add(f"check {_q(cname)} has invalid numeric port {number}")
                    else:
                        self.add(
                            f"check {_q(cname)} cannot use a numeric port {number} without "
                            'setting address_mode="driver"'
                        )
                    continue
                wanted.setdefault(effective, set()).add(sname)
        labels: set[str] = set()
        networks = _dicts(tg, "Networks")
        if networks:
            labels.update(_s(p, "Label") for _, p in _ports(networks[0]))
        res = task.get("Resources")
        for net in _dicts(res, "Networks") if isinstance(res, dict) else ():
            labels.update(_s(p, "Label") for _, p in _ports(net))
        for label in sorted(wanted):
            if label not in labels:
                names = ", ".join(sorted(wanted[label]))
                self.add(f"port label {_q(label)} referenced by services {names} does not exist")


# --------------------------------------------------------------------------- block rules


def _constraint_errors(con: dict) -> list[str]:
    errors: list[str] = []
    operand, ltarget, rtarget = _s(con, "Operand"), _s(con, "LTarget"), _s(con, "RTarget")
    if operand == "":
        errors.append("Missing constraint operand")
    needs_ltarget = True
    if operand == "distinct_hosts":
        needs_ltarget = False
    elif operand in _SET_CONTAINS:
        if rtarget == "":
            errors.append("Set contains constraint requires an RTarget")
    elif operand == "regexp":
        err = _re2_error(rtarget)
        if err:
            errors.append(f"Regular expression failed to compile: {err}")
    elif operand == "version":
        if not _version_constraint_ok(rtarget):
            errors.append(f"Version constraint is invalid: Malformed constraint: {rtarget}")
    elif operand == "semver":
        if not _semver_constraint_ok(rtarget):
            errors.append(f"Semver constraint is invalid: Malformed constraint: {rtarget}")
    elif operand == "distinct_property":
        if rtarget != "":
            if not re.fullmatch(r"[0-9]+", rtarget) or int(rtarget) >= 2**64:
                errors.append(
                    f"Failed to convert RTarget {_q(rtarget)} to uint64: strconv.ParseUint: "
                    f"parsing {_q(rtarget)}: invalid syntax"
                )
            elif int(rtarget) < 1:
                errors.append(
                    f"Distinct Property must have an allowed count of 1 or greater: {rtarget} < 1"
                )
    elif operand in ("is_set", "is_not_set"):
        if rtarget != "":
            errors.append(f"Operator {_q(operand)} does not support an RTarget")
    elif operand in _COMPARISONS:
        if rtarget == "":
            errors.append(f"Operator {_q(operand)} requires an RTarget")
    else:
        errors.append(f"Unknown constraint type {_q(operand)}")
    if needs_ltarget and ltarget == "":
        errors.append("No LTarget provided but is required by constraint")
    attr_err = _attribute_error(ltarget)
    if attr_err:
        errors.append(attr_err)
    return errors


def _attribute_error(target: str) -> str | None:
    # Newer Nomad (structs/constraint.go) rejects interpolations the scheduler cannot resolve.
    if not target.startswith("${"):
        return None
    if not target.endswith("}"):
        return f"attribute {_q(target)} is missing a closing brace"
    inner = target[2:-1]
    if inner in (
        "node.unique.id",
        "node.datacenter",
        "node.unique.name",
        "node.class",
        "node.pool",
    ):
        return None
    if inner.startswith(("attr.", "meta.", "device.")):
        return None
    return f"unsupported attribute {_q(target)}"


def _affinity_errors(aff: dict) -> list[str]:
    errors: list[str] = []
    operand, rtarget = _s(aff, "Operand"), _s(aff, "RTarget")
    if operand == "":
        errors.append("Missing affinity operand")
    if operand in _SET_CONTAINS:
        if rtarget == "":
            errors.append("Set contains operators require an RTarget")
    elif operand == "regexp":
        err = _re2_error(rtarget)
        if err:
            errors.append(f"Regular expression failed to compile: {err}")
    elif operand == "version":
        if not _version_constraint_ok(rtarget):
            errors.append(f"Version affinity is invalid: Malformed constraint: {rtarget}")
    elif operand == "semver":
        if not _semver_constraint_ok(rtarget):
            errors.append(f"Semver affinity is invalid: Malformed constraint: {rtarget}")
    elif operand in _COMPARISONS:
        if rtarget == "":
            errors.append(f"Operator {_q(operand)} requires an RTarget")
    else:
        errors.append(f"Unknown affinity operator {_q(operand)}")
    if _s(aff, "LTarget") == "":
        errors.append("No LTarget provided but is required")
    weight = _int(aff, "Weight", 50)  # api default when absent
    if weight == 0:
        errors.append("Affinity weight cannot be zero")
    if not -100 <= weight <= 100:
        errors.append("Affinity weight must be within the range [-100,100]")
    return errors


def _spread_errors(spread: dict) -> list[str]:
    errors: list[str] = []
    if _s(spread, "Attribute") == "":
        errors.append("Missing spread attribute")
    weight = _int(spread, "Weight", 50)  # api default when absent
    if weight <= 0 or weight > 100:
        errors.append("Spread block must have a positive weight from 0 to 100")
    seen: set[str] = set()
    total = 0
    for target in _dicts(spread, "SpreadTarget"):
        value = _s(target, "Value")
        if value in seen:
            errors.append(f"Spread target value {_q(value)} already defined")
        seen.add(value)
        percent = _int(target, "Percent", 0)
        if not 0 <= percent <= 100:
            errors.append(
                f"Spread target percentage for value {_q(value)} must be between 0 and 100"
            )
        total += percent
    if total > 100:
        errors.append(
            f"Sum of spread target percentages must not be greater than 100%; got {total}%"
        )
    return errors


def _restart_errors(rp: dict) -> list[str]:
    errors: list[str] = []
    mode, attempts = rp["Mode"], rp["Attempts"]
    interval, delay = rp["Interval"], rp["Delay"]
    if mode not in ("delay", "fail"):
        errors.append(f"Unsupported restart mode: {_q(str(mode))}")
    if not all(isinstance(v, int) for v in (attempts, interval, delay)):
        return errors
    if attempts == 0 and mode != "fail":
        errors.append(f"Restart policy {_q(str(mode))} with {attempts} attempts is ambiguous")
    if interval < 5 * SECOND:
        errors.append(f"Interval can not be less than 5s (got {_godur(interval)})")
    if attempts * delay > interval:
        errors.append(
            f"Nomad can't restart the TaskGroup {attempts} times in an interval of "
            f"{_godur(interval)} with a delay of {_godur(delay)}"
        )
    return errors


def _reschedule_errors(rp: dict) -> list[str]:
    attempts, interval, delay = rp["Attempts"], rp["Interval"], rp["Delay"]
    max_delay, unlimited, func = rp["MaxDelay"], rp["Unlimited"] is True, rp["DelayFunction"]
    if not all(isinstance(v, int) for v in (attempts, interval, delay, max_delay)):
        return []
    if not (attempts > 0 or unlimited):
        return []  # disabled policies are not validated
    errors: list[str] = []
    if attempts > 0:
        if interval <= 0:
            errors.append("Interval must be a non zero value if Attempts > 0")
        if unlimited:
            errors.append(
                f"Reschedule Policy with Attempts = {attempts}, Interval = {_godur(interval)}, "
                "and Unlimited = true is ambiguous"
            )
            errors.append("If Attempts >0, Unlimited cannot also be set to true")
    precheck = True
    if delay < 5 * SECOND:
        errors.append(f"Delay cannot be less than 5s (got {_godur(delay)})")
        precheck = False
    if func not in _DELAY_FUNCTIONS:
        shown = " ".join(_q(f) for f in _DELAY_FUNCTIONS)
        errors.append(f"Invalid delay function {_q(str(func))}, must be one of [{shown}]")
        precheck = False
    if func != "constant":
        if max_delay < 5 * SECOND:
            errors.append(f"Max Delay cannot be less than 5s (got {_godur(delay)})")
            precheck = False
        if max_delay < delay:
            errors.append(
                f"Max Delay cannot be less than Delay {_godur(delay)} (got {_godur(max_delay)})"
            )
            precheck = False
    if not unlimited:
        if interval < 15 * SECOND:
            errors.append(f"Interval cannot be less than 15s (got {_godur(interval)})")
        if precheck:
            errors.extend(_reschedule_viability(attempts, interval, delay, max_delay, func))
    return errors


def _reschedule_viability(
    attempts: int, interval: int, delay: int, max_delay: int, func: str
) -> list[str]:
    possible, recommended, valid = 0, 0, True
    if func == "constant":
        recommended = attempts * delay
        if interval < recommended:
            possible, valid = interval // delay, False
    elif func == "exponential":
        for i in range(attempts):
            nxt = (2**i) * delay
            if nxt > max_delay:
                recommended += max_delay
            else:
                recommended = nxt
            if recommended < interval:
                possible += 1
        valid = possible >= attempts
    else:  # fibonacci
        slots = [delay, delay]
        ceiling = False
        for i in range(2, attempts):
            if ceiling:
                nxt = slots[i - 1] + max_delay
            else:
                nxt = slots[i - 1] + slots[i - 2]
                if nxt > max_delay:
                    nxt, ceiling = max_delay, True
            slots.append(nxt)
        recommended = slots[-1]
        if interval < recommended:
            valid = False
            possible = next((i for i, s in enumerate(slots) if s > interval), 0)
    if valid:
        return []
    if func == "constant":
        head = (
            f"Nomad can only make {max(possible, 0)} attempts in {_godur(interval)} with initial "
            f'delay {_godur(delay)} and delay function "constant"'
        )
    else:
        head = (
            f"Nomad can only make {max(possible, 0)} attempts in {_godur(interval)} with initial "
            f"delay {_godur(delay)}, delay function {_q(func)}, and delay ceiling {_godur(max_delay)}"
        )
    rounded = (recommended + SECOND // 2) // SECOND * SECOND
    return [
        head,
        f"Set the interval to at least {_godur(rounded)} to accommodate {attempts} attempts",
    ]


def _update_errors(up: dict) -> list[str]:
    errors: list[str] = []
    if up["HealthCheck"] not in ("checks", "task_states", "manual"):
        errors.append(f"Invalid health check given: {_q(str(up['HealthCheck']))}")
    ints = (
        "MaxParallel",
        "Canary",
        "MinHealthyTime",
        "HealthyDeadline",
        "ProgressDeadline",
        "Stagger",
    )
    if not all(isinstance(up[k], int) for k in ints):
        return errors
    if up["MaxParallel"] < 0:
        errors.append(f"Max parallel can not be less than zero: {up['MaxParallel']} < 0")
    if up["Canary"] < 0:
        errors.append(f"Canary count can not be less than zero: {up['Canary']} < 0")
    if up["Canary"] == 0 and up["AutoPromote"] is True:
        errors.append("Auto Promote requires a Canary count greater than zero")
    min_healthy, deadline, progress = (
        up["MinHealthyTime"],
        up["HealthyDeadline"],
        up["ProgressDeadline"],
    )
    if min_healthy < 0:
        errors.append(f"Minimum healthy time may not be less than zero: {_godur(min_healthy)}")
    if deadline <= 0:
        errors.append(f"Healthy deadline must be greater than zero: {_godur(deadline)}")
    if progress < 0:
        errors.append(f"Progress deadline must be zero or greater: {_godur(progress)}")
    if min_healthy >= deadline:
        errors.append(
            "Minimum healthy time must be less than healthy deadline: "
            f"{_godur(min_healthy)} > {_godur(deadline)}"
        )
    if progress != 0 and deadline >= progress:
        errors.append(
            "Healthy deadline must be less than progress deadline: "
            f"{_godur(deadline)} > {_godur(progress)}"
        )
    if up["Stagger"] <= 0:
        errors.append(f"Stagger must be greater than zero: {_godur(up['Stagger'])}")
    return errors


def _migrate_errors(mg: dict) -> list[str]:
    errors: list[str] = []
    if not all(
        isinstance(mg[k], int) for k in ("MaxParallel", "MinHealthyTime", "HealthyDeadline")
    ):
        return errors
    if mg["MaxParallel"] < 0:
        errors.append(f"MaxParallel must be >= 0 but found {mg['MaxParallel']}")
    check = mg["HealthCheck"]
    if check == "":
        if mg["MaxParallel"] > 0:
            errors.append("Missing HealthCheck")
    elif check not in ("checks", "task_states"):
        errors.append(f"Invalid HealthCheck: {_q(str(check))}")
    if mg["MinHealthyTime"] < 0:
        errors.append(f"MinHealthyTime is {_godur(mg['MinHealthyTime'])} and must be >= 0")
    if mg["HealthyDeadline"] < 0:
        errors.append(f"HealthyDeadline is {_godur(mg['HealthyDeadline'])} and must be >= 0")
    if mg["MinHealthyTime"] > mg["HealthyDeadline"]:
        errors.append("MinHealthyTime must be less than HealthyDeadline")
    return errors


def _resources_errors(res: dict) -> list[str]:
    errors: list[str] = []
    cores = _int(res, "Cores")
    cpu = _int(res, "CPU")
    # api Resources.Canonicalize: CPU defaults to 100 only when Cores is unset as well
    if cores is None:
        cores, cpu = 0, 100 if cpu is None else cpu
    elif cpu is None:
        cpu = 0
    memory = _int(res, "MemoryMB", 300)
    if cores > 0 and cpu > 0:
        errors.append("Task can only ask for 'cpu' or 'cores' resource, not both.")
    if cpu < 1 and cores == 0:
        errors.append(f"minimum CPU value is 1; got {cpu}")
    if memory < 10:
        errors.append(f"minimum MemoryMB value is 10; got {memory}")
    memory_max = _int(res, "MemoryMaxMB", 0)
    if memory_max != 0 and memory_max < memory:
        errors.append(
            f"MemoryMaxMB value ({memory_max}) should be larger than MemoryMB value ({memory})"
        )
    return errors


def _template_errors(tmpl: dict) -> list[str]:
    errors: list[str] = []
    if _s(tmpl, "SourcePath") == "" and _s(tmpl, "EmbeddedTmpl") == "":
        errors.append("Must specify a source path or have an embedded template")
    dest = _s(tmpl, "DestPath")
    if dest == "":
        errors.append("Must specify a destination for the template")
    elif _escapes_alloc("task", dest):
        errors.append("destination escapes allocation directory")
    mode = _s(tmpl, "ChangeMode", "restart")  # api default when absent
    if mode in ("noop", "restart"):
        pass
    elif mode == "signal":
        if _s(tmpl, "ChangeSignal", "SIGHUP") == "":  # api Template.Canonicalize default
            errors.append("Must specify signal value when change mode is signal")
        if tmpl.get("Envvars") is True:
            errors.append("cannot use signals with env var templates")
    elif mode == "script":
        script = tmpl.get("ChangeScript")
        if not isinstance(script, dict):
            errors.append(
                "must specify change script configuration value when change mode is script"
            )
        elif _s(script, "Command") == "":
            errors.append("must specify script path value when change mode is script")
    else:
        errors.append(
            "Invalid change mode. Must be one of the following: noop, signal, script, restart"
        )
    splay = _dur(tmpl, "Splay")
    if splay is not None and splay < 0:
        errors.append("Must specify positive splay value")
    perms = _s(tmpl, "Perms")
    if perms and not (re.fullmatch(r"[0-7]+", perms) and int(perms, 8) < 4096):
        errors.append(f"Failed to parse {_q(perms)} as octal")
    wait = tmpl.get("Wait")
    if isinstance(wait, dict):
        wmin, wmax = _dur(wait, "Min"), _dur(wait, "Max")
        if wmin is not None and wmax is not None and wmin > wmax:
            errors.append(f"wait min {_godur(wmin)} is greater than max {_godur(wmax)}")
    return errors


def _service_errors(svc: dict, name: str) -> list[str]:
    """Service.Validate: name, address mode, on_update, then the provider's check rules."""
    errors: list[str] = []
    stripped = _ENV_VAR_RE.sub("ENV-VAR", name)
    if not _SERVICE_NAME_RE.match(stripped):
        errors.append(f"{_SERVICE_NAME_ERR}: {_q(name)}")
    mode = _s(svc, "AddressMode")
    if mode in ("", "auto"):
        pass
    elif mode in ("host", "driver", "alloc", "alloc_ipv6"):
        if _s(svc, "Address"):
            errors.append('Service address_mode must be "auto" if address is set')
    else:
        errors.append(f'Service address_mode must be "auto", "host", or "driver"; not {_q(mode)}')
    on_update = _s(svc, "OnUpdate")
    if on_update not in ("", "require_healthy", "ignore_warnings", "ignore"):
        errors.append(
            'Service on_update must be "require_healthy", "ignore_warnings", or "ignore"; '
            f"not {_q(on_update)}"
        )
    provider = _s(svc, "Provider") or "consul"
    port = _s(svc, "PortLabel")
    connect = svc.get("Connect") if isinstance(svc.get("Connect"), dict) else None
    if provider not in ("consul", "nomad"):
        errors.append(f'Service provider must be "consul", or "nomad"; not {_q(provider)}')
        return errors
    for check in _dicts(svc, "Checks"):
        cname = _check_name(check, svc, name)
        if port == "" and _s(check, "PortLabel") == "" and _requires_port(check):
            errors.append(
                f"Check {cname} invalid: check requires a port but neither check nor service "
                f"{_q(name)} have a port"
            )
            continue
        if provider == "consul":
            sidecar = connect is not None and connect.get("SidecarService") is not None
            if _s(check, "Type") == "tcp" and sidecar:
                errors.append(
                    f"Check {cname} invalid: tcp checks are not valid for Connect enabled services"
                )
                continue
            err = _check_common(check, ("grpc", "tcp", "http", "script")) or _check_consul(check)
            if err:
                errors.append(f"Check {cname} invalid: {err}")
        else:
            err = _check_common(check, ("tcp", "http")) or _check_nomad(check)
            if err:
                errors.append(err)
    if provider == "consul":
        if _s(svc, "Kind") not in _CONSUL_KINDS:
            errors.append(f"Service {name} kind must be one of consul service kind or empty")
        if connect is not None:
            parts = [
                connect.get("SidecarService") is not None,
                connect.get("Native") is True,
                connect.get("Gateway") is not None,
            ]
            if sum(parts) != 1:
                errors.append(
                    "Consul Connect must be exclusively native, make use of a sidecar, or "
                    "represent a Gateway"
                )
            if connect.get("Native") is True and port == "":
                errors.append(f"Service {name} is Connect Native and requires setting the port")
    elif connect is not None:
        errors.append("Service with provider nomad cannot include Connect blocks")
    return errors


def _check_common(check: dict, allowed: tuple[str, ...]) -> str | None:
    """ServiceCheck.validateCommon: returns the first problem only, like Nomad."""
    ctype = _s(check, "Type").lower()
    if ctype not in allowed:
        return f"invalid check type ({_q(ctype)}), must be one of {', '.join(allowed)}"
    if ctype == "http":
        path = _s(check, "Path")
        if path == "":
            return "http type must have http path"
        try:
            if urlsplit(path).scheme:
                return "http type must have relative http path"
        except ValueError:
            return "http type must have valid http path"
    elif ctype == "script" and _s(check, "Command") == "":
        return "script type must have a valid script path"
    # a mistyped duration is already reported; do not also call it missing
    interval = check.get("Interval")
    if interval is None or _is_int(interval):
        if not interval:
            return "missing required value interval. Interval cannot be less than 1s"
        if interval < SECOND:
            return f"interval ({_godur(interval)}) cannot be lower than 1s"
    timeout = check.get("Timeout")
    if timeout is None or _is_int(timeout):
        if not timeout:
            return "missing required value timeout. Timeout cannot be less than 1s"
        if timeout < SECOND:
            return f"timeout ({_godur(timeout)}) is lower than required minimum timeout 1s"
    status = _s(check, "InitialStatus")
    if status not in ("", "passing", "warning", "critical"):
        return (
            f'invalid initial check state ({status}), must be one of "passing", "warning", '
            '"critical" or empty'
        )
    mode = _s(check, "AddressMode")
    if mode == "auto":
        return 'invalid address_mode "auto" - auto only valid for services'
    if mode not in ("", "host", "driver", "alloc", "alloc_ipv6"):
        return f"invalid address_mode {_q(mode)}"
    on_update = _s(check, "OnUpdate")
    if on_update not in ("", "require_healthy", "ignore_warnings", "ignore"):
        return f'on_update must be "require_healthy", "ignore_warnings", or "ignore"; got {_q(on_update)}'
    restart = check.get("CheckRestart")
    if isinstance(restart, dict):
        if on_update == "ignore":
            return 'on_update value "ignore" is not compatible with check_restart'
        if on_update == "ignore_warnings" and restart.get("IgnoreWarnings") is not True:
            return 'on_update value "ignore_warnings" not supported with check_restart ignore_warnings value "false"'
        limit = _int(restart, "Limit", 0)
        if limit < 0:
            return f"limit must be greater than or equal to 0 but found {limit}"
        grace = _dur(restart, "Grace", 0)
        if grace < 0:
            return f"grace period must be greater than or equal to 0 but found {grace}"
    return None


def _check_consul(check: dict) -> str | None:
    ctype = _s(check, "Type").lower()
    if check.get("Expose") is True and ctype not in ("grpc", "http"):
        return "expose may only be set on HTTP or gRPC checks"
    for key, label in (
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
        ("FailuresBeforeWarning", "failures_before_warning"),
    ):
        value = _int(check, key, 0)
        if value < 0:
            return f"{label} must be non-negative"
        if value > 0 and _s(check, "Type") not in ("tcp", "http", "grpc"):
            return f"{label} not supported for check of type {_q(_s(check, 'Type'))}"
    if len(_s(check, "Notes")) > 255:
        return "notes must not be longer than 255 characters"
    return None


def _check_nomad(check: dict) -> str | None:
    if check.get("Expose") is True:
        return "expose may only be set for Consul service checks"
    if _s(check, "OnUpdate") == "ignore_warnings":
        return "on_update may only be set to ignore_warnings for Consul service checks"
    restart = check.get("CheckRestart")
    if isinstance(restart, dict) and restart.get("IgnoreWarnings") is True:
        return "ignore_warnings on check_restart only supported for Consul service checks"
    if _s(check, "AddressMode") == "driver":
        return "address_mode = driver may only be set for Consul service checks"
    method = _s(check, "Method")
    if _s(check, "Type") == "http" and method and method.upper() not in (
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
    ):  # fmt: skip
        return f"method type {_q(method)} not supported in Nomad http check"
    for key, label in (
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
        ("FailuresBeforeWarning", "failures_before_warning"),
        ("TLSServerName", "tls_server_name"),
    ):
        if check.get(key) not in (None, 0, ""):
            return f"{label} may only be set for Consul service checks"
    return None


# --------------------------------------------------------------------------- syntax helpers


def _re2_error(pattern: str) -> str | None:
    """Approximate Go's regexp (RE2) compile with Python's re.

    RE2 lacks lookaround and backreferences (Python has them: reject explicitly); Python lacks a
    few RE2 spellings (\\z, \\pL, \\Q..\\E, (?<name>), [[:alpha:]]): translate them first.
    """
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            if pattern[i + 1] in "123456789":
                return f"invalid escape sequence: `\\{pattern[i + 1]}`"
            i += 2
            continue
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?>"), i):
            return f"invalid or unsupported Perl syntax: `{pattern[i : i + 3]}`"
        i += 1
    text = re.sub(r"\\Q(.*?)(\\E|$)", lambda m: re.escape(m.group(1)), pattern)
    text = text.replace("\\z", "\\Z").replace("(?<", "(?P<").replace("(?P<P<", "(?P<")
    text = re.sub(r"\\[pP](\{[^}]*\}|[A-Za-z])", ".", text)
    text = re.sub(r"\[:\^?[a-z]+:\]", "a-z", text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(text)
    except re.error as exc:
        return f"error parsing regexp: {exc}"
    return None


_VERSION = (
    r"v?[0-9]+(\.[0-9]+)*"
    r"(-[0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*|-?[A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)?"
    r"(\+[0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*)?"
)
_VERSION_RE = re.compile(rf"\s*(=|!=|>|<|>=|<=|~>)?\s*{_VERSION}\s*")
_SEMVER_RE = re.compile(
    r"\s*(=|!=|>|<|>=|<=)?\s*v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z\-.]+)?(\+[0-9A-Za-z\-.]+)?\s*"
)


def _version_constraint_ok(text: str) -> bool:
    # hashicorp/go-version NewConstraint: comma-separated "<op> <version>" terms
    return all(_VERSION_RE.fullmatch(part) for part in text.split(","))


def _semver_constraint_ok(text: str) -> bool:
    return all(_SEMVER_RE.fullmatch(part) for part in text.split(","))


_GO_DURATION_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "μs": 1000,
    "ms": 10**6,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


def _parse_go_duration(text: str) -> int | None:
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if not body or _GO_DURATION_RE.sub("", body) != "":
        return None
    total = 0.0
    for number, unit in _GO_DURATION_RE.findall(body):
        total += float(number) * _GO_UNITS[unit]
    return sign * round(total)


def _godur(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_frac(u, 1000)}µs"
    if u < SECOND:
        return f"{sign}{_frac(u, 10**6)}ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    text = f"{_frac(rest, SECOND)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _frac(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if part == 0:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _escapes_alloc(prefix: str, path: str) -> bool:
    # escapingfs.PathEscapesAllocViaRelative: Go's filepath.Join never discards the base
    alloc = "/alloc-dir/alloc-id"
    full = posixpath.normpath(f"{alloc}/{prefix}/{path}")
    return posixpath.relpath(full, alloc).startswith("..")


# --------------------------------------------------------------------------- small helpers


def _update_set(update: Any) -> bool:
    """api UpdateStrategy.Empty() negated: a job-level block groups inherit."""
    return isinstance(update, dict) and any(v not in (None, 0, False, "") for v in update.values())


def _s(obj: Any, key: str, default: str = "") -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else default


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(obj: Any, key: str, default: Any = None) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if _is_int(value) else default


_dur = _int  # durations are integer ns; wrong types are reported by _check_typed_fields


def _list(obj: Any, key: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _dicts(obj: Any, key: str) -> list[dict]:
    return [item for item in _list(obj, key) if isinstance(item, dict)]


def _merged(base: dict | None, over: Any) -> dict | None:
    """api-style Merge: non-null fields of `over` replace those of `base`."""
    if base is None:
        return None
    result = dict(base)
    if isinstance(over, dict):
        result.update({k: v for k, v in over.items() if v is not None and k in base})
    return result


def _group_count(tg: dict) -> int:
    count = _int(tg, "Count")
    if count is not None:
        return count
    scaling = tg.get("Scaling")
    smin = _int(scaling, "Min") if isinstance(scaling, dict) else None
    return 1 if smin is None else smin  # api default: scaling.min, else 1


def _ports(net: dict) -> list[tuple[str, dict]]:
    return [(kind, p) for kind in ("ReservedPorts", "DynamicPorts") for p in _dicts(net, kind)]


def _is_numeric(label: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", label) is not None  # strconv.Atoi


def _requires_port(check: dict) -> bool:
    return _s(check, "Type") in ("grpc", "http", "tcp")


def _service_name(svc: dict, job: str, group: str, task: str | None) -> str:
    """The name after api/structs Canonicalize: default name, ${JOB}-style substitution."""
    name = _s(svc, "Name")
    if name == "":
        return f"{job}-{group}-{task}" if task is not None else f"{job}-{group}"
    subst = {
        "JOB": job,
        "TASKGROUP": group,
        "TASK": task or "group",
        "BASE": f"{job}-{group}-{task or 'group'}",
    }
    return _ENV_VAR_RE.sub(lambda m: subst.get(m.group(0)[2:-1], m.group(0)), name)


def _check_name(check: dict, svc: dict, service_name: str | None = None) -> str:
    name = _s(check, "Name")
    if name:
        return name
    return f"service: {_q(service_name if service_name is not None else _s(svc, 'Name'))} check"


def _q(text: str) -> str:
    """Go's %q for the strings that show up here."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _got(value: Any) -> str:
    """Type and (for scalars) value, for "got ..." messages."""
    if isinstance(value, str):
        return "string " + _q(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"{_tname(value)} {value!r}"
    return _tname(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
