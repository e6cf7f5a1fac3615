"""The HCL writer specialised to the jobs render.py emits: same bytes as hcl.to_hcl, faster.

hcl.to_hcl is general (any Nomad job, table-driven). The jobs nomadgen renders have a few fixed
shapes (job, groups, constraints, spread, network, services, checks, volumes, tasks with config,
env, templates, volume mounts and resources), so this module writes exactly those, field by
field in hcl._SPECS order, with the general writer's own helpers for every value (_escape,
_duration_text, _value_lines, _write_attrs). An object with a key, a type or a value it does not
expect raises _Off, and the general writer writes that whole job instead: the output never
depends on which writer ran. tests/test_hcl_fast.py proves byte-for-byte identity over every
golden case, generated manifests and randomly altered jobs.

Stdlib only: this sits on the CLI's start-up path.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from nomadgen.hcl import (
    _duration_text,
    _escape,
    _ident_str,
    _value_lines,
    _write_attrs,
    to_hcl,
)
from nomadgen.model import Runtime

__all__ = ["JobWriter"]


class _Off(Exception):
    """Not a shape this writer knows: the general writer writes the job."""


# How hcl._body writes a field (from its kind in hcl._SPECS and the name rules):
_ATTR = 0  # attr: "", 0 and false are written
_NONZERO = 1  # attr_nonzero: a Go non-pointer field, where "", 0 and false mean unset
_DURATION = 2  # attr, integer nanoseconds written as a Go duration
_DURATION_NONZERO = 3
_RUNTIME = 4  # attr_nonzero in hcl.RUNTIME_FIELDS: a plain string is read as a Runtime one
_TEMPLATE = 5  # attr, Template.EmbeddedTmpl: a heredoc even for one line of text

# Attribute fields of each block, in hcl._SPECS order: (JSON key, HCL name, how).
_Spec = tuple[tuple[str, str, int], ...]
_JOB_ATTRS: _Spec = (
    ("Name", "name", _ATTR),
    ("Namespace", "namespace", _ATTR),
    ("Region", "region", _ATTR),
    ("Datacenters", "datacenters", _ATTR),
    ("NodePool", "node_pool", _ATTR),
    ("Type", "type", _ATTR),
)
_UPDATE: _Spec = (
    ("MaxParallel", "max_parallel", _ATTR),
    ("HealthCheck", "health_check", _ATTR),
    ("MinHealthyTime", "min_healthy_time", _DURATION),
    ("HealthyDeadline", "healthy_deadline", _DURATION),
    ("ProgressDeadline", "progress_deadline", _DURATION),
    ("AutoRevert", "auto_revert", _ATTR),
)
_GROUP_ATTRS: _Spec = (("Count", "count", _ATTR),)
_CONSTRAINT: _Spec = (
    ("LTarget", "attribute", _RUNTIME),
    ("Operand", "operator", _NONZERO),
    ("RTarget", "value", _RUNTIME),
)
_SPREAD_ATTRS: _Spec = (("Attribute", "attribute", _RUNTIME), ("Weight", "weight", _ATTR))
_TARGET: _Spec = (("Percent", "percent", _NONZERO),)  # Value is the label
_NETWORK_ATTRS: _Spec = (("Mode", "mode", _NONZERO),)
_PORT: _Spec = (("Value", "static", _NONZERO), ("To", "to", _NONZERO))  # Label is the label
_VOLUME: _Spec = (  # Name is the label (the map key)
    ("Type", "type", _NONZERO),
    ("Source", "source", _NONZERO),
    ("ReadOnly", "read_only", _NONZERO),
    ("AccessMode", "access_mode", _NONZERO),
    ("AttachmentMode", "attachment_mode", _NONZERO),
    ("PerAlloc", "per_alloc", _NONZERO),
)
_SERVICE_ATTRS: _Spec = (
    ("Name", "name", _NONZERO),
    ("Provider", "provider", _NONZERO),
    ("PortLabel", "port", _NONZERO),
    ("Tags", "tags", _ATTR),
)
_CHECK: _Spec = (
    ("Name", "name", _NONZERO),
    ("Type", "type", _NONZERO),
    ("Command", "command", _NONZERO),
    ("Args", "args", _NONZERO),
    ("Path", "path", _NONZERO),
    ("Interval", "interval", _DURATION_NONZERO),
    ("Timeout", "timeout", _DURATION_NONZERO),
    ("TaskName", "task", _NONZERO),
)
_DISK: _Spec = (
    ("SizeMB", "size", _ATTR),
    ("Sticky", "sticky", _ATTR),
    ("Migrate", "migrate", _ATTR),
)
_TASK_ATTRS: _Spec = (
    ("Driver", "driver", _NONZERO),
    ("KillTimeout", "kill_timeout", _DURATION),
    ("KillSignal", "kill_signal", _NONZERO),
)
_LIFECYCLE: _Spec = (("Hook", "hook", _NONZERO), ("Sidecar", "sidecar", _NONZERO))
_TEMPLATE_ATTRS: _Spec = (
    ("EmbeddedTmpl", "data", _TEMPLATE),
    ("DestPath", "destination", _ATTR),
    ("Envvars", "env", _ATTR),
    ("ChangeMode", "change_mode", _ATTR),
    ("ChangeSignal", "change_signal", _ATTR),
)
_MOUNT: _Spec = (
    ("Volume", "volume", _ATTR),
    ("Destination", "destination", _ATTR),
    ("ReadOnly", "read_only", _ATTR),
)
_RESOURCES: _Spec = (("CPU", "cpu", _ATTR), ("MemoryMB", "memory", _ATTR))


def _keys(*specs: _Spec, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The keys an object may have here; anything else is _Off."""
    return frozenset([f[0] for spec in specs for f in spec] + list(extra))


_JOB_KEYS = _keys(_JOB_ATTRS, extra=("ID", "Meta", "Update", "TaskGroups"))
_UPDATE_KEYS = _keys(_UPDATE)
_GROUP_KEYS = _keys(
    _GROUP_ATTRS,
    extra=("Name", "Constraints", "Spreads", "Networks", "Volumes", "Services"),
) | {"EphemeralDisk", "Tasks"}
_CONSTRAINT_KEYS = _keys(_CONSTRAINT)
_SPREAD_KEYS = _keys(_SPREAD_ATTRS, extra=("SpreadTarget",))
_TARGET_KEYS = _keys(_TARGET, extra=("Value",))
_NETWORK_KEYS = _keys(_NETWORK_ATTRS, extra=("DynamicPorts",))
_PORT_KEYS = _keys(_PORT, extra=("Label",))
_VOLUME_KEYS = _keys(_VOLUME, extra=("Name",))
_SERVICE_KEYS = _keys(_SERVICE_ATTRS, extra=("Meta", "Checks"))
_CHECK_KEYS = _keys(_CHECK)
_DISK_KEYS = _keys(_DISK)
_TASK_KEYS = _keys(
    _TASK_ATTRS, extra=("Name", "Lifecycle", "Config", "Env", "Templates", "VolumeMounts")
) | {"Resources"}
_LIFECYCLE_KEYS = _keys(_LIFECYCLE)
_CONFIG_KEYS = frozenset({"image", "command", "args", "ports"})  # strings, lists of strings
_TEMPLATE_KEYS = _keys(_TEMPLATE_ATTRS)
_MOUNT_KEYS = _keys(_MOUNT)
_RESOURCES_KEYS = _keys(_RESOURCES)


def _text(v: object, how: int) -> str | list[str] | None:
    """An attribute's text exactly as hcl._body writes it (None: left out; a list: lines of a
    heredoc), for the values this writer takes; _Off for any other."""
    t = type(v)
    nonzero = how == _NONZERO or how == _DURATION_NONZERO or how == _RUNTIME
    duration = how == _DURATION or how == _DURATION_NONZERO
    if t is str or t is Runtime:
        if not v:
            return None if nonzero else '""'
        if how == _RUNTIME:
            if "\n" in v:  # type: ignore[operator]
                raise _Off
            return _escape(v if t is Runtime else Runtime(v))
        if "\n" in v:  # type: ignore[operator]
            return _value_lines(v, how == _TEMPLATE)
        return _escape(v)
    if t is int:
        if not v and nonzero:
            return None
        return _duration_text(v) if duration else int.__repr__(v)
    if t is bool and not duration:
        return "true" if v else None if nonzero else "false"
    if t is list and not duration:
        if not v:
            return None
        for x in v:  # type: ignore[attr-defined]
            if type(x) is not str and type(x) is not Runtime:
                raise _Off
        return "[" + ", ".join([_escape(x) for x in v]) + "]"  # type: ignore[attr-defined]
    if v is None:
        return None
    raise _Off


_TEXTS = frozenset({str, Runtime})


@lru_cache(maxsize=1024)
def _runtime_escape(v: str) -> str:
    return _escape(Runtime(v))


def _attrs(obj: dict[str, Any], spec: _Spec, indent: str, out: list[str]) -> bool:
    """Write the attributes of `obj` that hcl writes, in `spec` order, as the start of a body:
    one `=`-aligned run, or hcl's layout when a value spans lines. False: there were none."""
    names: list[str] = []
    texts: list[Any] = []
    multi = False
    for key, hcl, how in spec:
        v = obj.get(key)
        if v is None:
            continue
        t = type(v)
        # The common one-line values inline; _text has every case.
        if t is str and how != _RUNTIME and v and "\n" not in v:
            text: Any = _escape(v)
        elif t is int and how <= _NONZERO:
            if not v and how:
                continue
            text = int.__repr__(v)
        elif t is bool and how <= _NONZERO:
            if not v and how:
                continue
            text = "true" if v else "false"
        elif t is int and how <= _DURATION_NONZERO:
            if not v and how == _DURATION_NONZERO:
                continue
            text = _duration_text(v)
        elif t is list and how <= _NONZERO and _TEXTS.issuperset(map(type, v)):
            if not v:
                continue
            text = "[" + ", ".join(map(_escape, v)) + "]"
        elif t is str and how == _RUNTIME and v and "\n" not in v:
            text = _runtime_escape(v)
        else:
            text = _text(v, how)
            if text is None:
                continue
            if type(text) is list:
                multi = True
        names.append(hcl)
        texts.append(text)
    if not names:
        return False
    _lay(names, texts, multi, indent, out)
    return True


# (indent, names...) -> each line's start, `=` aligned: attribute runs repeat across jobs.
_PREFIXES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _lay(names: list[str], texts: list[Any], multi: bool, indent: str, out: list[str]) -> None:
    if multi:
        _write_attrs(list(zip(names, texts, strict=True)), indent, out)
        return
    key = (indent, *names)
    prefixes = _PREFIXES.get(key)
    if prefixes is None:
        width = max([len(n) for n in names])
        prefixes = tuple([f"{indent}{n.ljust(width)} = " for n in names])
        if len(_PREFIXES) > 4096:
            _PREFIXES.clear()
        _PREFIXES[key] = prefixes
    out.extend(map(str.__add__, prefixes, texts))


def _attrs_block(head: str, obj: dict[str, Any], spec: _Spec, indent: str, out: list[str]) -> None:
    """A block of attributes alone: a blank line, then `head { ... }` (`head {}` when empty)."""
    out.append("")
    opening = f"{indent}{head} {{"
    out.append(opening)
    if _attrs(obj, spec, indent + "  ", out):
        out.append(indent + "}")
    else:
        out[-1] = opening + "}"


def _close(out: list[str], opening: str, start: int, attrs: bool, indent: str) -> None:
    """End a block whose body was written from out[start] on: blocks follow attributes after a
    blank line, a body of blocks alone starts without one, an empty body is `head {}`."""
    if not attrs and len(out) > start:
        del out[start]
    if out[-1] is opening:
        out[-1] = opening + "}"
    else:
        out.append(indent + "}")


def _dict(v: object, keys: frozenset[str]) -> dict[str, Any]:
    if type(v) is not dict or not v.keys() <= keys:
        raise _Off
    return v


def _block(v: object, keys: frozenset[str]) -> dict[str, Any] | None:
    """A single block's object, None when hcl writes nothing for it (null or {}). Any other
    value that is not an object is _Off: hcl skips some ("", []) and refuses the rest."""
    if v is None:
        return None
    v = _dict(v, keys)
    return v if v else None


def _items(v: object) -> list[Any]:
    """A list field's objects (None items are left out, as hcl does); empty: nothing written."""
    if v is None:
        return []
    if type(v) is not list:
        raise _Off
    return v if None not in v else [x for x in v if x is not None]


def _label(obj: dict[str, Any], field: str) -> str:
    label = obj.get(field)
    if label is None:
        return '""'
    if type(label) is not str and type(label) is not Runtime:
        raise _Off
    return _escape(label)


# A map's keys as they come -> sorted (each an identifier): meta and env keys repeat.
_MAP_KEYS: dict[tuple[Any, ...], list[str]] = {}


def _map(hcl: str, value: Any, indent: str, out: list[str]) -> None:
    """A string map (meta, env) as a block: `meta { key = "value" }`, keys sorted."""
    if value is None:
        return
    if type(value) is not dict:
        raise _Off
    if not value:
        return
    keys = tuple(value)
    names = _MAP_KEYS.get(keys)
    if names is None:
        if not all([type(k) is str and _ident_str(k) for k in keys]):
            raise _Off  # hcl writes `meta = {...}`
        names = sorted(keys)
        if len(_MAP_KEYS) > 4096:
            _MAP_KEYS.clear()
        _MAP_KEYS[keys] = names
    texts: list[Any] = []
    multi = False
    for k in names:
        v = value[k]
        if type(v) is not str and type(v) is not Runtime:
            raise _Off  # None is left out of the map, other types are expressions
        if "\n" in v:
            texts.append(_value_lines(v))
            multi = multi or type(texts[-1]) is list
        else:
            texts.append(_escape(v))
    out.append("")
    out.append(f"{indent}{hcl} {{")
    _lay(names, texts, multi, indent + "  ", out)
    out.append(indent + "}")


class JobWriter:
    """Writes the jobs of one render. Blocks that render shares across jobs (one object, see
    render._once) are written once: `share` them before writing a job that holds them."""

    def __init__(self) -> None:
        # id -> (the object, its lines): the same mapping hcl.to_hcl(shared=) takes, so the
        # general writer reuses it for a job this one leaves to it.
        self.shared: dict[int, tuple[object, dict[Any, list[str]]]] = {}
        self.memo: dict[Any, list[str]] = {}  # hcl.to_hcl(memo=)
        self.fallbacks = 0  # jobs the general writer wrote (tests read it)
        # (id, field) -> (the object, its lines) for the job being written: its objects live.
        self._again: dict[tuple[int, str], tuple[object, list[str]]] = {}

    def share(self, objects: Any) -> None:
        for o in objects:
            if id(o) not in self.shared:
                self.shared[id(o)] = (o, {})

    def write(self, job: dict[str, Any]) -> str:
        """The jobspec text of the bare Job dict: exactly hcl.to_hcl(job)."""
        self._again.clear()
        try:
            out = self._job(job)
        except _Off:
            self.fallbacks += 1
            return to_hcl(job, shared=self.shared, memo=self.memo)
        out.append("")
        return "\n".join(out)

    def _field(self, value: object, key: str, write: Any, out: list[str]) -> None:
        """write(value, out), or the lines it wrote for the same object before: a block render
        shares across jobs (see share), or an object several groups of this job hold (a
        stateful set's zone groups are copies of one group)."""
        if value is None:
            return
        hit = self.shared.get(id(value))
        if hit is not None and hit[0] is value:
            lines = hit[1].get(key)
            if lines is None:
                mark = len(out)
                write(value, out)
                hit[1][key] = out[mark:]
            else:
                out.extend(lines)
            return
        again = self._again.get((id(value), key))
        if again is not None and again[0] is value:
            out.extend(again[1])
            return
        mark = len(out)
        write(value, out)
        self._again[(id(value), key)] = (value, out[mark:])

    def _job(self, job: Any) -> list[str]:
        job = _dict(job, _JOB_KEYS)
        job_id = job.get("ID")
        if type(job_id) is not str or not job_id:
            raise _Off
        opening = f"job {_escape(job_id)} {{"
        out = [opening]
        if job.get("Name") == job_id:  # jobspec2 defaults Name to the label
            job = {k: v for k, v in job.items() if k != "Name"}
        attrs = _attrs(job, _JOB_ATTRS, "  ", out)
        start = len(out)
        _map("meta", job.get("Meta"), "  ", out)
        self._field(job.get("Update"), "update", _update, out)
        for g in _items(job.get("TaskGroups")):
            self._group(_dict(g, _GROUP_KEYS), out)
        _close(out, opening, start, attrs, "")
        return out

    def _group(self, g: dict[str, Any], out: list[str]) -> None:
        out.append("")
        opening = f"  group {_label(g, 'Name')} {{"
        out.append(opening)
        attrs = _attrs(g, _GROUP_ATTRS, "    ", out)
        start = len(out)
        self._field(g.get("Constraints"), "constraints", _constraints, out)
        self._field(g.get("Spreads"), "spreads", _spreads, out)
        self._field(g.get("Networks"), "networks", _networks, out)
        self._field(g.get("Volumes"), "volumes", _volumes, out)
        self._field(g.get("Services"), "services", _services, out)
        self._field(g.get("EphemeralDisk"), "disk", _disk, out)
        self._field(g.get("Tasks"), "tasks", _tasks, out)
        _close(out, opening, start, attrs, "  ")


def _update(value: object, out: list[str]) -> None:
    u = _block(value, _UPDATE_KEYS)
    if u is not None:
        _attrs_block("update", u, _UPDATE, "  ", out)


def _constraints(value: object, out: list[str]) -> None:
    for c in _items(value):
        _attrs_block("constraint", _dict(c, _CONSTRAINT_KEYS), _CONSTRAINT, "    ", out)


def _spreads(value: object, out: list[str]) -> None:
    for sp in _items(value):
        sp = _dict(sp, _SPREAD_KEYS)
        out.append("")
        opening = "    spread {"
        out.append(opening)
        attrs = _attrs(sp, _SPREAD_ATTRS, "      ", out)
        start = len(out)
        for t in _items(sp.get("SpreadTarget")):
            t = _dict(t, _TARGET_KEYS)
            _attrs_block(f"target {_label(t, 'Value')}", t, _TARGET, "      ", out)
        _close(out, opening, start, attrs, "    ")


def _networks(value: object, out: list[str]) -> None:
    for n in _items(value):
        _network(_dict(n, _NETWORK_KEYS), out)


def _volumes(value: object, out: list[str]) -> None:
    if type(value) is not dict or not all([type(k) is str for k in value]):
        raise _Off
    for key in sorted(value):
        if value[key] is not None:
            v = _dict(value[key], _VOLUME_KEYS)
            _attrs_block(f"volume {_escape(key)}", v, _VOLUME, "    ", out)


def _services(value: object, out: list[str]) -> None:
    for s in _items(value):
        _service(_dict(s, _SERVICE_KEYS), out)


def _disk(value: object, out: list[str]) -> None:
    disk = _block(value, _DISK_KEYS)
    if disk is not None:
        _attrs_block("ephemeral_disk", disk, _DISK, "    ", out)


def _tasks(value: object, out: list[str]) -> None:
    for t in _items(value):
        _task(_dict(t, _TASK_KEYS), out)


def _network(n: dict[str, Any], out: list[str]) -> None:
    out.append("")
    opening = "    network {"
    out.append(opening)
    attrs = _attrs(n, _NETWORK_ATTRS, "      ", out)
    start = len(out)
    for p in _items(n.get("DynamicPorts")):
        p = _dict(p, _PORT_KEYS)
        _attrs_block(f"port {_label(p, 'Label')}", p, _PORT, "      ", out)
    _close(out, opening, start, attrs, "    ")


def _service(s: dict[str, Any], out: list[str]) -> None:
    out.append("")
    opening = "    service {"
    out.append(opening)
    attrs = _attrs(s, _SERVICE_ATTRS, "      ", out)
    start = len(out)
    _map("meta", s.get("Meta"), "      ", out)
    for c in _items(s.get("Checks")):
        _attrs_block("check", _dict(c, _CHECK_KEYS), _CHECK, "      ", out)
    _close(out, opening, start, attrs, "    ")


def _task(t: dict[str, Any], out: list[str]) -> None:
    out.append("")
    opening = f"    task {_label(t, 'Name')} {{"
    out.append(opening)
    attrs = _attrs(t, _TASK_ATTRS, "      ", out)
    start = len(out)
    life = _block(t.get("Lifecycle"), _LIFECYCLE_KEYS)
    if life is not None:
        _attrs_block("lifecycle", life, _LIFECYCLE, "      ", out)
    config = _block(t.get("Config"), _CONFIG_KEYS)
    if config is not None:
        _config(config, out)
    _map("env", t.get("Env"), "      ", out)
    for tmpl in _items(t.get("Templates")):
        _attrs_block("template", _dict(tmpl, _TEMPLATE_KEYS), _TEMPLATE_ATTRS, "      ", out)
    for m in _items(t.get("VolumeMounts")):
        _attrs_block("volume_mount", _dict(m, _MOUNT_KEYS), _MOUNT, "      ", out)
    res = _block(t.get("Resources"), _RESOURCES_KEYS)
    if res is not None:
        _attrs_block("resources", res, _RESOURCES, "      ", out)
    _close(out, opening, start, attrs, "    ")


def _config(cfg: dict[str, Any], out: list[str]) -> None:
    """The docker driver config render writes (free-form in hcl: keys sorted, empty values left
    out): strings and lists of strings only; a multi-line string is left to hcl."""
    names: list[str] = []
    texts: list[Any] = []
    for key in sorted(cfg):
        v = cfg[key]
        if v is None or v == "" or v == []:
            continue
        text = _text(v, _ATTR)
        if type(text) is not str:
            raise _Off
        names.append(key)
        texts.append(text)
    out.append("")
    if not names:
        out.append("      config {}")
        return
    out.append("      config {")
    _lay(names, texts, False, "        ", out)
    out.append("      }")
