"""The fields a manifest service and a service template share (ports, env, check, resources,
numbers, unknown keys), checked by one validator with one set of limits. Subclasses say where a
path is in their file (`where`): JSON line:column for manifests, TOML line for templates."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from .errors import Problem
from .model import Check, Port, Resources

# Patterns end in \Z, not $: `$` also matches before a final newline, and a name with a
# newline would become a job ID, a KV key and template text.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
PORT_LABEL_RE = re.compile(r"^[a-z0-9_]{1,32}\Z")

# Upper bounds (README "Limits"): Nomad keeps these in int64 fields (durations in nanoseconds),
# and a count far past any cluster only burns memory before the scheduler refuses it.
LIMITS = {
    "count": 1000,  # instances of one set
    "per_zone": 100,  # instances in each zone
    "cpu": 1_000_000,  # MHz
    "memory": 4_194_304,  # MB (4 TiB)
    "interval": 86_400,  # seconds
    "timeout": 86_400,  # seconds
    "size": 16_777_216,  # MB of state (16 TiB)
}
CHECK_FIELDS = {"type", "path", "interval", "timeout"}
RESOURCE_FIELDS = {"cpu", "memory"}
SHOWN = 60  # characters of a value or key quoted in a message


def cut(value: Any, limit: int = SHOWN) -> str:
    """repr() of a value, cut to `limit` characters: a 50 MB name prints as 60."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"a {len(str(abs(value)))}-digit number"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def key_text(path: tuple[Any, ...]) -> str:
    """A key path for a message: long keys cut, newlines and control characters escaped."""
    out = []
    for p in path:
        t = str(p)
        t = t if len(t) <= SHOWN else t[:SHOWN] + "..."
        out.append(t if t.isprintable() else t.encode("unicode_escape").decode("ascii"))
    return ".".join(out)


class FieldChecker:
    """Collects every problem (never stops at the first) as Problem(message, location, hint)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def where(self, path: tuple[Any, ...]) -> str:  # pragma: no cover - every subclass says
        return self.filename

    def add(self, path: tuple[Any, ...], message: str, hint: str = "") -> None:
        key = key_text(path)
        msg = f"{key}: {message}" if key else message
        self.problems.append(Problem(msg, self.where(path), hint))

    def unknown(self, obj: dict[str, Any], allowed: Collection[str], path: tuple[Any, ...]) -> None:
        for k in obj:
            if k not in allowed:
                import difflib  # only when there is something to suggest

                close = difflib.get_close_matches(str(k)[:SHOWN], list(allowed), n=1, cutoff=0.6)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "known keys: " + ", ".join(sorted(allowed))
                )
                self.add(path + (k,), "unknown key", hint)

    def table(self, value: Any, path: tuple[Any, ...], example: str = "") -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, "must be an object" + (f" like {example}" if example else ""))
            return {}
        return value

    def strings(self, value: Any, path: tuple[Any, ...], what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(path, f"{what} must be a list of strings", 'e.g. ["a", "b"]')
            return ()
        return tuple(value)

    def number(
        self,
        value: Any,
        path: tuple[Any, ...],
        field: str,
        default: int | None = None,
        low: int = 1,
    ) -> int | None:
        """A whole number in [low, LIMITS[field]]; None (after a problem, or when absent and
        there is no default)."""
        if value is None:
            return default
        high = LIMITS[field]
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(
                path,
                f"must be a whole number from {low} to {high:,}",
                f"write it without quotes or units, e.g. {default or low}",
            )
            return None
        if not low <= value <= high:
            shown = (
                f"{value:,}" if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
            )
            self.add(
                path,
                f"{shown} is out of range: {field} is {low} to {high:,}",
                "see the limits in the README",
            )
            return None
        return value

    def ports(
        self, value: Any, path: tuple[Any, ...], default: tuple[Port, ...] = ()
    ) -> tuple[Port, ...]:
        if value is None:
            return default
        if not isinstance(value, dict):
            self.add(path, "must be a map of port label to container port", '{"http": 8080}')
            return ()
        out = []
        for label in sorted(value):
            to = value[label]
            if not PORT_LABEL_RE.match(label):
                self.add(
                    path + (label,),
                    f"invalid port label {cut(label)}",
                    "use lower-case letters, digits and '_' (it becomes NOMAD_PORT_<label>)",
                )
            if not isinstance(to, int) or isinstance(to, bool) or not 0 <= to <= 65535:
                self.add(
                    path + (label,), "port must be an integer 0-65535 (0: same as the host port)"
                )
                continue
            out.append(Port(label, to))
        return tuple(out)

    def env(self, value: Any, path: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.add(
                path, "must be a map of variable names to strings", 'e.g. {"LOG_LEVEL": "warn"}'
            )
            return ()
        out = []
        for k in sorted(value):
            v = value[k]
            if not ENV_RE.match(k):
                self.add(
                    path + (k,),
                    f"invalid environment variable name {cut(k)}",
                    "use letters, digits and '_', not starting with a digit (at most 128)",
                )
            if not isinstance(v, str):
                hint = (
                    f"write {cut(str(v))} in quotes"
                    if isinstance(v, int | float)
                    else "environment values are strings"
                )
                self.add(path + (k,), "value must be a string", hint)
                continue
            out.append((k, v))
        return tuple(out)

    def resources(
        self, value: Any, path: tuple[Any, ...], default: Resources = Resources()
    ) -> Resources:
        if value is None:
            return default
        if not isinstance(value, dict):
            self.add(path, 'must be an object like {"cpu": 200, "memory": 256}')
            return default
        self.unknown(value, RESOURCE_FIELDS, path)
        cpu = self.number(value.get("cpu"), path + ("cpu",), "cpu", default.cpu)
        mem = self.number(value.get("memory"), path + ("memory",), "memory", default.memory)
        return Resources(cpu or default.cpu, mem or default.memory)

    def check(
        self,
        value: Any,
        path: tuple[Any, ...],
        ports: tuple[Port, ...] | None,
        script: bool = False,
    ) -> Check | None:
        """`false` (no check) or {type, path, interval, timeout}; `ports` None means the
        ports had problems of their own (so no second message about them). Script checks
        (a command run inside the task) only where `script` is allowed: service templates."""
        if value is False:
            return None
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.add(path, 'must be an object like {"type": "http", "path": "/health"}, or false')
            return None
        self.unknown(value, CHECK_FIELDS | ({"command"} if script else set()), path)
        types = ("tcp", "http", "script") if script else ("tcp", "http")
        ctype = value.get("type", "tcp")
        if ctype not in types:
            self.add(
                path + ("type",), f"unknown check type {cut(ctype)}", "use " + ", ".join(types)
            )
        command: tuple[str, ...] = ()
        if script:
            cmd = value.get("command", [])
            if (
                not isinstance(cmd, list)
                or not all(isinstance(a, str) for a in cmd)
                or (ctype == "script") != bool(cmd)
            ):
                self.add(
                    path + ("command",),
                    'a script check needs command = ["program", "arg", ...] '
                    "(and only a script check has one)",
                    'e.g. command = ["pg_isready", "-h", "127.0.0.1"]',
                )
            else:
                command = tuple(cmd)
        cpath = value.get("path", "/" if ctype == "http" else "")
        if ctype == "http" and (not isinstance(cpath, str) or not cpath.startswith("/")):
            self.add(path + ("path",), "an http check needs a path starting with /")
        interval = self.number(value.get("interval"), path + ("interval",), "interval", 10) or 10
        timeout = self.number(value.get("timeout"), path + ("timeout",), "timeout", 2) or 2
        if ports == ():
            self.add(path, "a health check needs a port", 'declare "ports" or set "check": false')
        return Check(
            ctype if ctype in types else "tcp",
            cpath if isinstance(cpath, str) else "",
            interval,
            timeout,
            command,
        )


def bad_strings(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of strings (keys or values) that are not valid Unicode text: a lone surrogate
    (JSON's "\\ud800") cannot be written to a file or sent to Nomad. Iterative: depth-safe."""
    out = []
    stack = [(path, data)]
    while stack:
        p, v = stack.pop()
        if isinstance(v, str):
            if not _encodable(v):
                out.append(p)
        elif isinstance(v, dict):
            for k, item in v.items():
                if isinstance(k, str) and not _encodable(k):
                    out.append(p + (k.encode("utf-8", "backslashreplace").decode(),))
                    continue
                stack.append((p + (k,), item))
        elif isinstance(v, list):
            stack.extend((p + (i,), item) for i, item in enumerate(v))
    return sorted(out, key=str)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
