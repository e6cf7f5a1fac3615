"""Every setting nomadgen reads, in one place, with one precedence: flag > environment >
config file (nomadgen.toml) > default. The HTTP clients never read the environment themselves:
every value is passed to them explicitly (python-nomad and the consul clients would otherwise
pick up NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_TOKEN behind our back)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .environments import SCOPE_RE, EnvSpec, Value, locator, parse_envs, parse_set, read_var_file
from .errors import ConfigError, Problem
from .model import OLDEST_NOMAD, STORAGES, RenderSettings
from .names import (
    DEFAULT_KV_PREFIX,
    DEFAULT_ZONE_ATTRIBUTE,
    DEFAULT_ZONES,
    KV_PREFIX_RE,
    ZONE_ATTR_RE,
    ZONE_RE,
)

CONFIG_FILE = "nomadgen.toml"
CONFIG_KEYS = {
    "scope",
    "zones",
    "zone_attribute",
    "namespace",
    "region",
    "kv_prefix",
    "templates",
    "consul_domain",
    "datacenters",
    "storage",
    "nomad_version",
    "node_pool",
    "env",
}
STORAGE_KEYS = {"mode", "csi_plugin", "sets"}
# The type of each nomadgen.toml key: a wrong type is a configuration error, not a crash.
CONFIG_TYPES = {
    "zones": list,
    "zone_attribute": str,
    "namespace": str,
    "region": str,
    "kv_prefix": str,
    "templates": str,
    "consul_domain": str,
    "datacenters": list,
    "storage": dict,
    "nomad_version": str,
    "node_pool": str,
    "env": dict,
}


class Config(NamedTuple):
    zones: tuple[str, ...] = DEFAULT_ZONES
    zones_source: str = "default"  # default | config | env | flag | cluster
    templates: str | None = None
    render: RenderSettings = RenderSettings()
    environment: EnvSpec | None = None  # the selected [env.NAME] (--env, NOMADGEN_ENV)
    environments: tuple[EnvSpec, ...] = ()  # every declared one, to check for collisions
    overrides: tuple[Value, ...] = ()  # per-set values: environment, then var files, then --set
    source: str = ""  # the config file read, if any


def _split(value: str) -> tuple[str, ...]:
    return tuple(z.strip() for z in value.split(",") if z.strip())


def load_config(
    *,
    zones: str | None = None,
    templates: str | None = None,
    config: str | None = None,
    zone_attribute: str | None = None,
    namespace: str | None = None,
    kv_prefix: str | None = None,
    environment: str | None = None,
    var_files: tuple[str, ...] = (),
    sets: tuple[str, ...] = (),
    region: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    path = Path(config) if config else Path(CONFIG_FILE)
    if config or path.is_file():
        data = _read_config(path)
    envs, chosen = _environments(
        data,
        path,
        environment or env.get("NOMADGEN_ENV") or "",
        "--env" if environment else "NOMADGEN_ENV",
    )
    if chosen is not None:
        # The selected environment's values stand in for the top-level ones; flags and
        # NOMADGEN_* variables still win (NOMAD_NAMESPACE/NOMAD_REGION do not: --env is explicit).
        if chosen.storage is not None:
            data["storage"] = chosen.storage
        for key in ("zones", "zone_attribute", "datacenters", "kv_prefix", "namespace", "region"):
            if getattr(chosen, key):
                data[key] = (
                    list(getattr(chosen, key))
                    if key in ("zones", "datacenters")
                    else getattr(chosen, key)
                )

    if zones is not None:
        z, src = _split(zones), "flag"
    elif env.get("NOMADGEN_ZONES"):
        z, src = _split(env["NOMADGEN_ZONES"]), "env"
    elif "zones" in data:
        raw = data["zones"]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{path}: zones must be a list of strings")
        z, src = tuple(raw), "config"
    else:
        z, src = DEFAULT_ZONES, "default"

    odd = [zone for zone in z if not ZONE_RE.match(zone)]
    if odd:
        from .fields import cut

        raise ConfigError(
            f"invalid zone name {cut(odd[0])} (from {src})",
            hint="a zone is 1-128 characters, without spaces, commas, quotes, "
            "backslashes or control characters",
        )
    attr = (
        zone_attribute
        or env.get("NOMADGEN_ZONE_ATTRIBUTE")
        or data.get("zone_attribute")
        or DEFAULT_ZONE_ATTRIBUTE
    )
    if not ZONE_ATTR_RE.match(attr):
        raise ConfigError(
            f"invalid zone attribute {attr!r}",
            hint="use ${node.datacenter} or a node meta key like ${meta.zone}",
        )
    prefix = (
        kv_prefix or env.get("NOMADGEN_KV_PREFIX") or data.get("kv_prefix") or DEFAULT_KV_PREFIX
    )
    if not KV_PREFIX_RE.match(prefix):
        raise ConfigError(f"invalid KV prefix {prefix!r}", hint="letters, digits, '-', '_' and '/'")
    if chosen is not None:
        ns = (
            namespace
            or chosen.namespace
            or env.get("NOMAD_NAMESPACE")
            or data.get("namespace")
            or "default"
        )
        reg = region or chosen.region or env.get("NOMAD_REGION") or data.get("region", "")
    else:
        ns = namespace or env.get("NOMAD_NAMESPACE") or data.get("namespace") or "default"
        reg = region or env.get("NOMAD_REGION", data.get("region", ""))
    dcs = data.get("datacenters", [])
    problems: list[Problem] = []
    scope = chosen.scope if chosen else _scope(env, data, str(path), problems)
    if not isinstance(dcs, list):
        problems.append(Problem("datacenters must be a list", str(path)))
        dcs = []
    storage = _storage(data.get("storage", {}), str(path), problems)
    versioned = _versioned(data, str(path), problems)
    if problems:
        raise ConfigError("invalid configuration", problems)
    return Config(
        zones=z,
        zones_source=src,
        templates=templates or env.get("NOMADGEN_TEMPLATES") or data.get("templates"),
        render=RenderSettings(
            zone_attribute=attr,
            namespace=ns,
            region=reg,
            kv_prefix=prefix,
            consul_domain=data.get("consul_domain", "consul"),
            datacenters=tuple(dcs),
            **storage,
            **versioned,
            scope=scope,
            consul_datacenter=chosen.consul_datacenter if chosen else "",
        ),
        environment=chosen,
        environments=tuple(envs.values()),
        overrides=(chosen.overrides if chosen else ())
        + tuple(v for f in var_files for v in read_var_file(f))
        + tuple(parse_set(x) for x in sets),
        source=str(path) if data or config else "",
    )


def _scope(env: Mapping[str, str], data: dict[str, Any], path: str, problems: list[Any]) -> str:
    """A scope without environments (NOMADGEN_SCOPE, top-level `scope`): one copy of a
    manifest beside another, e.g. in a second Nomad namespace, with names of its own."""
    raw = env.get("NOMADGEN_SCOPE") or data.get("scope") or ""
    if not isinstance(raw, str) or (raw and not SCOPE_RE.match(raw)):
        problems.append(
            Problem(
                f"scope: {str(raw)[:40]!r} is not a short DNS label",
                "NOMADGEN_SCOPE" if env.get("NOMADGEN_SCOPE") else path,
                "lower-case letters, digits and '-', at most 24: it prefixes every job ID and "
                "service name",
            )
        )
        return ""
    return raw


def _versioned(data: dict[str, Any], path: str, problems: list[Any]) -> dict[str, Any]:
    """nomad_version = "1.6" (the oldest Nomad the jobs must run on; default 1.5) and the
    settings that need a newer Nomad than 1.5: node_pool (1.6)."""
    out: dict[str, Any] = {}
    raw = data.get("nomad_version")
    version = OLDEST_NOMAD
    if raw is not None:
        m = (
            re.fullmatch(r"(\d{1,3})\.(\d{1,3})(?:\.\d{1,3})?", raw)
            if isinstance(raw, str)
            else None
        )
        if m is None or (int(m[1]), int(m[2])) < OLDEST_NOMAD:
            problems.append(
                Problem(
                    f"nomad_version: {str(raw)[:40]!r} is not a supported Nomad version",
                    path,
                    'use "1.5" or later, e.g. nomad_version = "1.6"',
                )
            )
        else:
            version = out["nomad_version"] = (int(m[1]), int(m[2]))
    pool = data.get("node_pool")
    if pool is not None:
        if not isinstance(pool, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", pool):
            problems.append(
                Problem(
                    "node_pool: must be a node pool name",
                    path,
                    "letters, digits, '-' and '_', at most 128",
                )
            )
        elif version < (1, 6):
            problems.append(
                Problem(
                    "node_pool needs Nomad 1.6 or later; the target is Nomad "
                    f"{version[0]}.{version[1]}",
                    path,
                    'node pools came with Nomad 1.6: set nomad_version = "1.6" (or later) if every '
                    "cluster you submit to runs it",
                )
            )
        else:
            out["node_pool"] = pool
    return out


def _environments(
    data: dict[str, Any], path: Path, name: str, origin: str
) -> tuple[dict[str, EnvSpec], EnvSpec | None]:
    raw = data.get("env", {})
    if not raw and not name:
        return {}, None
    text = path.read_text(encoding="utf-8") if "env" in data else ""
    problems: list[Problem] = []
    where = locator(text, str(path), "toml")
    envs = parse_envs(raw, where, problems)
    if problems:
        raise ConfigError(f"{path}: invalid environment(s)", problems)
    if not name:
        return envs, None
    if name not in envs:
        import difflib

        close = difflib.get_close_matches(name, list(envs), n=1)
        known = ", ".join(sorted(envs)) or f"none (declare [env.{name}] in {path})"
        raise ConfigError(
            f"unknown environment {name!r} (from {origin})",
            location=where("env") if "env" in data else "",  # where the environments start
            hint=(f"did you mean {close[0]!r}? " if close else "") + f"environments: {known}",
        )
    return envs, envs[name]


def _storage(raw: Any, path: str, problems: list[Any]) -> dict[str, Any]:
    """[storage] mode = "ephemeral" | "host" | "csi", csi_plugin = "...", sets = {"psql:app" = "csi"}"""
    if not isinstance(raw, dict):
        problems.append(Problem("storage must be a table", path, '[storage]\nmode = "host"'))
        return {}
    out: dict[str, Any] = {}
    for k in sorted(set(raw) - STORAGE_KEYS):
        problems.append(
            Problem(f"storage.{k}: unknown key", path, "known: " + ", ".join(sorted(STORAGE_KEYS)))
        )
    mode = raw.get("mode", "")
    if mode and mode not in STORAGES:
        problems.append(
            Problem(
                f"storage.mode: unknown storage mode {mode!r}", path, "use " + ", ".join(STORAGES)
            )
        )
    elif mode:
        out["storage"] = mode
    plugin = raw.get("csi_plugin", "")
    if not isinstance(plugin, str) or (
        plugin and not re.match(r"^[A-Za-z0-9._-]{1,128}\Z", plugin)
    ):
        problems.append(
            Problem("storage.csi_plugin: must be a CSI plugin ID", path, 'e.g. "aws-ebs0"')
        )
    elif plugin:
        out["csi_plugin"] = plugin
    sets = raw.get("sets", {})
    if not isinstance(sets, dict):
        problems.append(
            Problem(
                "storage.sets must be a table of set name = mode",
                path,
                '[storage.sets]\n"psql:app" = "csi"',
            )
        )
        sets = {}
    for name in sorted(sets):
        if sets[name] not in STORAGES:
            problems.append(
                Problem(
                    f"storage.sets.{name}: unknown storage mode {sets[name]!r}",
                    path,
                    "use " + ", ".join(STORAGES),
                )
            )
    out["storage_sets"] = tuple(sorted((k, v) for k, v in sets.items() if v in STORAGES))
    return out


# --- Connections ----------------------------------------------------------------------------


def _read_config(path: Path) -> dict[str, Any]:
    from .fields import clip, cut, key_text
    from .files import InputFileError, read_text

    try:
        data = tomllib.loads(read_text(path))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except InputFileError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(f"{path}: {clip(str(exc))}", hint="fix the value") from None
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(key_text((k,)) for k in unknown[:10])}",
            hint="known keys: " + ", ".join(sorted(CONFIG_KEYS)),
        )
    problems = []
    for key, want in sorted(CONFIG_TYPES.items()):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, want) or (
            want is list and not all(isinstance(x, str) for x in value)
        ):
            what = "a list of strings" if want is list else "a string"
            problems.append(Problem(f"{key} must be {what}, not {cut(value)}", str(path)))
    if problems:
        raise ConfigError(f"{path}: invalid configuration", problems)
    return data


class Endpoint(NamedTuple):
    """How to reach Nomad or Consul. The token is kept out of repr, so it never reaches a log
    line or a traceback through this object."""

    service: str  # "nomad" | "consul"
    address: str  # scheme://host:port
    token: str = ""
    verify: bool | str = True  # True, False (skip), or a CA file / folder
    cert: tuple[str, str] | None = None
    namespace: str = ""
    region: str = ""
    timeout: float = 10.0

    def __repr__(self) -> str:
        tok = "set" if self.token else "none"
        return f"Endpoint({self.service} {self.address}, token={tok}, verify={self.verify!r})"

    def __str__(self) -> str:
        return self.__repr__()

    @property
    def host(self) -> str:
        return self.address.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def scheme(self) -> str:
        return self.address.split("://", 1)[0]


# Go's strconv.ParseBool, which Consul's and Nomad's api packages use for CONSUL_HTTP_SSL,
# CONSUL_HTTP_SSL_VERIFY and NOMAD_SKIP_VERIFY (consul api/api.go, nomad api/api.go). Consul
# turns verification off when it cannot parse the value; nomadgen refuses instead.
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def http_timeout(value: float | None, env: Mapping[str, str]) -> float:
    """Seconds one HTTP request may take: --http-timeout, NOMADGEN_HTTP_TIMEOUT, or 10."""
    raw = value if value is not None else env.get("NOMADGEN_HTTP_TIMEOUT", "")
    if raw in ("", None):
        return 10.0
    try:
        secs = float(raw)
    except (TypeError, ValueError):
        secs = -1.0
    if not 0.1 <= secs <= 600:
        from .fields import cut

        raise ConfigError(
            f"invalid HTTP timeout {cut(raw)}",
            hint="seconds from 0.1 to 600 (--http-timeout or NOMADGEN_HTTP_TIMEOUT)",
        )
    return secs


def parse_bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    value = env.get(var, "")
    if value == "":
        return default
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    from .fields import cut

    raise ConfigError(
        f"{var}={cut(value)} is not a boolean",
        hint="use true or false (also 1/0, t/f, TRUE/FALSE, True/False)",
    )


def _address(value: str, default_port: int, https: bool, what: str, source: str) -> str:
    from urllib.parse import urlsplit

    raw = value.strip()
    if "://" not in raw:
        raw = ("https://" if https else "http://") + raw
    parts = urlsplit(raw)
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port < 1:
        raise ConfigError(
            f"invalid {what} address {value!r} (from {source})",
            hint=f"use scheme://host:port, e.g. http://127.0.0.1:{default_port}",
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def _token(
    flag: str | None, flag_file: str | None, env: Mapping[str, str], var: str, what: str
) -> str:
    if flag:
        return _checked_token(flag.strip(), "the flag", what)
    path = flag_file or env.get(var + "_FILE")
    if path:
        from .files import InputFileError, read_text

        try:
            text = read_text(path)
        except (OSError, InputFileError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"cannot read the {what} token file {path}: {reason}",
                hint=f"check --{what}-token-file / {var}_FILE",
            ) from None
        return _checked_token(text.strip(), f"the file {path}", what)
    return _checked_token(env.get(var, "").strip(), var, what)


def _checked_token(token: str, source: str, what: str) -> str:
    """A token goes into an HTTP header: printable Latin-1, one line. Never echoed back."""
    problem = ""
    if any(c in token for c in "\r\n"):
        problem = "has a line break inside it"
    elif any(ord(c) > 0xFF for c in token):
        problem = "has characters outside Latin-1, which an HTTP header cannot carry"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in token):
        problem = "has control characters"
    if problem:
        raise ConfigError(
            f"the {what} token from {source} {problem}",
            hint="a token is one line of printable characters (usually a UUID)",
        )
    return token


def _file(path: str | None, what: str, var: str) -> str | None:
    if path and not Path(path).exists():
        raise ConfigError(f"{what} not found: {path}", hint=f"check {var} or the matching flag")
    return path or None


def _tls_files(
    what: str,
    var: str,
    ca_cert: str | None,
    client_cert: str | None,
    client_key: str | None,
    env: Mapping[str, str],
) -> tuple[str | None, tuple[str, str] | None]:
    """The CA (file or folder) and the client certificate pair, each checked to exist."""
    ca = _file(
        ca_cert or env.get(f"{var}_CACERT") or env.get(f"{var}_CAPATH"),
        f"{what} CA certificate",
        f"{var}_CACERT",
    )
    cert = _file(
        client_cert or env.get(f"{var}_CLIENT_CERT"),
        f"{what} client certificate",
        f"{var}_CLIENT_CERT",
    )
    key = _file(
        client_key or env.get(f"{var}_CLIENT_KEY"), f"{what} client key", f"{var}_CLIENT_KEY"
    )
    if bool(cert) != bool(key):
        raise ConfigError(
            f"a {what} client certificate needs its key (and the key its certificate)",
            hint=f"set both {var}_CLIENT_CERT and {var}_CLIENT_KEY",
        )
    return ca, (cert, key) if cert and key else None


def nomad_endpoint(
    *,
    address: str | None = None,
    token: str | None = None,
    token_file: str | None = None,
    namespace: str | None = None,
    region: str | None = None,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    skip_verify: bool | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Endpoint:
    env = os.environ if env is None else env
    src = "--nomad-addr" if address else "NOMAD_ADDR" if env.get("NOMAD_ADDR") else "default"
    addr = _address(
        address or env.get("NOMAD_ADDR") or "http://127.0.0.1:4646", 4646, False, "Nomad", src
    )
    ca, pair = _tls_files("Nomad", "NOMAD", ca_cert, client_cert, client_key, env)
    skip = skip_verify if skip_verify is not None else parse_bool(env, "NOMAD_SKIP_VERIFY", False)
    return Endpoint(
        service="nomad",
        address=addr,
        token=_token(token, token_file, env, "NOMAD_TOKEN", "nomad"),
        verify=False if skip else (ca or True),
        cert=pair,
        namespace=namespace or env.get("NOMAD_NAMESPACE") or "default",
        region=region or env.get("NOMAD_REGION") or "",
        timeout=http_timeout(timeout, env),
    )


def consul_endpoint(
    *,
    address: str | None = None,
    token: str | None = None,
    token_file: str | None = None,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    skip_verify: bool | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Endpoint:
    env = os.environ if env is None else env
    https = parse_bool(env, "CONSUL_HTTP_SSL", False)
    src = (
        "--consul-addr"
        if address
        else "CONSUL_HTTP_ADDR"
        if env.get("CONSUL_HTTP_ADDR")
        else "default"
    )
    addr = _address(
        address or env.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500", 8500, https, "Consul", src
    )
    ca, pair = _tls_files("Consul", "CONSUL", ca_cert, client_cert, client_key, env)
    skip = (
        skip_verify
        if skip_verify is not None
        else not parse_bool(env, "CONSUL_HTTP_SSL_VERIFY", True)
    )
    return Endpoint(
        service="consul",
        address=addr,
        token=_token(token, token_file, env, "CONSUL_HTTP_TOKEN", "consul"),
        verify=False if skip else (ca or True),
        cert=pair,
        timeout=http_timeout(timeout, env),
    )


def dns_server(value: str | None = None, env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Consul's DNS interface: --dns, NOMADGEN_DNS, or the agent default 127.0.0.1:8600."""
    env = os.environ if env is None else env
    raw = value or env.get("NOMADGEN_DNS") or "127.0.0.1:8600"
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"invalid DNS server {raw!r}", hint="use host:port, e.g. 127.0.0.1:8600")
    return host.strip("[]"), int(port)
