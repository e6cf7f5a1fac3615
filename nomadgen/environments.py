"""Environments: `[env.NAME]` tables of nomadgen.toml, var files (--var-file, JSON or TOML) and
single values (--set app.image=...). This module reads them into plain records, with the
file:line:col of every value so later checks can point at it; applying them to a manifest is
envplan.py's job. No import of resolve here: settings.py imports this module.

Precedence of set values: --set > --var-file (later files win) > [env.NAME.overrides] >
the manifest (and its overrides) > the template."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError, Problem
from .fields import NAME_RE, cut
from .names import KV_PREFIX_RE, ZONE_ATTR_RE, ZONE_RE

# The keys of one [env.NAME] table; add a key here and read it in settings.load_config.
ENV_KEYS = {
    "zones",
    "zone_attribute",
    "namespace",
    "region",
    "consul_datacenter",
    "scope",
    "datacenters",
    "kv_prefix",
    "overrides",
    "storage",
}
NAMESPACE_RE = re.compile(r"^[a-zA-Z0-9-]{1,128}\Z")  # Nomad's namespace name rule
SCOPE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?\Z")  # short: it prefixes job IDs

Locator = Callable[..., str]  # path parts -> "file:line:col" (see locator)


class Value(NamedTuple):
    """One overridden field of one set: ("psql:app", ("resources", "memory"), 2048, "where")."""

    set: str
    path: tuple[str, ...]
    value: Any
    location: str


class EnvSpec(NamedTuple):
    name: str
    scope: str  # prefixes job IDs, services, DNS, KV, variables, policies; default: the name
    namespace: str = ""
    region: str = ""
    consul_datacenter: str = ""
    zones: tuple[str, ...] = ()
    zone_attribute: str = ""
    datacenters: tuple[str, ...] = ()
    kv_prefix: str = ""
    overrides: tuple[Value, ...] = ()
    location: str = ""
    storage: Any = None  # a [storage] table for this environment (settings.py checks it)


# --- Where a TOML key is ----------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _keys(text: str) -> tuple[list[str], int]:
    """Dotted TOML key at the start of `text` -> (parts, characters consumed)."""
    parts, i = [], 0
    while i < len(text):
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            q = text[i]
            j = text.find(q, i + 1)
            if j < 0:
                break
            parts.append(text[i + 1 : j])
            i = j + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                break
            parts.append(m.group(0))
            i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        break
    return parts, i


def toml_positions(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """(key path) -> (line, column) of its first mention: tables, keys and the keys of inline
    tables on one line. Enough to point an error at the line a person wrote."""
    pos: dict[tuple[str, ...], tuple[int, int]] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        col = len(line) - len(stripped) + 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            inner = stripped.lstrip("[")
            parts, _ = _keys(inner)
            table = tuple(parts)
            for k in range(1, len(table) + 1):
                pos.setdefault(table[:k], (n, col))
            continue
        parts, used = _keys(stripped)
        if not parts or stripped[used : used + 1] != "=":
            continue
        full = table + tuple(parts)
        for k in range(len(table) + 1, len(full) + 1):
            pos.setdefault(full[:k], (n, col))
        rest = stripped[used + 1 :]
        if rest.lstrip().startswith("{"):  # inline table: its keys on this line
            for m in re.finditer(r"[{,]\s*(\"[^\"]*\"|[A-Za-z0-9_-]+)\s*=", rest):
                key = m.group(1).strip('"')
                pos.setdefault(full + (key,), (n, col + used + 1 + m.start(1)))
    return pos


def locator(text: str, filename: str, kind: str) -> Any:
    """A function from a key path to `file:line:col` (the longest known prefix)."""
    if kind == "json":
        from .manifest import locate

        raw = locate(text)
    else:
        raw = toml_positions(text)

    def where(*path: Any) -> str:
        for n in range(len(path), 0, -1):
            key = tuple(path[:n])
            if key in raw:
                line, col = raw[key]
                return f"{filename}:{line}:{col}"
        return filename

    return where


# --- Reading ------------------------------------------------------------------------------------


def _values(
    body: Any,
    set_name: str,
    path: tuple[str, ...],
    where: Locator,
    problems: list[Problem],
    origin: tuple[Any, ...],
) -> list[Value]:
    """Flatten one set's override table into Values; `env` and `resources` merge key by key."""
    out = []
    for field, value in body.items():
        p = path + (field,)
        if field in ("env", "resources") and isinstance(value, dict):
            out += [
                Value(set_name, p + (k,), v, where(*origin, set_name, field, k))
                for k, v in value.items()
            ]
            if not value:
                out.append(Value(set_name, p, {}, where(*origin, set_name, field)))
        elif field == "state" and isinstance(value, dict):
            out += [
                Value(set_name, p + (k,), v, where(*origin, set_name, field, k))
                for k, v in value.items()
            ]
        else:
            out.append(Value(set_name, p, value, where(*origin, set_name, field)))
    return out


def overrides_table(
    data: Any, where: Locator, problems: list[Problem], origin: tuple[Any, ...] = ()
) -> list[Value]:
    """{set: {field: value}} (an env's overrides, or a var file) -> Values."""
    if not isinstance(data, dict):
        problems.append(
            Problem(
                f"{'.'.join(origin) or 'var file'}: must be a table of set name -> fields",
                where(*origin),
                '"psql:app" = { image = "postgres:16.4" }',
            )
        )
        return []
    out: list[Value] = []
    for set_name in data:
        body = data[set_name]
        if not isinstance(body, dict):
            problems.append(
                Problem(
                    f"{cut(set_name)}: must be a table of fields",
                    where(*origin, set_name),
                    'e.g. {"image": "postgres:16.4", "resources": {"memory": 2048}}',
                )
            )
            continue
        out += _values(body, set_name, (), where, problems, origin)
    return out


def read_var_file(path: str) -> list[Value]:
    """A var file: JSON or TOML (by its suffix; JSON otherwise), {set: {field: value}}."""
    p = Path(path)
    kind = "toml" if p.suffix == ".toml" else "json"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read var file {p}: {exc.strerror or exc}",
            hint="--var-file takes a JSON or TOML file of set -> fields",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"var file {p} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if kind == "toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}", hint="fix the TOML syntax") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            exc.msg, location=f"{p}:{exc.lineno}:{exc.colno}", hint="check the JSON syntax"
        ) from None
    problems: list[Problem] = []
    out = overrides_table(data, locator(text, str(p), kind), problems)
    if problems:
        raise ConfigError(f"{p}: invalid var file", problems)
    return out


def parse_set(flag: str) -> Value:
    """`--set psql:app.resources.memory=2048`: the value is JSON when it parses, else a string."""
    key, eq, raw = flag.partition("=")
    set_name, _, rest = key.strip().partition(".")
    if not eq or not set_name or not rest:
        raise ConfigError(
            f"--set {cut(flag)}: expected SET.FIELD=VALUE",
            hint="e.g. --set app.image=busybox:1.36 or --set psql:app.resources.memory=2048",
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return Value(set_name, tuple(rest.split(".")), value, f"--set {cut(flag)}")


def parse_envs(data: Any, where: Locator, problems: list[Problem]) -> dict[str, EnvSpec]:
    """The [env.NAME] tables of nomadgen.toml."""
    if not isinstance(data, dict):
        problems.append(
            Problem(
                "env: must be a table of environments",
                where("env"),
                '[env.prod]\nnamespace = "prod"',
            )
        )
        return {}
    out = {}
    for name in data:
        body = data[name]
        loc = where("env", name)
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(
                Problem(
                    f"env.{cut(name)}: an environment name is a DNS label",
                    loc,
                    "lower-case letters, digits and '-', e.g. prod",
                )
            )
            continue
        if not isinstance(body, dict):
            problems.append(
                Problem(f"env.{name}: must be a table", loc, f'[env.{name}]\nnamespace = "{name}"')
            )
            continue
        for k in body:
            if k not in ENV_KEYS:
                import difflib

                close = difflib.get_close_matches(str(k), sorted(ENV_KEYS), n=1)
                problems.append(
                    Problem(
                        f"env.{name}.{cut(k)}: unknown key",
                        where("env", name, k),
                        f"did you mean {close[0]!r}?"
                        if close
                        else "known keys: " + ", ".join(sorted(ENV_KEYS)),
                    )
                )

        def text(
            key: str,
            rule: re.Pattern[str] | None = None,
            hint: str = "",
            _b: dict[str, Any] = body,
            _n: str = name,
        ) -> str:
            v = _b.get(key, "")
            if not isinstance(v, str) or (v and rule is not None and not rule.match(v)):
                problems.append(
                    Problem(
                        f"env.{_n}.{key}: {cut(v)} is not valid",
                        where("env", _n, key),
                        hint or "a string",
                    )
                )
                return ""
            return v

        def strings(
            key: str, rule: re.Pattern[str], _b: dict[str, Any] = body, _n: str = name
        ) -> tuple[str, ...]:
            v = _b.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, str) and rule.match(x) for x in v):
                problems.append(
                    Problem(
                        f"env.{_n}.{key}: must be a list of names",
                        where("env", _n, key),
                        f'{key} = ["zone-a", "zone-b"]',
                    )
                )
                return ()
            return tuple(v)

        scope = body.get("scope", name)
        if not isinstance(scope, str) or (scope and not SCOPE_RE.match(scope)):
            problems.append(
                Problem(
                    f"env.{name}.scope: {cut(scope)} is not a short DNS label",
                    where("env", name, "scope"),
                    "1-24 lower-case letters, digits and '-'; it prefixes every job "
                    'ID and service name ("" keeps the unscoped names)',
                )
            )
            scope = name
        out[name] = EnvSpec(
            name=name,
            scope=scope,
            namespace=text("namespace", NAMESPACE_RE, "letters, digits and '-', e.g. prod"),
            region=text("region", NAMESPACE_RE, "a Nomad region name, e.g. global"),
            consul_datacenter=text(
                "consul_datacenter", NAMESPACE_RE, "a Consul datacenter, e.g. dc1"
            ),
            zones=strings("zones", ZONE_RE),
            zone_attribute=text(
                "zone_attribute", ZONE_ATTR_RE, "${node.datacenter} or ${meta.zone}"
            ),
            datacenters=strings("datacenters", ZONE_RE),
            kv_prefix=text("kv_prefix", KV_PREFIX_RE, "letters, digits, '-', '_' and '/'"),
            overrides=tuple(
                overrides_table(
                    body.get("overrides", {}), where, problems, ("env", name, "overrides")
                )
            ),
            location=loc,
            storage=body.get("storage"),
        )
    return out
