"""A small subset of Go's text/template with consul-template's functions, to show what a task's
`template` blocks render to in the stand-in.

Supported: text with `{{- ... -}}` trimming, `{{/* comments */}}`, `with`/`if`/`range` (with
`else`) and `end`, pipelines with `|`, `.Field` chains (also map keys), `$` and `$x :=` range
variables, string/number literals, and the functions `service`, `key`, `keyOrDefault`,
`keyExists`, `nomadVar`, `nomadVarExists`, `env`, `index`, `toJSON`, `parseJSON`, `toUpper`,
`toLower`, `len`, `printf` (%s %d %v %q only), `print`, `urlquery`, `eq`, `ne`, `lt`, `le`,
`gt`, `ge`, `parseInt`, `not`, `and`, `or`; `$x := ...` and `$x = ...` actions.
Anything else raises Unsupported: a rendering the stand-in cannot do is never guessed.
The data sources are callables given by the caller (`fetch(fn, arg)`), which may raise to block
or deny, as consul-template does (see consul_template.py).
Reference: text/template (pkg.go.dev/text/template), consul-template docs/templating-language.md.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections import ChainMap
from collections.abc import Callable
from typing import Any

_SET = re.compile(r"^(\$\w+)\s*(:=|=)\s*(.*)$", re.DOTALL)


class Unsupported(Exception):
    """A construct this renderer does not implement."""


_TOKEN = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_LEX = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|"""
    r"""(?P<pipe>\|)|(?P<decl>:=)|(?P<lp>\()|(?P<rp>\))|"""
    r"""(?P<word>[$.]?[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*|\$|\.))"""
)


class _Field:
    def __init__(self, name: str) -> None:
        self.name = name


class _Var:
    def __init__(self, name: str, path: list[str]) -> None:
        self.name, self.path = name, path


def _parse_actions(text: str) -> list:
    """Split into ("text", s) and ("act", s) items, applying trim markers."""
    items: list = []
    pos = 0
    for m in _TOKEN.finditer(text):
        chunk = text[pos : m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        items.append(["text", chunk])
        items.append(["act", m.group(2).strip(), bool(m.group(3))])
        pos = m.end()
    items.append(["text", text[pos:]])
    out = []
    trim_next = False
    for item in items:
        if item[0] == "text":
            s = item[1].lstrip() if trim_next else item[1]
            trim_next = False
            if s:
                out.append(("text", s))
        else:
            trim_next = item[2]
            if not item[1].startswith("/*"):
                out.append(("act", item[1]))
    return out


@functools.lru_cache(maxsize=4096)  # the clients render every watched template on every tick
def _compiled(text: str) -> list:
    return _tree(_parse_actions(text))


def _tree(actions: list) -> list:
    """Nest with/if/range ... else ... end blocks."""
    stack: list[list] = [[]]
    blocks: list[dict] = []
    for kind, body in actions:
        if kind == "text":
            stack[-1].append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("with", "if", "range"):
            node = {"kind": word, "pipe": body[len(word) :].strip(), "body": [], "else": None}
            stack[-1].append(("block", node))
            blocks.append(node)
            stack.append(node["body"])
        elif word == "else":
            if not blocks or body != "else":
                raise Unsupported(f"{{{{{body}}}}}")
            node = blocks[-1]
            stack.pop()
            node["else"] = []
            stack.append(node["else"])
        elif word == "end":
            if not blocks:
                raise Unsupported("unexpected {{end}}")
            blocks.pop()
            stack.pop()
        elif word in ("define", "template", "block", "break", "continue"):
            raise Unsupported(f"{{{{{word}}}}}")
        else:
            stack[-1].append(("out", body))
    if blocks:
        raise Unsupported("unclosed block")
    return stack[0]


def _lex(pipe: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    while pos < len(pipe):
        if pipe[pos:].strip() == "":
            break
        m = _LEX.match(pipe, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"cannot read {pipe!r}")
        kind = m.lastgroup
        toks.append((kind, m.group(kind)))
        pos = m.end()
    return toks


def _truth(v: Any) -> bool:
    return bool(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else v != 0


class Renderer:
    def __init__(self, fetch: Callable[[str, str], Any], env: dict[str, str]) -> None:
        self.fetch = fetch
        self.env = env

    def render(self, text: str) -> str:
        out: list[str] = []
        self._run(_compiled(text), None, ChainMap({"$": None}), out)
        return "".join(out)

    def _run(self, nodes, dot, vars_, out) -> None:
        for kind, node in nodes:
            if kind == "text":
                out.append(node)
            elif kind == "out":
                m = _SET.match(node)
                if m:  # `$x := pipeline` declares, `$x = pipeline` assigns: no output
                    value = self._pipe(m.group(3), dot, vars_)
                    if m.group(2) == ":=":
                        vars_[m.group(1)] = value
                    else:
                        if m.group(1) not in vars_:
                            raise Unsupported(f"undefined variable {m.group(1)}")
                        next(s for s in vars_.maps if m.group(1) in s)[m.group(1)] = value
                    continue
                value = self._pipe(node, dot, vars_)
                out.append(_show(value))
            else:
                self._block(node, dot, vars_, out)

    def _block(self, node, dot, vars_, out) -> None:
        pipe = node["pipe"]
        names: list[str] = []
        m = re.match(r"^(\$\w*)\s*(?:,\s*(\$\w*)\s*)?:=\s*(.*)$", pipe, re.DOTALL)
        if m:
            names = [n for n in (m.group(1), m.group(2)) if n]
            pipe = m.group(3)
        value = self._pipe(pipe, dot, vars_)
        if node["kind"] == "range":
            items = (
                sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            )
            if not items:
                if node["else"] is not None:
                    self._run(node["else"], dot, vars_, out)
                return
            for k, v in items:
                scope = vars_.new_child()
                if len(names) == 2:
                    scope[names[0]], scope[names[1]] = k, v
                elif names:
                    scope[names[0]] = v
                self._run(node["body"], v, scope, out)
            return
        if _truth(value):
            scope = vars_.new_child()
            if names:
                scope[names[0]] = value
            self._run(node["body"], value if node["kind"] == "with" else dot, scope, out)
        elif node["else"] is not None:
            self._run(node["else"], dot, vars_, out)

    def _pipe(self, pipe: str, dot, vars_) -> Any:
        toks = _lex(pipe)
        commands: list[list] = [[]]
        depth = 0
        for t in toks:
            if t[0] == "pipe" and depth == 0:
                commands.append([])
                continue
            depth += t[0] == "lp"
            depth -= t[0] == "rp"
            commands[-1].append(t)
        value: Any = _NOTHING
        for cmd in commands:
            if not cmd:
                raise Unsupported(f"empty command in {pipe!r}")
            value = self._command(cmd, dot, vars_, value)
        return value

    def _command(self, toks, dot, vars_, piped) -> Any:
        args = self._operands(toks, dot, vars_)
        head = args[0]
        if isinstance(head, _Field):
            rest = args[1:]
            if piped is not _NOTHING:
                rest.append(piped)
            return self._call(head.name, rest)
        if len(args) > 1 or piped is not _NOTHING:
            raise Unsupported("arguments to a non-function")
        return head

    def _operands(self, toks, dot, vars_) -> list:
        out: list = []
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            if kind == "lp":
                depth, j = 1, i + 1
                while depth:
                    if j >= len(toks):
                        raise Unsupported("unbalanced (")
                    depth += toks[j][0] == "lp"
                    depth -= toks[j][0] == "rp"
                    j += 1
                inner = toks[i + 1 : j - 1]
                out.append(self._pipe(" ".join(_untok(t) for t in inner), dot, vars_))
                i = j
                continue
            if kind == "str":
                out.append(json.loads(text) if text.startswith('"') else text[1:-1])
            elif kind == "num":
                out.append(float(text) if "." in text else int(text))
            elif kind == "word":
                out.append(self._word(text, dot, vars_))
            else:
                raise Unsupported(f"unexpected {text!r}")
            i += 1
        return out

    def _word(self, text: str, dot, vars_) -> Any:
        if text == ".":
            return dot
        if text.startswith("."):
            return _walk(dot, text[1:].split("."))
        if text.startswith("$"):
            name, _, path = text.partition(".")
            if name not in vars_:
                raise Unsupported(f"undefined variable {name}")
            return _walk(vars_[name], path.split(".")) if path else vars_[name]
        if text in ("true", "false"):
            return text == "true"
        if text == "nil":
            return None
        return _Field(text)

    def _call(self, name: str, args: list) -> Any:
        if name in (
            "service",
            "key",
            "keyOrDefault",
            "keyExists",
            "nomadVar",
            "nomadVarExists",
            "ls",
            "tree",
            "safeLs",
            "safeTree",
        ):
            if name == "keyOrDefault":
                value = self.fetch("keyOrDefault", args[0])
                return args[1] if value is None else value
            return self.fetch(name, args[0])
        if name == "env":
            return self.env.get(args[0], "")
        if name == "index":
            value = args[0]
            for k in args[1:]:
                value = value[k] if isinstance(value, dict) else value[int(k)]
            return value
        if name == "toJSON":
            return json.dumps(_plain(args[0]), separators=(",", ":"))
        if name == "parseJSON":
            return json.loads(args[0]) if args[0] else None
        if name == "toUpper":
            return str(args[0]).upper()
        if name == "toLower":
            return str(args[0]).lower()
        if name == "len":
            return len(args[0])
        if name == "printf":
            return _printf(args[0], args[1:])
        if name == "print":  # fmt.Sprint: a space between operands when neither is a string
            out = ""
            for i, a in enumerate(args):
                if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
                    out += " "
                out += _show(a)
            return out
        if name == "urlquery":  # text/template: url.QueryEscape of the printed arguments
            return urllib.parse.quote_plus("".join(_show(a) for a in args))
        if name == "eq":
            return any(args[0] == a for a in args[1:])
        if name == "ne":
            return args[0] != args[1]
        if name in _ORDER:
            return _compare(name, args[0], args[1])
        if name == "parseInt":  # consul-template: "" is 0, else strconv.ParseInt(s, 10, 64)
            text = "" if args[0] is None else str(args[0])
            if text == "":
                return 0
            if not re.fullmatch(r"[+-]?\d+", text):
                raise Unsupported(f"parseInt: invalid syntax {text!r}")
            return int(text)
        if name == "not":
            return not _truth(args[0])
        if name == "and":
            return next((a for a in args if not _truth(a)), args[-1])
        if name == "or":
            return next((a for a in args if _truth(a)), args[-1])
        raise Unsupported(f"function {name!r}")


_NOTHING = object()
_ORDER = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _compare(name: str, a: Any, b: Any) -> bool:
    """text/template's lt/le/gt/ge: integers with integers, floats with floats, strings with
    strings; anything else is an error ("incompatible types for comparison")."""
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b))
    if not (
        ints or all(isinstance(x, float) for x in (a, b)) or all(isinstance(x, str) for x in (a, b))
    ):
        raise Unsupported(f"{name}: incompatible types for comparison")
    return bool(_ORDER[name](a, b))


def _untok(t: tuple[str, str]) -> str:
    return t[1]


def _walk(value: Any, path: list[str]) -> Any:
    for key in path:
        if not key:
            continue
        if isinstance(value, dict):
            value = value.get(key)
        elif value is None:
            raise Unsupported(f"nil pointer evaluating .{key}")
        else:
            value = getattr(value, key)
    return value


def _plain(v: Any) -> Any:
    return dict(v) if isinstance(v, dict) else v


def _show(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_show(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_show(x) for x in v) + "]"
    return str(v)


def _printf(fmt: str, args: list) -> str:
    it = iter(args)

    def one(m: re.Match) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        arg = next(it)
        if verb == "q":
            return json.dumps(str(arg))
        if verb == "d":
            return str(int(arg))
        return _show(arg)

    return re.sub(r"%([sdvq%])", one, fmt)


def env_lines(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a rendered `env = true` template, as Nomad parses them
    (client/allocrunner/taskrunner/template/template.go uses godotenv)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = json.loads(value)
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        out[key] = value
    return out
