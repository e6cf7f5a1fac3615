"""Reading a manifest: the seed's JSON map of service names to `{"depends": [...]}`, plus the
optional fields a real deployment needs. Every problem is collected (not just the first) with
its file, line and column, and a hint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import refs
from .errors import ManifestError, Problem
from .fields import ENV_RE, NAME_RE, PORT_LABEL_RE, FieldChecker, bad_strings, clip, cut, key_text
from .files import MAX_MANIFEST_BYTES, InputFileError, read_text
from .model import (
    STORAGES,
    Constraint,
    InterfaceSpec,
    Manifest,
    Override,
    Port,
    Runnable,
    Service,
    Wiring,
)

__all__ = ["ENV_RE", "NAME_RE", "PORT_LABEL_RE", "HOST_RE", "IMAGE_RE", "load", "parse"]

# NAME_RE: RFC 1123 label, lower-case: valid as a Nomad job ID, a Consul service name and a
# DNS label (fields.py). Every pattern ends in \Z: `$` would let a final newline through.
HOST_RE = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?\Z")
IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")

DEFAULT_IMAGE = "busybox:1.36"
IMAGE_HINT = (
    'a non-empty string without spaces, e.g. "postgres:16.4-alpine" or "ghcr.io/org/app:1.2"'
)
DEFAULT_PORT = Port("http", 8080)
# Runnable as-is so the seed's bare manifest renders jobs Nomad can start: a tiny web server.
DEFAULT_COMMAND = "httpd"
DEFAULT_ARGS = ("-f", "-p", "8080", "-h", "/local")

FIELDS = {
    "depends": "list of dependencies: a generic service (`psql`) or a set (`psql:app`)",
    "image": "container image (docker driver)",
    "command": "command to run in the container",
    "args": "list of arguments",
    "ports": 'map of port label to the port inside the container, e.g. {"http": 8080}',
    "env": "map of environment variables",
    "resources": '{"cpu": MHz, "memory": MB}',
    "count": "total instances, spread over the zones (instead of one per zone)",
    "per_zone": "instances in each zone (default 1)",
    "check": '{"type": "http", "path": "/health"} or {"type": "tcp"} or false',
    "protocol": "protocol of the interface dependents get (default: http for a port named http)",
    "external": 'a service that runs elsewhere, e.g. {"address": "db.example.com", "port": 5432}: '
    "nomadgen registers it in Consul so dependents find it like any other",
    "overrides": 'tuning of this service\'s dedicated sets, e.g. {"psql": {"image": "postgres:17"}}',
    "wiring": 'how each dependency is taken, e.g. {"psql": {"change_mode": "noop"}}',
    "tags": "extra Consul tags of this service (for ingress such as Traefik or Fabio)",
    "constraints": 'placement constraints, e.g. [{"attribute": "${node.class}", "value": "web"}]',
    "node_pool": "the Nomad node pool to run in",
}
WIRING_FIELDS = {"change_mode", "zone_fallback"}
# No "signal": a dependency reaches its task as environment variables (an `env = true`
# template), which a running process cannot re-read, and Nomad refuses a signal for such a
# template ("cannot use signals with env var templates", nomad/structs/structs.go
# Template.Validate; nomad-jobspec validate says the same).
CHANGE_MODES = ("restart", "noop")
NO_SIGNAL = (
    "a signal cannot reach a dependency's values: they are environment variables, which a "
    "running process cannot re-read, and Nomad refuses a signal for an environment template"
)
CONSTRAINT_FIELDS = {"attribute", "operator", "value"}
# Nomad's constraint operators (structs.Constraint.Validate), without the ones nomadgen sets itself.
OPERATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "regexp",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "version",
    "semver",
    "is_set",
    "is_not_set",
    "distinct_hosts",
)
ATTRIBUTE_RE = re.compile(
    r"^\$\{(node\.(class|datacenter|pool|unique\.name|unique\.id)|"
    r"(attr|meta)\.[A-Za-z0-9_.-]{1,128})\}\Z"
)
POOL_RE = re.compile(r"^[a-zA-Z0-9-_]{1,128}\Z")
OVERRIDE_FIELDS = {"image", "args", "env", "resources", "per_zone", "state"}
STATE_FIELDS = {"storage", "size", "path"}


def load(path: str | Path, name: str | None = None) -> Manifest:
    p = Path(path)
    try:
        text = read_text(p, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(
            f"manifest not found: {p}",
            hint="pass the path of a JSON manifest, e.g. examples/dockland.json",
        ) from None
    except InputFileError as exc:
        raise ManifestError(
            f"cannot read manifest {p}: {exc}",
            hint="a manifest is a UTF-8 JSON file (see Limits in the README)",
        ) from None
    return parse(text, str(p), name or default_name(p))


def default_name(p: Path) -> str:
    stem = p.name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9-]+", "-", stem).strip("-") or "manifest"


class _Dup:
    """Marks an object that had duplicate keys; Python's json silently keeps the last one."""


def parse(text: str, filename: str = "<manifest>", name: str = "manifest") -> Manifest:
    had_dups = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) < len(items):  # duplicates: Python's json keeps only the last one
            seen: set[str] = set()
            out[_Dup] = [k for k, _ in items if k in seen or seen.add(k)]  # type: ignore[index, func-returns-value]
            had_dups.append(True)
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        hint = "check the JSON syntax"
        if "delimiter" in exc.msg:
            hint = (
                "a comma is probably missing between two items (or one too many before a bracket)"
            )
        raise ManifestError(
            exc.msg, location=f"{filename}:{exc.lineno}:{exc.colno}", hint=hint
        ) from None
    except RecursionError:
        raise ManifestError(
            f"{filename}: nested too deeply for a manifest",
            hint="a manifest is a few levels deep: services, their fields, "
            "and maps or lists inside them",
        ) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        reason = "a number has more than 4,300 digits" if "digits" in str(exc) else clip(str(exc))
        raise ManifestError(
            f"{filename}: {reason}", hint="numbers in a manifest are small whole numbers"
        ) from None
    checker = _Checker(text, filename)
    broken = bad_strings(data)
    if broken:
        for path in broken:
            checker.add(
                path,
                "not valid Unicode text (a lone surrogate like \\ud800)",
                "write the character itself, or a valid \\u pair",
            )
        checker.fail()
    if had_dups:
        checker.all_dups(data)
    services = checker.manifest(data)
    if not NAME_RE.match(name):
        checker.add(
            (),
            f"manifest name {cut(name)} is not a DNS label",
            "name the file (or pass --name) with lower-case letters, digits and '-'",
        )
    checker.fail()
    return Manifest(name=name, path=filename, services=tuple(services), text=text)


def _position(p: Problem) -> tuple[int, int]:
    parts = p.location.rsplit(":", 2)
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return 0, 0


class _Checker(FieldChecker):
    def __init__(self, text: str, filename: str) -> None:
        super().__init__(filename)
        self.text = text
        self._positions: dict[tuple[Any, ...], tuple[int, int]] | None = None
        self._dup_positions: dict[tuple[Any, ...], tuple[int, int]] | None = None

    def fail(self) -> None:
        if self.problems:
            self.problems.sort(key=_position)
            n = len(self.problems)
            raise ManifestError(
                f"{self.filename}: {n} problem{'s' if n > 1 else ''} in the manifest", self.problems
            )

    def where(self, path: tuple[Any, ...], dup: bool = False) -> str:
        if dup:
            if self._dup_positions is None:  # one scan for all duplicates: linear
                self._dup_positions = locate(self.text, dup_positions=True)
            pos = self._dup_positions.get(path)
            if pos:
                return f"{self.filename}:{pos[0]}:{pos[1]}"
        if self._positions is None:
            self._positions = locate(self.text)
        # Fall back to the nearest enclosing element that has a position.
        for n in range(len(path), -1, -1):
            pos = self._positions.get(path[:n])
            if pos:
                return f"{self.filename}:{pos[0]}:{pos[1]}"
        return self.filename

    def dups(self, obj: dict[str, Any], path: tuple[Any, ...]) -> None:
        for k in obj.pop(_Dup, ()):  # type: ignore[call-overload]  # a marker key, not a str
            self.problems.append(
                Problem(
                    f"{key_text(path + (k,))}: duplicate key (JSON keeps only the last one)",
                    self.where(path + (k,), dup=True),
                    "merge the two entries into one",
                )
            )

    def all_dups(self, data: Any) -> None:
        """Report (and drop the markers of) every duplicate key, in one pass over the data."""
        stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
        while stack:
            path, v = stack.pop()
            if isinstance(v, dict):
                if _Dup in v:
                    self.dups(v, path)
                stack.extend((path + (k,), item) for k, item in v.items())
            elif isinstance(v, list):
                stack.extend((path + (i,), item) for i, item in enumerate(v))

    def manifest(self, data: Any) -> list[Service]:
        if not isinstance(data, dict):
            self.add(
                (),
                "the manifest must be a JSON object mapping service names to definitions",
                'e.g. {"app": {"depends": ["psql"]}}',
            )
            return []
        if not data:
            self.add((), "the manifest declares no services", 'add one, e.g. {"app": {}}')
        services = []
        for sname in sorted(data):
            body = data[sname]
            path = (sname,)
            if not NAME_RE.match(sname):
                hint = (
                    "use lower-case letters, digits and '-' (1-63 characters; no '_', '.' or ':')"
                )
                if ":" in sname:
                    hint = "':' names a set (psql:app) in `depends`; declare the service itself as its key"
                self.add(path, f"invalid service name {cut(sname)}", hint)
            if not isinstance(body, dict):
                self.add(path, "a service must be a JSON object", 'e.g. {"depends": ["psql"]}')
                continue
            svc = self.service(sname, body, path)
            if svc:
                services.append(svc)
        return services

    def service(self, name: str, body: dict[str, Any], path: tuple[Any, ...]) -> Service | None:
        self.unknown(body, FIELDS, path)
        if "external" in body:
            return self.external(name, body, path)
        before = len(self.problems)
        depends = self.depends(body.get("depends", []), path + ("depends",))
        image = body.get("image", DEFAULT_IMAGE)
        if not isinstance(image, str) or not IMAGE_RE.match(image):
            self.add(
                path + ("image",),
                "must be a container image reference like postgres:16",
                IMAGE_HINT,
            )
        command = body.get("command", "" if "image" in body else DEFAULT_COMMAND)
        if not isinstance(command, str):
            self.add(path + ("command",), "must be a string", 'e.g. "/bin/server"')
            command = ""
        args = self.strings(
            body.get("args", [] if "image" in body else list(DEFAULT_ARGS)),
            path + ("args",),
            "args",
        )
        for i, a in enumerate(args):
            self.driver_text(a, path + ("args", i))
        self.driver_text(command, path + ("command",))
        before_ports = len(self.problems)
        ports = self.ports(body.get("ports"), path + ("ports",), (DEFAULT_PORT,))
        ports_ok = len(self.problems) == before_ports
        env, env_refs = self.env_with_refs(body.get("env", {}), path + ("env",))
        resources = self.resources(body.get("resources", {}), path + ("resources",))
        wiring = self.wiring(body.get("wiring", {}), path + ("wiring",), depends)
        tags = self.tags(body.get("tags", []), path + ("tags",))
        constraints = self.constraints(body.get("constraints", []), path + ("constraints",))
        node_pool = body.get("node_pool", "")
        if not isinstance(node_pool, str) or (node_pool and not POOL_RE.match(node_pool)):
            self.add(path + ("node_pool",), "must be a node pool name (letters, digits, '-', '_')")
            node_pool = ""
        count = self.number(body.get("count"), path + ("count",), "count")
        per_zone = self.number(body.get("per_zone"), path + ("per_zone",), "per_zone", 1) or 1
        if "count" in body and "per_zone" in body:
            self.add(
                path + ("count",),
                "count and per_zone cannot both be set",
                "count is a total spread over the zones; per_zone is a number in each zone",
            )
        check = self.check(body.get("check", {}), path + ("check",), ports if ports_ok else None)
        protocol = body.get("protocol")
        if protocol is not None and (not isinstance(protocol, str) or not protocol.isidentifier()):
            self.add(path + ("protocol",), "must be a short word like http, grpc or tcp")
            protocol = None
        overrides = self.overrides(body.get("overrides", {}), path + ("overrides",), depends)
        if len(self.problems) > before:
            return None
        first = ports[0].label if ports else ""
        proto = protocol or ("http" if first in ("http", "https") else "tcp")
        iface = InterfaceSpec(
            protocol=proto,
            port=first,
            env=(
                ("HOST", "{host}"),
                ("PORT", "{port}"),
                ("ADDR", "{host}:{port}"),
                ("URL", proto + "://{host}:{port}"),
            )
            if first
            else (),
            url=proto + "://{dns}:{port}" if first else "",
        )
        run = Runnable(
            image=image,
            command=command,
            args=args,
            ports=ports,
            env=env,
            resources=resources,
            check=check,
        )
        return Service(
            name=name,
            depends=depends,
            run=run,
            interface=iface,
            per_zone=per_zone,
            total=count,
            overrides=overrides,
            env_refs=env_refs,
            wiring=wiring,
            tags=tags,
            constraints=constraints,
            node_pool=node_pool,
        )

    def external(self, name: str, body: dict[str, Any], path: tuple[Any, ...]) -> Service | None:
        before = len(self.problems)
        for k in sorted(set(body) - {"external", "protocol"}):
            self.add(
                path + (k,),
                "an external service runs elsewhere; it takes only `external` and `protocol`",
                "remove this key, or drop `external` to run it here",
            )
        ext = body["external"]
        p = path + ("external",)
        if not isinstance(ext, dict):
            self.add(p, 'must be an object like {"address": "db.example.com", "port": 5432}')
            return None
        self.unknown(ext, {"address", "port"}, p)
        address: Any = ext.get("address")
        if not isinstance(address, str) or not HOST_RE.match(address):
            self.add(p + ("address",), "must be a host name or IP address")
        port: Any = ext.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            self.add(p + ("port",), "must be a port number 1-65535")
        protocol = body.get("protocol", "tcp")
        if not isinstance(protocol, str) or not protocol.isidentifier():
            self.add(path + ("protocol",), "must be a short word like http, grpc or tcp")
        if len(self.problems) > before:
            return None
        iface = InterfaceSpec(
            protocol=protocol,
            port="external",
            env=(("HOST", "{host}"), ("PORT", "{port}"), ("ADDR", "{host}:{port}")),
            url=f"{protocol}://{{dns}}:{port}",
        )
        run = Runnable(image="", check=None)
        return Service(name=name, depends=(), run=run, interface=iface, external=(address, port))

    def overrides(
        self, value: Any, path: tuple[Any, ...], depends: tuple[str, ...]
    ) -> tuple[Any, ...]:
        if not isinstance(value, dict):
            self.add(path, 'must be an object like {"psql": {"image": "postgres:17"}}')
            return ()
        out = []
        for dep in sorted(value):
            body = value[dep]
            p = path + (dep,)
            if dep not in depends or ":" in dep:
                self.add(
                    p,
                    f"{cut(dep)} is not a generic dependency of this service",
                    "overrides tune the sets made for this service's generic dependencies; "
                    "add it to depends first",
                )
                continue
            if not isinstance(body, dict):
                self.add(p, "must be an object", 'e.g. {"image": "postgres:16.4", "per_zone": 2}')
                continue
            self.unknown(body, OVERRIDE_FIELDS, p)
            image = body.get("image")
            if image is not None and (not isinstance(image, str) or not IMAGE_RE.match(image)):
                self.add(
                    p + ("image",),
                    "must be a container image reference like postgres:16",
                    IMAGE_HINT,
                )
            args = None
            if "args" in body:
                args = self.strings(body["args"], p + ("args",), "args")
                for i, a in enumerate(args):
                    self.driver_text(a, p + ("args", i))
            env = self.env(body.get("env", {}), p + ("env",))
            res = (
                self.resources(body["resources"], p + ("resources",))
                if "resources" in body
                else None
            )
            per_zone = self.number(body.get("per_zone"), p + ("per_zone",), "per_zone")
            state = self.state(body["state"], p + ("state",)) if "state" in body else ()
            out.append((dep, Override(image, args, env, res, per_zone, state)))
        return tuple(out)

    def state(self, value: Any, path: tuple[Any, ...]) -> tuple[tuple[str, object], ...]:
        """Where a stateful dependency keeps its data: storage mode, size (MB), path."""
        if not isinstance(value, dict):
            self.add(path, 'must be an object like {"storage": "host", "size": 2048}')
            return ()
        self.unknown(value, STATE_FIELDS, path)
        out: list[tuple[str, object]] = []
        if "storage" in value:
            mode = value["storage"]
            if mode not in STORAGES:
                self.add(
                    path + ("storage",),
                    f"unknown storage mode {cut(mode)}",
                    "use " + ", ".join(STORAGES),
                )
            else:
                out.append(("override", mode))
        if "size" in value:
            size = self.number(value["size"], path + ("size",), "size")
            if size is not None and size < 10:
                self.add(path + ("size",), "a data size is in MB, at least 10", "e.g. 2048")
            elif size is not None:
                out.append(("size_mb", size))
        if "path" in value:
            where_ = value["path"]
            if not isinstance(where_, str) or not re.match(r"^/[A-Za-z0-9._/-]{0,1023}\Z", where_):
                self.add(
                    path + ("path",),
                    "must be an absolute path inside the container",
                    'e.g. "/var/lib/postgresql/data"',
                )
            else:
                out.append(("path", where_))
        return tuple(out)

    def depends(self, value: Any, path: tuple[Any, ...]) -> tuple[str, ...]:
        deps = self.strings(value, path, "depends")
        seen: set[str] = set()
        for i, d in enumerate(deps):
            parts = d.split(":")
            if not all(NAME_RE.match(p) for p in parts) or len(parts) > 3:
                self.add(
                    path + (i,),
                    f"invalid dependency {cut(d)}",
                    "write a generic service (`psql`) or a set (`psql:app`)",
                )
            if d in seen:
                self.add(path + (i,), f"{cut(d)} is listed twice", "list each dependency once")
            seen.add(d)
        return deps

    def env_with_refs(
        self, value: Any, path: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Plain variables (with `$${` unescaped) and those that refer to dependencies."""
        plain, with_refs = [], []
        for k, v in self.env(value, path):
            try:
                parts = refs.parse(v)
            except refs.RefError as exc:
                self.add(path + (k,), f"{exc} at character {exc.offset + 1}", exc.hint)
                continue
            text = refs.literal(parts)
            if text is None:
                with_refs.append((k, parts))
            else:
                plain.append((k, text))
        return tuple(plain), tuple(with_refs)

    def wiring(
        self, value: Any, path: tuple[Any, ...], depends: tuple[str, ...]
    ) -> tuple[Any, ...]:
        if not isinstance(value, dict):
            self.add(path, 'must be an object like {"psql": {"change_mode": "noop"}}')
            return ()
        self.dups(value, path)
        out = []
        for dep in sorted(value):
            body = value[dep]
            p = path + (dep,)
            if dep not in depends:
                import difflib

                close = difflib.get_close_matches(dep, list(depends), n=1)
                self.add(
                    p,
                    f"{dep!r} is not in this service's depends",
                    f"did you mean {close[0]!r}?"
                    if close
                    else "wiring is keyed by a dependency as written in depends",
                )
                continue
            if not isinstance(body, dict):
                self.add(p, "must be an object")
                continue
            self.dups(body, p)
            self.unknown({k: v for k, v in body.items() if k != "signal"}, WIRING_FIELDS, p)
            mode = body.get("change_mode", "restart")
            if mode == "signal" or "signal" in body:
                where = ("change_mode",) if mode == "signal" else ("signal",)
                self.add(p + where, NO_SIGNAL, "use restart (the default) or noop")
                mode = "restart"
            elif mode not in CHANGE_MODES:
                self.add(
                    p + ("change_mode",), f"unknown change_mode {mode!r}", "use restart or noop"
                )
                mode = "restart"
            fallback = body.get("zone_fallback")
            if fallback is not None and not isinstance(fallback, bool):
                self.add(p + ("zone_fallback",), "must be true or false")
                fallback = None
            out.append((dep, Wiring(mode, fallback)))
        return tuple(out)

    def tags(self, value: Any, path: tuple[Any, ...]) -> tuple[str, ...]:
        tags = self.strings(value, path, "tags")
        for i, tag in enumerate(tags):
            if not tag or len(tag) > 255 or any(ord(c) < 32 for c in tag):
                self.add(path + (i,), "a tag is 1-255 printable characters")
            elif "${" in tag or "%{" in tag:
                self.add(
                    path + (i,),
                    "contains '${' or '%{', which Nomad interpolates in service tags",
                    "tags are literal text; nomadgen adds the zone tag itself",
                )
        return tags

    def constraints(self, value: Any, path: tuple[Any, ...]) -> tuple[Constraint, ...]:
        if not isinstance(value, list):
            self.add(path, 'must be a list like [{"attribute": "${node.class}", "value": "web"}]')
            return ()
        out = []
        for i, c in enumerate(value):
            p = path + (i,)
            if not isinstance(c, dict):
                self.add(p, 'must be an object like {"attribute": "${node.class}", "value": "web"}')
                continue
            self.dups(c, p)
            self.unknown(c, CONSTRAINT_FIELDS, p)
            attr = c.get("attribute")
            if not isinstance(attr, str) or not ATTRIBUTE_RE.match(attr):
                self.add(
                    p + ("attribute",),
                    "must be a node attribute like ${node.class}, "
                    "${meta.rack} or ${attr.kernel.name}",
                )
            op = c.get("operator", "=")
            if op not in OPERATORS:
                import difflib

                close = difflib.get_close_matches(str(op), OPERATORS, n=1)
                self.add(
                    p + ("operator",),
                    f"unknown operator {op!r}",
                    f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(OPERATORS),
                )
            val = c.get("value", "")
            if (
                not isinstance(val, str)
                or any(ord(ch) < 32 for ch in val)
                or "${" in val
                or "%{" in val
            ):
                self.add(p + ("value",), "must be a plain string (no '${' or '%{')")
            elif not val and op not in ("is_set", "is_not_set", "distinct_hosts"):
                self.add(p + ("value",), f"operator {op!r} needs a value")
            out.append(Constraint(str(attr), str(op), val if isinstance(val, str) else ""))
        return tuple(out)

    def driver_text(self, value: str, path: tuple[Any, ...]) -> None:
        # Nomad re-decodes driver config as HCL on the client, so %{ is evaluated even when
        # escaped (nomad GH-14972); there is no safe way to pass it through args.
        if "%{" in value:
            self.add(
                path,
                "contains '%{', which Nomad evaluates as a template directive in driver config",
                "pass the value through `env` and reference it as ${VAR} instead",
            )


def locate(text: str, dup_positions: bool = False) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Map each JSON path to the (line, column) of its key, or of its value for list items.
    Only run when there is an error to point at, so the happy path stays at C speed."""
    pos: dict[tuple[Any, ...], tuple[int, int]] = {}
    dups: dict[tuple[Any, ...], tuple[int, int]] = {}
    i = 0
    n = len(text)
    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())

    import bisect

    def lc(k: int) -> tuple[int, int]:
        ln = bisect.bisect_right(line_starts, k)
        return ln, k - line_starts[ln - 1] + 1

    def ws() -> None:
        nonlocal i
        while i < n and text[i] in " \t\r\n":
            i += 1

    def string() -> str:
        nonlocal i
        end = i + 1
        while end < n and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        raw = text[i : end + 1]
        i = end + 1
        try:
            return str(json.loads(raw))
        except ValueError:
            return raw.strip('"')

    def value(path: tuple[Any, ...]) -> None:
        nonlocal i
        ws()
        if i >= n:
            return
        c = text[i]
        if c == "{":
            i += 1
            while True:
                ws()
                if i >= n or text[i] == "}":
                    i += 1
                    return
                if text[i] == ",":
                    i += 1
                    continue
                if text[i] != '"':
                    return
                start = i
                key = string()
                if path + (key,) in pos:
                    dups[path + (key,)] = lc(start)
                else:
                    pos[path + (key,)] = lc(start)
                ws()
                if i < n and text[i] == ":":
                    i += 1
                value(path + (key,))
        elif c == "[":
            i += 1
            idx = 0
            while True:
                ws()
                if i >= n or text[i] == "]":
                    i += 1
                    return
                if text[i] == ",":
                    i += 1
                    continue
                pos.setdefault(path + (idx,), lc(i))
                before = i
                value(path + (idx,))
                idx += 1
                if i == before:
                    return
        elif c == '"':
            string()
        else:
            m = re.compile(r"[^\s,\]}]+").match(text, i)
            i = m.end() if m else i + 1

    try:
        value(())
    except RecursionError:  # deeper than any valid manifest: the positions found so far do
        pass
    return pos if not dup_positions else dups


def where(manifest: Manifest, *path: str | int) -> str:
    """`file:line:col` of a key in the manifest, for errors found after loading."""
    pos = locate(manifest.text)
    for n in range(len(path), 0, -1):
        if path[:n] in pos:
            line, col = pos[path[:n]]
            return f"{manifest.path}:{line}:{col}"
    return manifest.path
