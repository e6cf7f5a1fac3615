"""Test helper: python-hcl2's parse of a Nomad jobspec -> the Nomad API JSON form.

Written from the reference field table (shared/reference/nomad-consul.md §1.2, §3.1, §4.1) and
Nomad's jobspec2 behaviour, independently of nomadgen.hcl's own table, so that a wrong name
in either shows up as a difference. It mirrors what jobspec2 does after decoding: every
`port` block is read as dynamic and the static ones moved to ReservedPorts, Name defaults to
the job label, a `cron` sets SpecType, config blocks become lists of objects.

python-hcl2 8.1.4 keeps string values as written (quotes and escapes included), so every
string goes through `unescape`, which implements HCL's rules and refuses live templates.
Known python-hcl2 limit: its ESCAPED_INTERPOLATION token needs a closing brace, so a value
with an unterminated "${" (written "$${") does not parse there, though it is valid HCL.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import hcl2


class LiveTemplate(ValueError):
    """The string holds an unescaped ${ or %{: HCL would evaluate it."""


_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def unescape(raw: str) -> str:
    """HCL quoted-string literal (quotes included) -> the string HCL evaluates it to."""
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
        raise ValueError(f"not a quoted string: {raw!r}")
    s = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            nxt = s[i + 1]
            if nxt in _SIMPLE:
                out.append(_SIMPLE[nxt])
                i += 2
            elif nxt == "u":
                out.append(chr(int(s[i + 2 : i + 6], 16)))
                i += 6
            elif nxt == "U":
                out.append(chr(int(s[i + 2 : i + 10], 16)))
                i += 10
            else:
                raise ValueError(f"bad escape \\{nxt} in {raw!r}")
        elif s.startswith(("$${", "%%{"), i) or s.startswith("${", i):
            n = _template_piece(s, i, out)
            if n is None:
                raise LiveTemplate(f"live template sequence at {i} in {raw!r}")
            i += n
        elif s.startswith("%{", i):
            raise LiveTemplate(f"live template sequence at {i} in {raw!r}")
        elif ch in "\n\r":
            raise ValueError(f"raw newline in quoted string {raw!r}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# jobspec2 evaluates only `var.*`, `local.*` and functions; an interpolation of a plain
# traversal with any other root (`${node.datacenter}`, `${NOMAD_PORT_http}`) is kept as
# written, for Nomad to fill in at run time. python-hcl2 does not model this (it keeps all
# strings as written), so this helper applies jobspec2's rule.
_KEPT_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*\}")


def _template_piece(s: str, i: int, out: list[str]) -> int | None:
    """At s[i] a `$${`/`%%{` escape or a `${` jobspec2 keeps: append its text, return its
    length; None for a live interpolation."""
    if s.startswith(("$${", "%%{"), i):  # HCL: doubled leader is a literal
        out.append(s[i + 1 : i + 3])
        return 3
    m = _KEPT_REF.match(s, i)
    if m is None or m.group(1) in ("var", "local"):
        return None
    out.append(m.group(0))
    return m.end() - i


def heredoc(raw: str) -> str:
    """python-hcl2's heredoc ('"<<-EOT\\n...\\n  EOT"') -> its value. HCL: no backslash escapes;
    `<<-` strips the smallest indent of the non-blank lines; the last newline is kept."""
    lines = raw[1:-1].split("\n")
    head, body, end = lines[0], lines[1:-1], lines[-1].strip()
    flush = head.startswith("<<-")
    if end != head.lstrip("<-"):
        raise ValueError(f"heredoc marker mismatch in {raw!r}")
    if flush:
        indents = [len(x) - len(x.lstrip(" ")) for x in body if x.strip(" ")]
        cut = min(indents, default=0)
        body = [x[cut:] if x.strip(" ") else x for x in body]
    s = "\n".join(body) + "\n"
    out: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith(("$${", "%%{", "${"), i):
            n = _template_piece(s, i, out)
            if n is None:
                raise LiveTemplate(f"live template sequence at {i} in {raw!r}")
            i += n
        elif s.startswith("%{", i):
            raise LiveTemplate(f"live template sequence at {i} in {raw!r}")
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|μs|ns|h|m|s)")
_UNIT_NS = {
    "h": 3600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ns": 1,
}


def parse_duration(text: str) -> int:
    """Go time.ParseDuration, for the forms a jobspec uses."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    pos, total = 0, Decimal(0)
    for m in _DUR.finditer(body):
        if m.start() != pos:
            break
        total += Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f"bad duration {text!r}")
    if total != int(total):
        raise ValueError(f"sub-nanosecond duration {text!r}")
    return sign * int(total)


# --- values -----------------------------------------------------------------------------------

_NEG_NUMBER = re.compile(r"\$\{(-[0-9.eE+-]+)\}")


def _is_block_list(v: Any) -> bool:
    return (
        isinstance(v, list)
        and bool(v)
        and all(isinstance(x, dict) and x.get("__is_block__") for x in v)
    )


def _is_labelled_list(v: Any) -> bool:
    """[{'"label"': {..., "__is_block__": True}}, ...]"""
    return (
        isinstance(v, list)
        and bool(v)
        and all(isinstance(x, dict) and len(x) == 1 and _is_block_list(list(x.values())) for x in v)
    )


def value(v: Any) -> Any:
    """A python-hcl2 attribute value -> plain Python (strings unescaped)."""
    if isinstance(v, str):
        if v.startswith('"<<'):
            return heredoc(v)
        if v.startswith('"'):
            return unescape(v)
        m = _NEG_NUMBER.fullmatch(v)  # python-hcl2 keeps negative literals as expressions
        if m:
            n = m.group(1)
            return float(n) if any(c in n for c in ".eE") else int(n)
        raise ValueError(f"unexpected bare expression {v!r}")
    if isinstance(v, list):
        return [value(x) for x in v]
    if isinstance(v, dict):
        if "__is_block__" in v:
            raise ValueError(f"block where a value was expected: {v!r}")
        return {key(k): value(x) for k, x in v.items()}
    return v


def key(k: str) -> str:
    return unescape(k) if k.startswith('"') else k


def labelled(blocks: list[dict]) -> list[tuple[str, dict]]:
    """[{'"label"': body}, ...] -> [(label, body), ...]"""
    out = []
    for b in blocks:
        ((raw, body),) = b.items()
        out.append((key(raw), body))
    return out


# --- schema: HCL name -> JSON name and shape ------------------------------------------------
# "X" plain attribute, ("X", "dur") duration, ("X", "map") string map (block or attribute),
# ("X", "block", S), ("X", "blocks", S), ("X", "labelled", S, label_field),
# ("X", "keyed", S, label_field) for map-of-objects, ("X", "config") free-form.

CONSTRAINT = {"attribute": "LTarget", "operator": "Operand", "value": "RTarget"}
AFFINITY = {**CONSTRAINT, "weight": "Weight"}
SPREAD = {
    "attribute": "Attribute",
    "weight": "Weight",
    "target": ("SpreadTarget", "labelled", {"percent": "Percent"}, "Value"),
}
UPDATE = {
    "max_parallel": "MaxParallel",
    "health_check": "HealthCheck",
    "min_healthy_time": ("MinHealthyTime", "dur"),
    "healthy_deadline": ("HealthyDeadline", "dur"),
    "progress_deadline": ("ProgressDeadline", "dur"),
    "auto_revert": "AutoRevert",
    "auto_promote": "AutoPromote",
    "canary": "Canary",
    "stagger": ("Stagger", "dur"),
}
MIGRATE = {
    "max_parallel": "MaxParallel",
    "health_check": "HealthCheck",
    "min_healthy_time": ("MinHealthyTime", "dur"),
    "healthy_deadline": ("HealthyDeadline", "dur"),
}
RESCHEDULE = {
    "attempts": "Attempts",
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "delay_function": "DelayFunction",
    "max_delay": ("MaxDelay", "dur"),
    "unlimited": "Unlimited",
}
RESTART = {
    "attempts": "Attempts",
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "mode": "Mode",
    "render_templates": "RenderTemplates",
}
PORT = {
    "static": "Value",
    "to": "To",
    "host_network": "HostNetwork",
    "ignore_collision": "IgnoreCollision",
}
NETWORK = {
    "mode": "Mode",
    "hostname": "Hostname",
    "mbits": "MBits",
    "device": "Device",
    "cidr": "CIDR",
    "ip": "IP",
    "dns": ("DNS", "block", {"servers": "Servers", "searches": "Searches", "options": "Options"}),
    "cni": ("CNI", "block", {"args": ("Args", "map")}),
    "port": ("DynamicPorts", "labelled", PORT, "Label"),
}
CHECK_RESTART = {"limit": "Limit", "grace": ("Grace", "dur"), "ignore_warnings": "IgnoreWarnings"}
CHECK = {
    "name": "Name",
    "type": "Type",
    "command": "Command",
    "args": "Args",
    "path": "Path",
    "protocol": "Protocol",
    "method": "Method",
    "body": "Body",
    "port": "PortLabel",
    "expose": "Expose",
    "address_mode": "AddressMode",
    "interval": ("Interval", "dur"),
    "timeout": ("Timeout", "dur"),
    "initial_status": "InitialStatus",
    "notes": "Notes",
    "tls_server_name": "TLSServerName",
    "tls_skip_verify": "TLSSkipVerify",
    "grpc_service": "GRPCService",
    "grpc_use_tls": "GRPCUseTLS",
    "task": "TaskName",
    "success_before_passing": "SuccessBeforePassing",
    "failures_before_critical": "FailuresBeforeCritical",
    "failures_before_warning": "FailuresBeforeWarning",
    "on_update": "OnUpdate",
    "header": ("Header", "map"),
    "check_restart": ("CheckRestart", "block", CHECK_RESTART),
}
IDENTITY = {
    "name": "Name",
    "aud": "Audience",
    "env": "Env",
    "file": "File",
    "filepath": "Filepath",
    "change_mode": "ChangeMode",
    "change_signal": "ChangeSignal",
    "service_name": "ServiceName",
    "ttl": ("TTL", "dur"),
}
UPSTREAM = {
    "destination_name": "DestinationName",
    "local_bind_port": "LocalBindPort",
    "datacenter": "Datacenter",
    "local_bind_address": "LocalBindAddress",
    "destination_namespace": "DestinationNamespace",
    "mesh_gateway": ("MeshGateway", "block", {"mode": "Mode"}),
    "config": ("Config", "config"),
}
PROXY = {
    "local_service_address": "LocalServiceAddress",
    "local_service_port": "LocalServicePort",
    "upstreams": ("Upstreams", "blocks", UPSTREAM),
    "expose": (
        "Expose",
        "block",
        {
            "path": (
                "Paths",
                "blocks",
                {
                    "path": "Path",
                    "protocol": "Protocol",
                    "local_path_port": "LocalPathPort",
                    "listener_port": "ListenerPort",
                },
            )
        },
    ),
    "config": ("Config", "config"),
}
CONNECT = {
    "native": "Native",
    "sidecar_service": (
        "SidecarService",
        "block",
        {
            "port": "Port",
            "tags": "Tags",
            "meta": ("Meta", "map"),
            "disable_default_tcp_check": "DisableDefaultTCPCheck",
            "proxy": ("Proxy", "block", PROXY),
        },
    ),
}
SERVICE = {
    "name": "Name",
    "provider": "Provider",
    "port": "PortLabel",
    "tags": "Tags",
    "canary_tags": "CanaryTags",
    "address_mode": "AddressMode",
    "address": "Address",
    "task": "TaskName",
    "on_update": "OnUpdate",
    "enable_tag_override": "EnableTagOverride",
    "kind": "Kind",
    "cluster": "Cluster",
    "meta": ("Meta", "map"),
    "canary_meta": ("CanaryMeta", "map"),
    "tagged_addresses": ("TaggedAddresses", "map"),
    "weights": ("Weights", "block", {"passing": "Passing", "warning": "Warning"}),
    "identity": ("Identity", "block", IDENTITY),
    "check_restart": ("CheckRestart", "block", CHECK_RESTART),
    "check": ("Checks", "blocks", CHECK),
    "connect": ("Connect", "block", CONNECT),
}
TEMPLATE = {
    "source": "SourcePath",
    "destination": "DestPath",
    "data": "EmbeddedTmpl",
    "change_mode": "ChangeMode",
    "change_signal": "ChangeSignal",
    "splay": ("Splay", "dur"),
    "perms": "Perms",
    "uid": "Uid",
    "gid": "Gid",
    "left_delimiter": "LeftDelim",
    "right_delimiter": "RightDelim",
    "env": "Envvars",
    "error_on_missing_key": "ErrMissingKey",
    "once": "Once",
    "vault_grace": ("VaultGrace", "dur"),
    "change_script": (
        "ChangeScript",
        "block",
        {
            "command": "Command",
            "args": "Args",
            "timeout": ("Timeout", "dur"),
            "fail_on_error": "FailOnError",
        },
    ),
    "wait": ("Wait", "block", {"min": ("Min", "dur"), "max": ("Max", "dur")}),
}
RESOURCES = {
    "cpu": "CPU",
    "cores": "Cores",
    "memory": "MemoryMB",
    "memory_max": "MemoryMaxMB",
    "disk": "DiskMB",
    "iops": "IOPS",
    "secrets": "SecretsMB",
    "network": ("Networks", "blocks", NETWORK),
    "device": (
        "Devices",
        "labelled",
        {
            "count": "Count",
            "constraint": ("Constraints", "blocks", CONSTRAINT),
            "affinity": ("Affinities", "blocks", AFFINITY),
        },
        "Name",
    ),
    "numa": ("NUMA", "block", {"affinity": "Affinity", "devices": "Devices"}),
}
LOGS = {
    "max_files": "MaxFiles",
    "max_file_size": "MaxFileSizeMB",
    "disabled": "Disabled",
    "enabled": "Enabled",
}
ARTIFACT = {
    "source": "GetterSource",
    "destination": "RelativeDest",
    "mode": "GetterMode",
    "insecure": "GetterInsecure",
    "chown": "Chown",
    "options": ("GetterOptions", "map"),
    "headers": ("GetterHeaders", "map"),
}
VAULT = {
    "role": "Role",
    "policies": "Policies",
    "namespace": "Namespace",
    "cluster": "Cluster",
    "env": "Env",
    "disable_file": "DisableFile",
    "change_mode": "ChangeMode",
    "change_signal": "ChangeSignal",
    "allow_token_expiration": "AllowTokenExpiration",
}
CONSUL = {"namespace": "Namespace", "cluster": "Cluster", "partition": "Partition"}
SCALING = {
    "min": "Min",
    "max": "Max",
    "enabled": "Enabled",
    "type": "Type",
    "policy": ("Policy", "config"),
}
TASK = {
    "driver": "Driver",
    "user": "User",
    "leader": "Leader",
    "kind": "Kind",
    "kill_timeout": ("KillTimeout", "dur"),
    "kill_signal": "KillSignal",
    "shutdown_delay": ("ShutdownDelay", "dur"),
    "lifecycle": ("Lifecycle", "block", {"hook": "Hook", "sidecar": "Sidecar"}),
    "config": ("Config", "config"),
    "env": ("Env", "map"),
    "meta": ("Meta", "map"),
    "constraint": ("Constraints", "blocks", CONSTRAINT),
    "affinity": ("Affinities", "blocks", AFFINITY),
    "artifact": ("Artifacts", "blocks", ARTIFACT),
    "template": ("Templates", "blocks", TEMPLATE),
    "service": ("Services", "blocks", SERVICE),
    "volume_mount": (
        "VolumeMounts",
        "blocks",
        {
            "volume": "Volume",
            "destination": "Destination",
            "read_only": "ReadOnly",
            "propagation_mode": "PropagationMode",
            "selinux_label": "SELinuxLabel",
        },
    ),
    "vault": ("Vault", "block", VAULT),
    "consul": ("Consul", "block", CONSUL),
    "identity": ("Identities", "blocks", IDENTITY),
    "restart": ("RestartPolicy", "block", RESTART),
    "logs": ("LogConfig", "block", LOGS),
    "resources": ("Resources", "block", RESOURCES),
    "dispatch_payload": ("DispatchPayload", "block", {"file": "File"}),
    "scaling": ("ScalingPolicies", "labelled", SCALING, "Type"),
    "action": ("Actions", "labelled", {"command": "Command", "args": "Args"}, "Name"),
}
VOLUME = {
    "type": "Type",
    "source": "Source",
    "read_only": "ReadOnly",
    "access_mode": "AccessMode",
    "attachment_mode": "AttachmentMode",
    "per_alloc": "PerAlloc",
    "sticky": "Sticky",
    "mount_options": ("MountOptions", "block", {"fs_type": "FSType", "mount_flags": "MountFlags"}),
}
GROUP = {
    "count": "Count",
    "shutdown_delay": ("ShutdownDelay", "dur"),
    "max_client_disconnect": ("MaxClientDisconnect", "dur"),
    "stop_after_client_disconnect": ("StopAfterClientDisconnect", "dur"),
    "prevent_reschedule_on_lost": "PreventRescheduleOnLost",
    "meta": ("Meta", "map"),
    "constraint": ("Constraints", "blocks", CONSTRAINT),
    "affinity": ("Affinities", "blocks", AFFINITY),
    "spread": ("Spreads", "blocks", SPREAD),
    "consul": ("Consul", "block", CONSUL),
    "network": ("Networks", "blocks", NETWORK),
    "volume": ("Volumes", "keyed", VOLUME, "Name"),
    "service": ("Services", "blocks", SERVICE),
    "restart": ("RestartPolicy", "block", RESTART),
    "reschedule": ("ReschedulePolicy", "block", RESCHEDULE),  # group: ReschedulePolicy
    "update": ("Update", "block", UPDATE),
    "migrate": ("Migrate", "block", MIGRATE),
    "ephemeral_disk": (
        "EphemeralDisk",
        "block",
        {"size": "SizeMB", "sticky": "Sticky", "migrate": "Migrate"},
    ),
    "disconnect": (
        "Disconnect",
        "block",
        {
            "lost_after": ("LostAfter", "dur"),
            "stop_on_client_after": ("StopOnClientAfter", "dur"),
            "replace": "Replace",
            "reconcile": "Reconcile",
        },
    ),
    "scaling": ("Scaling", "block", SCALING),
    "task": ("Tasks", "labelled", TASK, "Name"),
}
JOB = {
    "name": "Name",
    "namespace": "Namespace",
    "region": "Region",
    "datacenters": "Datacenters",
    "node_pool": "NodePool",
    "type": "Type",
    "priority": "Priority",
    "all_at_once": "AllAtOnce",
    "meta": ("Meta", "map"),
    "constraint": ("Constraints", "blocks", CONSTRAINT),
    "affinity": ("Affinities", "blocks", AFFINITY),
    "spread": ("Spreads", "blocks", SPREAD),
    "update": ("Update", "block", UPDATE),
    "migrate": ("Migrate", "block", MIGRATE),
    "reschedule": ("Reschedule", "block", RESCHEDULE),  # job: Reschedule
    "periodic": (
        "Periodic",
        "block",
        {
            "enabled": "Enabled",
            "cron": "Spec",
            "crons": "Specs",
            "prohibit_overlap": "ProhibitOverlap",
            "time_zone": "TimeZone",
        },
    ),
    "parameterized": (
        "ParameterizedJob",
        "block",
        {"payload": "Payload", "meta_required": "MetaRequired", "meta_optional": "MetaOptional"},
    ),
    "multiregion": (
        "Multiregion",
        "block",
        {
            "strategy": (
                "Strategy",
                "block",
                {"max_parallel": "MaxParallel", "on_failure": "OnFailure"},
            ),
            "region": (
                "Regions",
                "labelled",
                {
                    "count": "Count",
                    "datacenters": "Datacenters",
                    "node_pool": "NodePool",
                    "meta": ("Meta", "map"),
                },
                "Name",
            ),
        },
    ),
    "ui": (
        "UI",
        "block",
        {
            "description": "Description",
            "link": ("Links", "blocks", {"label": "Label", "url": "URL"}),
        },
    ),
    "group": ("TaskGroups", "labelled", GROUP, "Name"),
}


def _blocks(v: Any, where: str) -> list[dict]:
    if not _is_block_list(v):
        raise ValueError(f"{where}: expected block(s), got {v!r}")
    return v


def _body(body: dict, schema: dict, where: str) -> dict:
    out: dict[str, Any] = {}
    for hname, v in body.items():
        if hname == "__is_block__":
            continue
        if hname not in schema:
            raise KeyError(f"{where}: unknown HCL name {hname!r}")
        entry = schema[hname]
        here = f"{where}.{hname}"
        if isinstance(entry, str):
            out[entry] = value(v)
            continue
        jname, kind, *rest = entry
        if kind == "dur":
            out[jname] = parse_duration(value(v))
        elif kind == "map":
            if _is_block_list(v):
                (blk,) = v
                out[jname] = {k: value(x) for k, x in blk.items() if k != "__is_block__"}
            else:
                out[jname] = value(v)
        elif kind == "block":
            (blk,) = _blocks(v, here)
            out[jname] = _body(blk, rest[0], here)
        elif kind == "blocks":
            out.setdefault(jname, []).extend(_body(b, rest[0], here) for b in _blocks(v, here))
        elif kind in ("labelled", "keyed"):
            sub, label_field = rest
            if not _is_labelled_list(v):
                raise ValueError(f"{here}: expected labelled blocks, got {v!r}")
            items = [
                (lbl, {label_field: lbl, **_body(b, sub, f"{here}[{lbl}]")})
                for lbl, b in labelled(v)
            ]
            if kind == "keyed":
                out[jname] = dict(items)
            else:
                out.setdefault(jname, []).extend(item for _, item in items)
        elif kind == "config":
            (blk,) = _blocks(v, here)
            out[jname] = config_body(blk)
        else:  # pragma: no cover
            raise AssertionError(kind)
    return out


def config_body(body: dict) -> dict:
    """A free-form block, as Nomad's BlocksAsAttrs reads it: nested blocks -> lists of objects."""
    out: dict[str, Any] = {}
    for k, v in body.items():
        if k == "__is_block__":
            continue
        if _is_block_list(v):
            out[k] = [config_body(b) for b in v]
        elif _is_labelled_list(v):  # `check "name" { }` -> {"check": [{"name": [{...}]}]}
            out[k] = [{lbl: [config_body(b)]} for lbl, b in labelled(v)]
        else:
            out[k] = value(v)
    return out


def _normalize_ports(networks: list[dict]) -> None:
    for n in networks:
        ports = n.pop("DynamicPorts", [])
        reserved = [p for p in ports if p.get("Value", 0) > 0]
        dynamic = [p for p in ports if p.get("Value", 0) <= 0]
        if reserved:
            n["ReservedPorts"] = reserved
        if dynamic:
            n["DynamicPorts"] = dynamic


_TASK_SCALING = {"cpu": "vertical_cpu", "mem": "vertical_mem"}


def _normalize_task(task: dict) -> None:
    if task.get("Resources", {}).get("Networks"):
        _normalize_ports(task["Resources"]["Networks"])
    idents = task.pop("Identities", [])
    default = [i for i in idents if i.get("Name", "default") == "default"]
    named = [i for i in idents if i.get("Name", "default") != "default"]
    if default:
        (task["Identity"],) = default
    if named:
        task["Identities"] = named
    for policy in task.get("ScalingPolicies", []):
        policy["Type"] = _TASK_SCALING[policy["Type"]]


def hcl_to_job(text: str) -> dict:
    """Parse a jobspec with python-hcl2 and return the bare Job in API JSON form."""
    doc = hcl2.loads(text)
    ((job_id, body),) = labelled(doc["job"])  # exactly one job block
    job = {"ID": job_id, **_body(body, JOB, "job")}
    job.setdefault("Name", job_id)
    if "Periodic" in job and ("Spec" in job["Periodic"] or "Specs" in job["Periodic"]):
        job["Periodic"]["SpecType"] = "cron"
    for group in job.get("TaskGroups", []):
        _normalize_ports(group.get("Networks", []))
        for task in group.get("Tasks", []):
            _normalize_task(task)
    return job
