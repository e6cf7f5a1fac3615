"""What a task's `template` blocks can see, for the stand-in's clients.

Nomad renders templates with consul-template before a task starts and re-renders them when a
dependency changes; if the rendered text changes, `change_mode` runs (restart, signal, ...).
The stand-in does not execute Go templates. It finds each template's dependencies (`service`,
`key`, `keyOrDefault`, `keyExists`, `ls`, `tree`, `services`, `nomadVar`...) and computes a
fingerprint of the data they return: a changed fingerprint stands for changed rendered text.
`key` and `nomadVar` block rendering while their data is missing (the task stays pending),
as consul-template does. A `with service "x" }}{{ with index . N` pattern only sees instance N.
"""

from __future__ import annotations

import json
import re

_CALL = re.compile(
    r"\b(service|key|keyOrDefault|keyExists|ls|safeLs|tree|safeTree|nomadVar|nomadVarExists|"
    r"nomadService|services)\b(?:\s+\"((?:[^\"\\]|\\.)*)\")?")
_SERVICE = re.compile(
    r"^(?:(?P<tag>[\w=:.\-]+)\.)?(?P<name>[\w\-]+)(?:\?[^@~]*)?(?:@(?P<dc>[\w.\-]+))?"
    r"(?:~(?P<near>[\w.\-]+))?$")


def dependencies(text: str) -> list[tuple[str, str]]:
    """(function, argument) pairs a template reads, in order of appearance, without repeats."""
    seen: list[tuple[str, str]] = []
    for m in _CALL.finditer(text or ""):
        fn, arg = m.group(1), m.group(2)
        if arg is None and fn != "services":
            continue
        dep = (fn, arg or "")
        if dep not in seen:
            seen.append(dep)
    return seen


def _only_index(text: str, arg: str) -> int | None:
    """`with service "x" }}{{ with index . N` and no other use: only instance N matters."""
    quoted = re.escape(json.dumps(arg))
    uses = re.findall(rf"service\s+{quoted}", text)
    m = re.search(rf"with\s+service\s+{quoted}\s*-?\}}\}}\s*\{{\{{-?\s*with\s+index\s+\.\s+(\d+)",
                  text)
    if m and len(uses) == 1:
        return int(m.group(1))
    return None


class Blocked(Exception):
    """Rendering cannot complete yet (consul-template keeps waiting): the reason, Nomad-style."""


def fingerprint(text: str, consul, node: dict, variable=None) -> str:
    """A stable digest of everything `text` reads (Blocked if it must wait). `variable(path)`
    returns a Nomad variable's items or None."""
    parts = []
    for fn, arg in dependencies(text):
        parts.append([fn, arg, _read(fn, arg, text, consul, node, variable)])
    return json.dumps(parts, sort_keys=True, default=str)


def _read(fn: str, arg: str, text: str, consul, node: dict, variable):
    if fn in ("nomadVar", "nomadVarExists"):
        items = variable(arg.split("@", 1)[0]) if variable else None
        if items is None and fn == "nomadVar":
            raise Blocked(f"nomad.var.block({arg})")
        return items
    if consul is None:
        return None
    if fn == "service":
        return _service(arg, text, consul, node)
    if fn == "services":
        return sorted(_catalog_names(consul))
    if fn in ("key", "keyOrDefault", "keyExists"):
        value = consul.kv_get(arg)
        if value is None and fn == "key":
            raise Blocked(f"kv.block({arg})")
        return None if value is None else value.decode("utf-8", "replace")
    if fn in ("ls", "safeLs", "tree", "safeTree"):
        return _kv_tree(consul, arg)
    return None  # nomadService: the stand-in has no Nomad-native services


def _service(arg: str, text: str, consul, node: dict):
    spec, _, status_filter = arg.partition("|")
    m = _SERVICE.match(spec.strip())
    if not m:
        return None
    wanted = {s.strip() for s in status_filter.split(",") if s.strip()} or {"passing"}
    tags = [m.group("tag")] if m.group("tag") else []
    out = []
    for entry in consul.check_service_nodes(m.group("name"), tags):
        statuses = [c["Status"] for c in entry["Checks"]]
        worst = ("critical" if "critical" in statuses else
                 "warning" if "warning" in statuses else "passing")
        if "any" not in wanted and worst not in wanted:
            continue
        svc = entry["Service"]
        out.append({"node": entry["Node"]["Node"], "zone": (entry["Node"].get("Meta") or {})
                    .get("zone", ""), "id": svc["ID"], "address": svc["Address"] or
                    entry["Node"]["Address"], "port": svc["Port"], "tags": svc["Tags"],
                    "meta": svc.get("Meta")})
    if m.group("near"):
        # Nearest first from this node's agent: same node, then same zone, then the rest.
        here, zone = node["Name"], (node.get("Meta") or {}).get("zone", node["Datacenter"])
        out.sort(key=lambda i: (i["node"] != here, i["zone"] != zone, i["node"], i["id"]))
    index = _only_index(text, arg)
    if index is not None:
        return out[index] if index < len(out) else None
    return out


def _catalog_names(consul) -> set[str]:
    try:
        with consul._lock:  # noqa: SLF001 - no public catalog listing in the state contract
            return {s["Service"] for s in consul._services.values()}  # noqa: SLF001
    except AttributeError:
        return set()


def _kv_tree(consul, prefix: str):
    try:
        with consul._lock:  # noqa: SLF001 - no public KV listing in the state contract
            _, entries = consul._kv.list(prefix)  # noqa: SLF001
        return [[e.get("Key"), str(e.get("Value"))] for e in entries]
    except (AttributeError, TypeError, ValueError):
        return None
