"""Service and check rules: structs.Service.Validate and ServiceCheck.validate*, the group's
uniqueness checks (validateServices) and the task's (Task.validateServices), and the port labels
services and checks name."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..gosyntax import SECOND, go_duration, go_quote
from ..values import dicts_at, dur_at, int_at, is_int, str_at
from .base import Rules
from .network import ports_of

_SERVICE_NAME_RE = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
_ENV_VAR_RE = re.compile(r"\$\{[a-zA-Z0-9_\-.]+\}")  # helper/args interpolation syntax
_SERVICE_NAME_ERR = (
    "Service name must be valid per RFC 1123 and can contain only alphanumeric characters or "
    "dashes and must be no longer than 63 characters"
)
_CONSUL_KINDS = (
    "",
    "api-gateway",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
)


def check_group_services(r: Rules, tg: dict, tasks: list[dict]) -> None:
    task_names = {str_at(t, "Name") for t in tasks}
    ids: set[tuple[str, str, str]] = set()
    dupes: set[tuple[str, str, str]] = set()
    providers: set[str] = set()
    for task in tasks:
        tname = str_at(task, "Name")
        for svc in dicts_at(task, "Services"):
            svc_task = str_at(svc, "TaskName")
            sname = service_name(svc, r.name, str_at(tg, "Name"), tname)
            if svc_task and svc_task != tname:
                r.add(
                    f"Service {sname} is invalid: may only specify task the service "
                    f"belongs to, got {go_quote(svc_task)}"
                )
            for check in dicts_at(svc, "Checks"):
                check_task = str_at(check, "TaskName")
                if check_task and check_task != tname:
                    r.add(
                        f"Check {check_name(check, svc, sname)} is invalid: only task "
                        "group service checks can be assigned tasks"
                    )
            sid = (sname, tname, str_at(svc, "PortLabel"))
            (dupes if sid in ids else ids).add(sid)
            providers.add(str_at(svc, "Provider") or "consul")
    for idx, svc in enumerate(dicts_at(tg, "Services")):
        sname = service_name(svc, r.name, str_at(tg, "Name"), None)
        sid = (sname, "group", str_at(svc, "PortLabel"))
        (dupes if sid in ids else ids).add(sid)
        providers.add(str_at(svc, "Provider") or "consul")
        errors = _service_errors(svc, sname)
        if errors:
            r.add_all(f"Service[{idx}] {sname} validation failed: ", errors)
            continue
        if str_at(svc, "AddressMode") == "driver":
            r.add(
                f'service {go_quote(sname)} cannot use address_mode="driver", only services '
                'defined in a "task" block can use this mode'
            )
        for check in dicts_at(svc, "Checks"):
            check_task = str_at(check, "TaskName")
            if check_task:
                if str_at(check, "AddressMode") == "driver":
                    r.add(
                        f'Check {go_quote(sname)} invalid: cannot use address_mode="driver", only '
                        'checks defined in a "task" service block can use this mode'
                    )
                if check_task not in task_names:
                    r.add(
                        f"Check {check_name(check, svc, sname)} invalid: refers to "
                        f"non-existent task {check_task}"
                    )
    if dupes:
        shown = sorted(f"{t}->{n}" + (f":{p}" if p else "") for n, t, p in dupes)
        r.add(f"Services are not unique: {', '.join(shown)}")
    if len(providers) > 1:
        r.add("Multiple service providers used: task group services must use the same provider")


def check_group_service_ports(r: Rules, tg: dict) -> None:
    """Group services must name ports of the group network (stricter than Nomad's submit
    checks, which only cover task services; such a service could never register)."""
    labels = set()
    for net in dicts_at(tg, "Networks"):
        labels.update(str_at(p, "Label") for _, p in ports_of(net))
    wanted: dict[str, set[str]] = {}
    for svc in dicts_at(tg, "Services"):
        sname = service_name(svc, r.name, str_at(tg, "Name"), None)
        port = str_at(svc, "PortLabel")
        if port and not is_numeric(port):
            wanted.setdefault(port, set()).add(sname)
        for check in dicts_at(svc, "Checks"):
            if check.get("Expose") is True or not requires_port(check):
                continue
            cport = str_at(check, "PortLabel") or port
            if cport and not is_numeric(cport):
                wanted.setdefault(cport, set()).add(sname)
    for label in sorted(wanted):
        if label not in labels:
            names = ", ".join(sorted(wanted[label]))
            r.add(f"port label {go_quote(label)} referenced by services {names} does not exist")


def check_task_services(r: Rules, task: dict, tg: dict) -> None:
    tname = str_at(task, "Name")
    group = str_at(tg, "Name")
    wanted: dict[str, set[str]] = {}
    known: set[str] = set()
    for idx, svc in enumerate(dicts_at(task, "Services")):
        sname = service_name(svc, r.name, group, tname)
        r.add_all(
            f"service[{idx}] {go_quote(sname)} validation failed: ",
            _service_errors(svc, sname),
        )
        mode = str_at(svc, "AddressMode")
        if mode == "alloc":
            r.add(
                f'service {go_quote(sname)} cannot use address_mode="alloc", only services defined '
                'in a "group" block can use this mode'
            )
        port = str_at(svc, "PortLabel")
        if sname + port in known:
            r.add(f"service {go_quote(sname)} is duplicate")
        known.add(sname + port)
        if port and not (mode == "driver" and is_numeric(port)):
            wanted.setdefault(port, set()).add(sname)
        if svc.get("Connect") is not None:
            r.add(
                f'service {go_quote(sname)} cannot have "connect" block, only services defined in '
                'a "group" block can'
            )
        checks: set[str] = set()
        for check in dicts_at(svc, "Checks"):
            cname = check_name(check, svc, sname)
            if cname in checks:
                r.add(f"check {go_quote(cname)} is duplicate")
            checks.add(cname)
            if str_at(check, "AddressMode") == "alloc":
                r.add(
                    f'check {go_quote(sname)} cannot use address_mode="alloc", only checks '
                    'defined in a "group" service block can use this mode'
                )
            if not requires_port(check):
                continue
            effective = str_at(check, "PortLabel") or port
            if effective == "":
                r.add(f"check {go_quote(cname)} is missing a port")
                continue
            if is_numeric(effective):
                number = int(effective)
                if str_at(check, "AddressMode") == "driver":
                    if number <= 0:
                        r.add(f"check {go_quote(cname)} has invalid numeric port {number}")
                else:
                    r.add(
                        f"check {go_quote(cname)} cannot use a numeric port {number} without "
                        'setting address_mode="driver"'
                    )
                continue
            wanted.setdefault(effective, set()).add(sname)
    labels: set[str] = set()
    networks = dicts_at(tg, "Networks")
    if networks:
        labels.update(str_at(p, "Label") for _, p in ports_of(networks[0]))
    res = task.get("Resources")
    for net in dicts_at(res, "Networks") if isinstance(res, dict) else ():
        labels.update(str_at(p, "Label") for _, p in ports_of(net))
    for label in sorted(wanted):
        if label not in labels:
            names = ", ".join(sorted(wanted[label]))
            r.add(f"port label {go_quote(label)} referenced by services {names} does not exist")


def _service_errors(svc: dict, name: str) -> list[str]:
    """Service.Validate: name, address mode, on_update, then the provider's check rules."""
    errors: list[str] = []
    stripped = _ENV_VAR_RE.sub("ENV-VAR", name)
    if not _SERVICE_NAME_RE.match(stripped):
        errors.append(f"{_SERVICE_NAME_ERR}: {go_quote(name)}")
    mode = str_at(svc, "AddressMode")
    if mode in ("", "auto"):
        pass
    elif mode in ("host", "driver", "alloc", "alloc_ipv6"):
        if str_at(svc, "Address"):
            errors.append('Service address_mode must be "auto" if address is set')
    else:
        errors.append(
            f'Service address_mode must be "auto", "host", or "driver"; not {go_quote(mode)}'
        )
    on_update = str_at(svc, "OnUpdate")
    if on_update not in ("", "require_healthy", "ignore_warnings", "ignore"):
        errors.append(
            'Service on_update must be "require_healthy", "ignore_warnings", or "ignore"; '
            f"not {go_quote(on_update)}"
        )
    provider = str_at(svc, "Provider") or "consul"
    port = str_at(svc, "PortLabel")
    connect = svc.get("Connect") if isinstance(svc.get("Connect"), dict) else None
    if provider not in ("consul", "nomad"):
        errors.append(f'Service provider must be "consul", or "nomad"; not {go_quote(provider)}')
        return errors
    for check in dicts_at(svc, "Checks"):
        cname = check_name(check, svc, name)
        if port == "" and str_at(check, "PortLabel") == "" and requires_port(check):
            errors.append(
                f"Check {cname} invalid: check requires a port but neither check nor service "
                f"{go_quote(name)} have a port"
            )
            continue
        if provider == "consul":
            sidecar = connect is not None and connect.get("SidecarService") is not None
            if str_at(check, "Type") == "tcp" and sidecar:
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
        if str_at(svc, "Kind") not in _CONSUL_KINDS:
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
    ctype = str_at(check, "Type").lower()
    if ctype not in allowed:
        return f"invalid check type ({go_quote(ctype)}), must be one of {', '.join(allowed)}"
    if ctype == "http":
        path = str_at(check, "Path")
        if path == "":
            return "http type must have http path"
        try:
            if urlsplit(path).scheme:
                return "http type must have relative http path"
        except ValueError:
            return "http type must have valid http path"
    elif ctype == "script" and str_at(check, "Command") == "":
        return "script type must have a valid script path"
    # a mistyped duration is already reported; do not also call it missing
    interval = check.get("Interval")
    if interval is None or is_int(interval):
        if not interval:
            return "missing required value interval. Interval cannot be less than 1s"
        if interval < SECOND:
            return f"interval ({go_duration(interval)}) cannot be lower than 1s"
    timeout = check.get("Timeout")
    if timeout is None or is_int(timeout):
        if not timeout:
            return "missing required value timeout. Timeout cannot be less than 1s"
        if timeout < SECOND:
            return f"timeout ({go_duration(timeout)}) is lower than required minimum timeout 1s"
    status = str_at(check, "InitialStatus")
    if status not in ("", "passing", "warning", "critical"):
        return (
            f'invalid initial check state ({status}), must be one of "passing", "warning", '
            '"critical" or empty'
        )
    mode = str_at(check, "AddressMode")
    if mode == "auto":
        return 'invalid address_mode "auto" - auto only valid for services'
    if mode not in ("", "host", "driver", "alloc", "alloc_ipv6"):
        return f"invalid address_mode {go_quote(mode)}"
    on_update = str_at(check, "OnUpdate")
    if on_update not in ("", "require_healthy", "ignore_warnings", "ignore"):
        return f'on_update must be "require_healthy", "ignore_warnings", or "ignore"; got {go_quote(on_update)}'
    restart = check.get("CheckRestart")
    if isinstance(restart, dict):
        if on_update == "ignore":
            return 'on_update value "ignore" is not compatible with check_restart'
        if on_update == "ignore_warnings" and restart.get("IgnoreWarnings") is not True:
            return 'on_update value "ignore_warnings" not supported with check_restart ignore_warnings value "false"'
        limit = int_at(restart, "Limit", 0)
        if limit < 0:
            return f"limit must be greater than or equal to 0 but found {limit}"
        grace = dur_at(restart, "Grace", 0)
        if grace < 0:
            return f"grace period must be greater than or equal to 0 but found {grace}"
    return None


def _check_consul(check: dict) -> str | None:
    ctype = str_at(check, "Type").lower()
    if check.get("Expose") is True and ctype not in ("grpc", "http"):
        return "expose may only be set on HTTP or gRPC checks"
    for key, label in (
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
        ("FailuresBeforeWarning", "failures_before_warning"),
    ):
        value = int_at(check, key, 0)
        if value < 0:
            return f"{label} must be non-negative"
        if value > 0 and str_at(check, "Type") not in ("tcp", "http", "grpc"):
            return f"{label} not supported for check of type {go_quote(str_at(check, 'Type'))}"
    if len(str_at(check, "Notes")) > 255:
        return "notes must not be longer than 255 characters"
    return None


def _check_nomad(check: dict) -> str | None:
    if check.get("Expose") is True:
        return "expose may only be set for Consul service checks"
    if str_at(check, "OnUpdate") == "ignore_warnings":
        return "on_update may only be set to ignore_warnings for Consul service checks"
    restart = check.get("CheckRestart")
    if isinstance(restart, dict) and restart.get("IgnoreWarnings") is True:
        return "ignore_warnings on check_restart only supported for Consul service checks"
    if str_at(check, "AddressMode") == "driver":
        return "address_mode = driver may only be set for Consul service checks"
    method = str_at(check, "Method")
    if str_at(check, "Type") == "http" and method and method.upper() not in (
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
    ):  # fmt: skip
        return f"method type {go_quote(method)} not supported in Nomad http check"
    for key, label in (
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
        ("FailuresBeforeWarning", "failures_before_warning"),
        ("TLSServerName", "tls_server_name"),
    ):
        if check.get(key) not in (None, 0, ""):
            return f"{label} may only be set for Consul service checks"
    return None


def is_numeric(label: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", label) is not None  # strconv.Atoi


def requires_port(check: dict) -> bool:
    return str_at(check, "Type") in ("grpc", "http", "tcp")


def service_name(svc: dict, job: str, group: str, task: str | None) -> str:
    """The name after api/structs Canonicalize: default name, ${JOB}-style substitution."""
    name = str_at(svc, "Name")
    if name == "":
        return f"{job}-{group}-{task}" if task is not None else f"{job}-{group}"
    subst = {
        "JOB": job,
        "TASKGROUP": group,
        "TASK": task or "group",
        "BASE": f"{job}-{group}-{task or 'group'}",
    }
    return _ENV_VAR_RE.sub(lambda m: subst.get(m.group(0)[2:-1], m.group(0)), name)


def check_name(check: dict, svc: dict, service_name: str | None = None) -> str:
    name = str_at(check, "Name")
    if name:
        return name
    return f"service: {go_quote(service_name if service_name is not None else str_at(svc, 'Name'))} check"
