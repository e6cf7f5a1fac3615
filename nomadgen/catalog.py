"""The generic services a manifest can depend on: one TOML file each, packaged with nomadgen
and overridable from a user's folder (`--templates DIR`; the user's file wins)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from .errors import TemplateError
from .fields import NAME_RE, FieldChecker, clip, cut
from .files import InputFileError, read_text
from .manifest import IMAGE_RE
from .model import (
    NODE_LOCAL,
    SCHEDULINGS,
    STORAGES,
    InterfaceSpec,
    Runnable,
    ServiceTemplate,
    State,
)

TOP = {"description", "scheduling", "per_zone", "depends", "run", "check", "interface", "state"}
RUN = {
    "image",
    "command",
    "args",
    "ports",
    "env",
    "resources",
    "secrets_template",
    "secrets",
    "kill_timeout",
    "kill_signal",
}
STATE = {"path", "size", "storage"}
SIGNAL_RE = re.compile(r"^SIG[A-Z0-9]{2,8}\Z")
IFACE = {"protocol", "port", "url", "credentials", "env", "extra", "zone_fallback"}
PLACEHOLDERS = {"host", "port", "dns", "service", "set", "job", "credentials"}
# {host}; {env.POSTGRES_USER}: the set's own env (overrides included); {secret.password}: an item
# of its credentials, only ever rendered into a dependent's secrets/ file.
_PLACEHOLDER_RE = re.compile(r"\{((?:env\.|secret\.)?[A-Za-z0-9_]*)\}")


def packaged_dir() -> Path:
    here = Path(__file__).resolve().parent
    inside = here / "templates"  # in a wheel (hatch force-include)
    return inside if inside.is_dir() else here.parent / "templates"  # in a checkout


class Catalog:
    """Templates by name. Files are parsed on first use, so a manifest that needs two
    templates reads two files."""

    def __init__(self, user_dir: str | Path | None = None) -> None:
        self.files: dict[str, Path] = {}
        for d in (packaged_dir(), Path(user_dir) if user_dir else None):
            if d is None:
                continue
            if not d.is_dir():
                raise TemplateError(
                    f"templates folder not found: {d}",
                    hint="pass --templates with a folder of <service>.toml files",
                )
            for f in sorted(d.glob("*.toml")):
                self.files[f.stem] = f  # later folders win
        self._cache: dict[str, ServiceTemplate] = {}

    def names(self) -> list[str]:
        return sorted(self.files)

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str) -> ServiceTemplate:
        if name not in self._cache:
            self._cache[name] = load_template(self.files[name])
        return self._cache[name]


class _TemplateChecker(FieldChecker):
    """The shared field checks, located by TOML line (`file:line:col`)."""

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(filename)
        self.text = text
        self._positions: dict[tuple[Any, ...], tuple[int, int]] | None = None

    def where(self, path: tuple[Any, ...]) -> str:
        if self._positions is None:
            self._positions = toml_positions(self.text)
        for n in range(len(path), 0, -1):
            pos = self._positions.get(tuple(str(p) for p in path[:n]))
            if pos:
                return f"{self.filename}:{pos[0]}:{pos[1]}"
        return self.filename


def load_template(path: Path) -> ServiceTemplate:
    try:
        text = read_text(path)
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    except (OSError, InputFileError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4,300 digits
        raise TemplateError(f"{path}: {clip(str(exc))}", hint="fix the value") from None
    name = path.stem
    ck = _TemplateChecker(text, str(path))
    bad = ck.add

    if not NAME_RE.match(name):
        bad(
            (),
            f"file name {cut(name)} is not a valid service name",
            "lower-case letters, digits, '-'",
        )
    ck.unknown(data, TOP, ())
    run = ck.table(data.get("run"), ("run",))
    ck.unknown(run, RUN, ("run",))
    iface = ck.table(data.get("interface"), ("interface",))
    ck.unknown(iface, IFACE, ("interface",))

    scheduling = data.get("scheduling", "per-zone")
    if scheduling not in SCHEDULINGS:
        bad(("scheduling",), f"unknown scheduling {cut(scheduling)}", "use per-zone or node-local")
    per_zone = ck.number(data.get("per_zone"), ("per_zone",), "per_zone", 1) or 1
    depends = data.get("depends", [])
    if not isinstance(depends, list) or not all(
        isinstance(d, str) and all(NAME_RE.match(p) for p in d.split(":")) for d in depends
    ):
        bad(("depends",), "must be a list of service or set names", 'e.g. depends = ["psql"]')
        depends = []
    if scheduling == NODE_LOCAL and depends:
        bad(
            ("depends",),
            "a node-local service cannot have dependencies of its own",
            "it runs inside its dependent's group; give the dependent those dependencies",
        )

    image = run.get("image", "")
    if not isinstance(image, str) or not IMAGE_RE.match(image):
        bad(("run", "image"), "a container image is required, e.g. postgres:16")
    command = run.get("command", "")
    if not isinstance(command, str):
        bad(("run", "command"), "must be a string")
        command = ""
    ports = ck.ports(run.get("ports", {}), ("run", "ports"))
    env = ck.env(run.get("env", {}), ("run", "env"))
    args = ck.strings(run.get("args", []), ("run", "args"), "args")
    secret_items = run.get("secrets", [])
    if not isinstance(secret_items, list) or not all(
        isinstance(x, str) and re.match(r"^[A-Za-z0-9_]{1,64}\Z", x) for x in secret_items
    ):
        bad(("run", "secrets"), 'must be a list of item names like ["password"]')
        secret_items = []
    if secret_items and not iface.get("credentials"):
        bad(
            ("run", "secrets"),
            "generated secrets need a place: set interface.credentials",
            'e.g. credentials = "nomad/jobs/{job}"',
        )
    secrets_template = run.get("secrets_template", "")
    if not isinstance(secrets_template, str):
        bad(("run", "secrets_template"), "must be a string (consul-template text)")
        secrets_template = ""
    resources = ck.resources(run.get("resources", {}), ("run", "resources"))
    check = ck.check(data.get("check", {}), ("check",), None, script=True)
    state = _state(data.get("state"), ck)
    if scheduling == NODE_LOCAL and state is not None:
        bad(
            ("state",),
            "a node-local service cannot keep data",
            "it runs as a sidecar in its dependent's group; make it per-zone to give it storage",
        )
        state = None
    kill_timeout = run.get("kill_timeout", 0)
    if (
        not isinstance(kill_timeout, int)
        or isinstance(kill_timeout, bool)
        or not 0 <= kill_timeout <= 3600
    ):
        bad(
            ("run", "kill_timeout"),
            "must be whole seconds (0-3600)",
            "Nomad clients cap it at their max_kill_timeout (30 s by default)",
        )
        kill_timeout = 0
    kill_signal = run.get("kill_signal", "")
    if kill_signal and (not isinstance(kill_signal, str) or not SIGNAL_RE.match(kill_signal)):
        bad(("run", "kill_signal"), "must be a signal name like SIGINT")
        kill_signal = ""

    port_label = iface.get("port", ports[0].label if ports else "")
    if not isinstance(port_label, str) or port_label not in {p.label for p in ports}:
        bad(
            ("interface", "port"),
            f"{cut(port_label)} is not one of run.ports",
            "name the port dependents connect to",
        )
        port_label = ""
    protocol = iface.get("protocol", "tcp")
    if not isinstance(protocol, str) or not protocol.isidentifier():
        bad(("interface", "protocol"), "must be a short word like http, grpc or tcp")
    ienv = ck.table(iface.get("env"), ("interface", "env"))
    extra = ck.table(iface.get("extra"), ("interface", "extra"))
    envd = dict(env)
    for part, tab in (("env", ienv), ("extra", extra)):
        for k, v in tab.items():
            if not re.match(r"^[A-Z0-9_]{1,64}\Z", k) or not isinstance(v, str):
                bad(("interface", part, k), 'entries are SUFFIX = "pattern" (upper-case suffix)')
            else:
                _check_pattern(v, ("interface", part, k), bad, envd, secret_items)
    for key in ("url", "credentials"):
        v = iface.get(key, "")
        if not isinstance(v, str):
            bad(("interface", key), "must be a string")
        else:
            _check_pattern(v, ("interface", key), bad, envd, ())
    fallback = iface.get("zone_fallback", True)
    if not isinstance(fallback, bool):
        bad(
            ("interface", "zone_fallback"),
            "must be true or false",
            "false for stateful services: a dependent waits for its own zone's instance",
        )
        fallback = True
    description = data.get("description", "")
    if not isinstance(description, str):
        bad(("description",), "must be a string")
    if ck.problems:
        ck.problems.sort(
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.location.rsplit(":", 2)[1:]]
        )
        n = len(ck.problems)
        raise TemplateError(
            f"{path}: {n} problem{'s' if n > 1 else ''} in service template {name!r}", ck.problems
        )
    return ServiceTemplate(
        name=name,
        description=description,
        run=Runnable(
            image=image,
            command=command,
            args=args,
            ports=ports,
            env=env,
            resources=resources,
            check=check,
            secrets_template=secrets_template.strip("\n"),
            secret_items=tuple(secret_items),
            state=state,
            kill_timeout_s=kill_timeout,
            kill_signal=kill_signal,
        ),
        interface=InterfaceSpec(
            protocol=protocol,
            port=port_label,
            env=tuple(sorted(ienv.items())),
            extra=tuple(sorted(extra.items())),
            url=iface.get("url", ""),
            credentials=iface.get("credentials", ""),
            zone_fallback=fallback,
        ),
        scheduling=scheduling,
        per_zone=per_zone,
        depends=tuple(depends),
        source=str(path),
    )


def _state(raw: Any, ck: FieldChecker) -> State | None:
    if raw is None:
        return None
    t = ck.table(raw, ("state",))
    ck.unknown(t, STATE, ("state",))
    path, size, storage = t.get("path", ""), t.get("size", 1024), t.get("storage", "")
    ok = True
    if not isinstance(path, str) or not path.startswith("/") or "{" in path or "\n" in path:
        ck.add(
            ("state", "path"),
            "must be an absolute path inside the container",
            'where the image keeps its data, e.g. path = "/var/lib/postgresql/data"',
        )
        ok = False
    if not isinstance(size, int) or isinstance(size, bool) or size < 10:
        ck.add(("state", "size"), "must be a size in MB (at least 10)", "e.g. size = 1024")
        ok = False
    elif ck.number(size, ("state", "size"), "size") is None:
        ok = False
    if storage not in ("", *STORAGES):
        ck.add(
            ("state", "storage"),
            f"unknown storage mode {cut(storage)}",
            "use " + ", ".join(STORAGES),
        )
        ok = False
    return State(path, size, storage) if ok else None


_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def toml_positions(text: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(line, column) of each table header and key of a TOML text, by dotted path. Good enough
    for pointing at a problem: headers, `a.b = ...` and keys inside one-line inline tables."""
    pos: dict[tuple[Any, ...], tuple[int, int]] = {}
    table: tuple[Any, ...] = ()

    def parts(dotted: str) -> tuple[Any, ...]:
        return tuple(p.strip().strip("\"'") for p in dotted.split("."))

    for ln, line in enumerate(text.splitlines(), 1):
        m = _TOML_HEADER.match(line)
        if m:
            table = parts(m.group(1))
            pos.setdefault(table, (ln, line.index("[") + 1))
            continue
        m = _TOML_KEY.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        key = table + parts(m.group(1))
        pos.setdefault(key, (ln, m.start(1) + 1))
        rest = line[m.end() :]
        if rest.lstrip().startswith("{"):  # inline table: its keys are on this line
            base = len(line) - len(rest)
            for im in re.finditer(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=", rest):
                pos.setdefault(key + (im.group(1),), (ln, base + im.start(1) + 1))
    return pos


def _check_pattern(
    value: str,
    key: tuple[Any, ...],
    bad: Callable[..., None],
    env: dict[str, Any],
    secret_items: Collection[str],
) -> None:
    # Patterns end up inside consul-template text and env files: no delimiters, no newlines.
    for ph in _PLACEHOLDER_RE.findall(value):
        kind, _, item = ph.partition(".")
        if kind == "env" and item:
            if item not in env:
                bad(key, f"{{{ph}}}: {item} is not in run.env", "name one of run.env's variables")
        elif kind == "secret" and item:
            if item not in secret_items:
                bad(
                    key,
                    f"{{{ph}}}: {item} is not in run.secrets",
                    "secrets reach dependents only from the interface's own credentials",
                )
        elif ph not in PLACEHOLDERS:
            bad(
                key,
                f"unknown placeholder {{{ph}}}",
                "known: " + ", ".join(sorted(PLACEHOLDERS)) + ", {env.NAME}, {secret.ITEM}",
            )
    if "{{" in value or "}}" in value or "\n" in value:
        bad(key, "must not contain '{{', '}}' or newlines")
