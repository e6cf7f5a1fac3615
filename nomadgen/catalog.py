"""The generic services a manifest can depend on: one TOML file each, packaged with nomadgen
and overridable from a user's folder (`--templates DIR`; the user's file wins)."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import Problem, TemplateError
from .manifest import ENV_RE, IMAGE_RE, NAME_RE, PORT_LABEL_RE
from .model import (
    NODE_LOCAL,
    SCHEDULINGS,
    STORAGES,
    Check,
    InterfaceSpec,
    Port,
    Resources,
    Runnable,
    ServiceTemplate,
    State,
)

TOP = {"description", "scheduling", "per_zone", "depends", "run", "check", "interface", "state"}
RUN = {"image", "command", "args", "ports", "env", "resources", "secrets_template", "secrets",
       "kill_timeout", "kill_signal"}
CHECK = {"type", "path", "interval", "timeout", "command"}
STATE = {"path", "size", "storage"}
SIGNAL_RE = re.compile(r"^SIG[A-Z0-9]{2,8}$")
IFACE = {"protocol", "port", "url", "credentials", "env"}
PLACEHOLDERS = {"host", "port", "dns", "service", "set", "job", "credentials"}
_PLACEHOLDER_RE = re.compile(r"\{([a-z_]*)\}")


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
                raise TemplateError(f"templates folder not found: {d}",
                                    hint="pass --templates with a folder of <service>.toml files")
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


def load_template(path: Path) -> ServiceTemplate:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from None
    problems: list[Problem] = []
    name = path.stem

    def bad(key: str, msg: str, hint: str = "") -> None:
        problems.append(Problem(f"{key}: {msg}", str(path), hint))

    def unknown(obj: dict, allowed: set[str], prefix: str) -> None:
        for k in obj:
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                bad(prefix + k, "unknown key",
                    f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(sorted(allowed)))

    def table(obj: Any, key: str) -> dict:
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            bad(key, "must be a table")
            return {}
        return obj

    if not NAME_RE.match(name):
        bad("file name", f"{name!r} is not a valid service name", "lower-case letters, digits, '-'")
    unknown(data, TOP, "")
    run = table(data.get("run"), "run")
    unknown(run, RUN, "run.")
    chk = data.get("check", {})
    iface = table(data.get("interface"), "interface")
    unknown(iface, IFACE, "interface.")

    scheduling = data.get("scheduling", "per-zone")
    if scheduling not in SCHEDULINGS:
        bad("scheduling", f"unknown scheduling {scheduling!r}", "use per-zone or node-local")
    per_zone = data.get("per_zone", 1)
    if not isinstance(per_zone, int) or per_zone < 1:
        bad("per_zone", "must be a whole number of at least 1")
        per_zone = 1
    depends = data.get("depends", [])
    if not isinstance(depends, list) or not all(
            isinstance(d, str) and all(NAME_RE.match(p) for p in d.split(":")) for d in depends):
        bad("depends", "must be a list of service or set names")
        depends = []
    if scheduling == NODE_LOCAL and depends:
        bad("depends", "a node-local service cannot have dependencies of its own",
            "it runs inside its dependent's group; give the dependent those dependencies")

    image = run.get("image", "")
    if not isinstance(image, str) or not IMAGE_RE.match(image):
        bad("run.image", "a container image is required, e.g. postgres:16")
    ports_t = table(run.get("ports", {}), "run.ports")
    ports = []
    for label in sorted(ports_t):
        to = ports_t[label]
        if not PORT_LABEL_RE.match(label) or not isinstance(to, int) or not 0 <= to <= 65535:
            bad(f"run.ports.{label}", "a port is label = number (0-65535); labels [a-z0-9_]")
            continue
        ports.append(Port(label, to))
    env_t = table(run.get("env", {}), "run.env")
    for k, v in env_t.items():
        if not ENV_RE.match(k) or not isinstance(v, str):
            bad(f"run.env.{k}", "environment variables are NAME = \"string\"")
    args = run.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        bad("run.args", "must be a list of strings")
        args = []
    secret_items = run.get("secrets", [])
    if not isinstance(secret_items, list) or not all(
            isinstance(x, str) and re.match(r"^[A-Za-z0-9_]{1,64}$", x) for x in secret_items):
        bad("run.secrets", "must be a list of item names like [\"password\"]")
        secret_items = []
    if secret_items and not iface.get("credentials"):
        bad("run.secrets", "generated secrets need a place: set interface.credentials",
            'e.g. credentials = "nomad/jobs/{job}"')
    res = table(run.get("resources", {}), "run.resources")
    unknown(res, {"cpu", "memory"}, "run.resources.")
    check: Check | None = None
    if chk is not False:
        chk = table(chk, "check")
        unknown(chk, CHECK, "check.")
        ctype = chk.get("type", "tcp")
        if ctype not in ("tcp", "http", "script"):
            bad("check.type", f"unknown check type {ctype!r}", "use tcp, http or script")
        command = chk.get("command", [])
        if not isinstance(command, list) or not all(isinstance(a, str) for a in command) or \
                (ctype == "script") != bool(command):
            bad("check.command", "a script check needs command = [\"program\", \"arg\", ...] "
                "(and only a script check has one)", 'e.g. command = ["pg_isready", "-h", "127.0.0.1"]')
            command = []
        check = Check(ctype, chk.get("path", "/" if ctype == "http" else ""),
                      int(chk.get("interval", 10)), int(chk.get("timeout", 2)), tuple(command))
    state = _state(data.get("state"), bad, unknown, table)
    kill_timeout = run.get("kill_timeout", 0)
    if not isinstance(kill_timeout, int) or isinstance(kill_timeout, bool) or not 0 <= kill_timeout <= 3600:
        bad("run.kill_timeout", "must be whole seconds (0-3600)",
            "Nomad clients cap it at their max_kill_timeout (30 s by default)")
        kill_timeout = 0
    kill_signal = run.get("kill_signal", "")
    if kill_signal and (not isinstance(kill_signal, str) or not SIGNAL_RE.match(kill_signal)):
        bad("run.kill_signal", "must be a signal name like SIGINT")
        kill_signal = ""

    port_label = iface.get("port", ports[0].label if ports else "")
    if port_label not in {p.label for p in ports}:
        bad("interface.port", f"{port_label!r} is not one of run.ports",
            "name the port dependents connect to")
    ienv = table(iface.get("env", {}), "interface.env")
    for k, v in ienv.items():
        if not re.match(r"^[A-Z0-9_]+$", k) or not isinstance(v, str):
            bad(f"interface.env.{k}", "entries are SUFFIX = \"pattern\" (upper-case suffix)")
        else:
            _check_pattern(v, f"interface.env.{k}", bad)
    for key in ("url", "credentials"):
        v = iface.get(key, "")
        if not isinstance(v, str):
            bad(f"interface.{key}", "must be a string")
        else:
            _check_pattern(v, f"interface.{key}", bad)
    if problems:
        raise TemplateError(f"{path}: {len(problems)} problem(s) in service template {name!r}", problems)
    return ServiceTemplate(
        name=name,
        description=str(data.get("description", "")),
        run=Runnable(
            image=image,
            command=str(run.get("command", "")),
            args=tuple(args),
            ports=tuple(ports),
            env=tuple(sorted(env_t.items())),
            resources=Resources(int(res.get("cpu", 100)), int(res.get("memory", 128))),
            check=check,
            secrets_template=str(run.get("secrets_template", "")).strip("\n"),
            secret_items=tuple(secret_items),
            state=state,
            kill_timeout_s=kill_timeout,
            kill_signal=kill_signal,
        ),
        interface=InterfaceSpec(
            protocol=str(iface.get("protocol", "tcp")),
            port=port_label,
            env=tuple(sorted(ienv.items())),
            url=iface.get("url", ""),
            credentials=iface.get("credentials", ""),
        ),
        scheduling=scheduling,
        per_zone=per_zone,
        depends=tuple(depends),
        source=str(path),
    )


def _state(raw, bad, unknown, table) -> State | None:
    if raw is None:
        return None
    t = table(raw, "state")
    unknown(t, STATE, "state.")
    path, size, storage = t.get("path", ""), t.get("size", 1024), t.get("storage", "")
    ok = True
    if not isinstance(path, str) or not path.startswith("/") or "{" in path or "\n" in path:
        bad("state.path", "must be an absolute path inside the container",
            'where the image keeps its data, e.g. path = "/var/lib/postgresql/data"')
        ok = False
    if not isinstance(size, int) or isinstance(size, bool) or size < 10:
        bad("state.size", "must be a size in MB (at least 10)", "e.g. size = 1024")
        ok = False
    if storage not in ("", *STORAGES):
        bad("state.storage", f"unknown storage mode {storage!r}", "use " + ", ".join(STORAGES))
        ok = False
    return State(path, size, storage) if ok else None


def _check_pattern(value: str, key: str, bad) -> None:
    # Patterns end up inside consul-template text and env files: no delimiters, no newlines.
    for ph in _PLACEHOLDER_RE.findall(value):
        if ph not in PLACEHOLDERS:
            bad(key, f"unknown placeholder {{{ph}}}", "known: " + ", ".join(sorted(PLACEHOLDERS)))
    if "{{" in value or "}}" in value or "\n" in value:
        bad(key, "must not contain '{{', '}}' or newlines")
