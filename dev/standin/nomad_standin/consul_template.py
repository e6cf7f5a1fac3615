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

import functools
import json
import re

_CALL = re.compile(
    r"\b(service|key|keyOrDefault|keyExists|ls|safeLs|tree|safeTree|nomadVar|nomadVarExists|"
    r"nomadService|services)\b(?:\s+\"((?:[^\"\\]|\\.)*)\")?"
)
_SERVICE = re.compile(
    r"^(?:(?P<tag>[\w=:.\-]+)\.)?(?P<name>[\w\-]+)(?:\?[^@~]*)?(?:@(?P<dc>[\w.\-]+))?"
    r"(?:~(?P<near>[\w.\-]+))?$"
)


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


@functools.lru_cache(maxsize=16384)  # the clients re-read every template on every tick
def _only_index(text: str, arg: str) -> int | None:
    """`with service "x" }}{{ with index . N` and no other use: only instance N matters."""
    quoted = re.escape(json.dumps(arg))
    uses = re.findall(rf"service\s+{quoted}", text)
    m = re.search(
        rf"with\s+service\s+{quoted}\s*-?\}}\}}\s*\{{\{{-?\s*with\s+index\s+\.\s+(\d+)", text
    )
    if m and len(uses) == 1:
        return int(m.group(1))
    return None


class Blocked(Exception):
    """Rendering cannot complete yet (consul-template keeps waiting): the reason, Nomad-style."""


def fingerprint(text: str, consul, node: dict, variable=None, env: dict | None = None) -> str:
    """A stable digest of everything `text` reads (Blocked if it must wait). `variable(path)`
    returns a Nomad variable's items or None; `env` is what the template's `env` function sees
    (the task environment and the node's attributes: client/taskenv/env.go TaskEnv.All)."""
    env = env if env is not None else _node_env(node)
    parts: list = []
    _eval(_parsed(text or ""), text or "", consul, node, variable, env, parts)
    return json.dumps(parts, sort_keys=True, default=str)


@functools.lru_cache(maxsize=16384)  # the clients re-read every template on every tick
def _parsed(text: str):
    return _parse(_actions(text))


def watch_index(text: str, consul) -> tuple | None:
    """The Consul indexes of everything `text` can read, as consul-template's blocking queries
    see them (a service's health index, the catalog's, the KV table's): while they are the same,
    so is the fingerprint. None where that is not known (Nomad variables, a service named at
    run time): the caller evaluates the template again."""
    targets = _watch_targets(text or "")
    if targets is None or consul is None:
        return None
    try:
        tables = consul._tables  # noqa: SLF001 - no public table indexes in the state contract
        out: list = [tables["nodes"]]
        for kind, name in targets:
            if kind == "service":
                out.append(consul.service_index(name, True))
            elif kind == "services":
                out.append(tables["services"])
            else:
                out.append(consul._kv.index)  # noqa: SLF001
    except (AttributeError, KeyError, TypeError):
        return None
    return tuple(out)


@functools.lru_cache(maxsize=16384)  # the clients check every running template on every tick
def _watch_targets(text: str) -> tuple[tuple[str, str], ...] | None:
    """What watch_index reads for `text`, parsed once: (service, name), (services, ""), or
    (kv, "") for key, keyOrDefault, keyExists, ls, safeLs, tree and safeTree."""
    deps = _static_deps(text)
    if deps is None:
        return None
    out = []
    for fn, arg in deps:
        if fn == "service":
            m = _SERVICE.match(arg.partition("|")[0].strip())
            if m is None or m.group("dc"):
                return None
            out.append(("service", m.group("name")))
        elif fn == "services":
            out.append(("services", ""))
        else:
            out.append(("kv", ""))
    return tuple(out)


@functools.lru_cache(maxsize=16384)
def _static_deps(text: str) -> tuple[tuple[str, str], ...] | None:
    # `service (print (env "node.datacenter") ".name")` (a tag from the node, a fixed name) is a
    # health query of `name`: its blocking index is that service's, whatever the tag.
    deps = [("service", f"tag.{m.group(1)}") for m in _SERVICE_NODE_TAG.finditer(text)]
    text = _SERVICE_NODE_TAG.sub("", text)
    if _SERVICE_HEAD_ENV.search(text):
        return None
    for m in _CALL.finditer(text):
        fn, arg = m.group(1), m.group(2)
        if fn in ("nomadVar", "nomadVarExists", "nomadService") or (
            arg is None and fn != "services"
        ):
            return None
        deps.append((fn, arg or ""))
    return tuple(dict.fromkeys(deps))


_SERVICE_HEAD_ENV = re.compile(r"\bservice\s+\(")
_SERVICE_NODE_TAG = re.compile(
    r'\bservice\s+\(\s*print\s+\(\s*env\s+"[\w.\-]+"\s*\)\s+"\.([\w\-]+)"\s*\)'
)


# consul-template executes the Go template and records what each run reads: a `with service`
# whose list is empty runs its `else` branch only, so a `key` there is read (and blocks) only
# while the list is empty. The stand-in walks `with`/`range`/`if` blocks the same way for
# `with service` and reads the rest of the template as before.
def _actions(text: str) -> list[str]:
    out, i = [], 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            return out
        j = start + 2
        while j < len(text) and not text.startswith("}}", j):
            if text[j] == '"':
                j += 1
                while j < len(text) and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
            j += 1
        body = text[start + 2 : j].strip()
        out.append(body.strip("-").strip())
        i = j + 2


def _parse(actions: list[str]):
    """Nested blocks: ("block", head, body, else_body) or ("action", text)."""
    root: list = []
    stack: list = [(None, root, None)]
    for a in actions:
        word = a.split(None, 1)[0] if a else ""
        if word in ("if", "with", "range"):
            block = ["block", a, [], []]
            stack[-1][1].append(block)
            stack.append((block, block[2], block[3]))
        elif word == "else" and len(stack) > 1:
            block, _, other = stack.pop()
            stack.append((block, other, other))
        elif word == "end" and len(stack) > 1:
            stack.pop()
        else:
            stack[-1][1].append(["action", a])
    return root


_SERVICE_HEAD = re.compile(
    r"^(with|range)\s+(?:\$\w+\s*,\s*\$\w+\s*:=\s*)?service\s+"
    r'(?:"(?P<lit>(?:[^"\\]|\\.)*)"|\(print\s+\(env\s+"(?P<env>[^"]+)"\)\s+"(?P<suffix>[^"]*)"\))'
)
_FIELDS = {
    "Address": "address",
    "Port": "port",
    "Tags": "tags",
    "ServiceMeta": "meta",
    "Node": "node",
    "ID": "id",
}


def _project(item: dict, text: str) -> dict:
    """consul-template compares rendered text: only the instance fields the text uses count."""
    used = _used_fields(text)
    return {k: v for k, v in item.items() if k in used} if used else item


@functools.lru_cache(maxsize=16384)
def _used_fields(text: str) -> frozenset[str]:
    return frozenset(v for k, v in _FIELDS.items() if re.search(rf"\.{k}\b", text))


def _eval(nodes, text, consul, node, variable, env, parts) -> None:
    for n in nodes:
        if n[0] == "action":
            _reads(n[1], text, consul, node, variable, parts)
            continue
        _, head, body, other = n
        m = _SERVICE_HEAD.match(head)
        if not m or consul is None:
            _reads(head, text, consul, node, variable, parts)
            _eval(body, text, consul, node, variable, env, parts)
            _eval(other, text, consul, node, variable, env, parts)
            continue
        arg = (
            m.group("lit")
            if m.group("lit") is not None
            else env.get(m.group("env"), "") + m.group("suffix")
        )
        items = _service(arg, "", consul, node) or []
        first = body[0] if body and body[0][0] == "block" else None
        idx = re.match(r"^with\s+index\s+\.\s+(\d+)$", first[1]) if first else None
        if m.group(1) == "with" and idx and len(body) == 1:
            k = int(idx.group(1))
            parts.append(["service", arg, _project(items[k], text) if k < len(items) else None])
        else:
            parts.append(["service", arg, [_project(i, text) for i in items]])
        if m.group(1) == "with":
            _eval(body if items else other, text, consul, node, variable, env, parts)


def _reads(action: str, text, consul, node, variable, parts) -> None:
    for fn, arg in _action_deps(action):
        parts.append([fn, arg, _read(fn, arg, text, consul, node, variable)])


@functools.lru_cache(maxsize=16384)
def _action_deps(action: str) -> tuple[tuple[str, str], ...]:
    return tuple(dependencies("{{ " + action + " }}"))


def _node_env(node: dict) -> dict:
    env = {"node.datacenter": node.get("Datacenter", ""), "node.unique.name": node.get("Name", "")}
    env.update({f"meta.{k}": v for k, v in (node.get("Meta") or {}).items()})
    env.update({f"attr.{k}": v for k, v in (node.get("Attributes") or {}).items()})
    return env


def _read(fn: str, arg: str, text: str, consul, node: dict, variable):
    if fn in ("nomadVar", "nomadVarExists"):
        items = variable(arg) if variable else None  # "path[@namespace[.region]]"
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
        worst = (
            "critical"
            if "critical" in statuses
            else "warning"
            if "warning" in statuses
            else "passing"
        )
        if "any" not in wanted and worst not in wanted:
            continue
        svc = entry["Service"]
        out.append(
            {
                "node": entry["Node"]["Node"],
                "zone": (entry["Node"].get("Meta") or {}).get("zone", ""),
                "id": svc["ID"],
                "address": svc["Address"] or entry["Node"]["Address"],
                "port": svc["Port"],
                "tags": svc["Tags"],
                "meta": svc.get("Meta"),
            }
        )
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
