"""References from a dependent's `env` to the interfaces of what it depends on, Score-style:

    "DATABASE_URL": "postgres://${psql.host}:${psql.port}/x"   `${<dependency>.<field>}`
    "CACHE": "${memcache:app.addr}"                            a set name works too
    "LITERAL": "$${not a reference}"                           `$${` is a literal `${`

Everything else is literal text. The syntax is defined here only: the manifest checks it, resolve
binds each reference to a set and a field, render writes the value.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# <dependency as written in depends>.<field>
_INNER = re.compile(r"^(?P<dep>[a-z0-9][a-z0-9:-]*)\.(?P<field>[a-z][a-z0-9_]*)$")


class Ref(NamedTuple):
    dep: str  # as written: `psql`, `psql:app`, `cart`
    field: str  # `url`, `host` ...
    offset: int  # where `${` starts in the value, for messages


Part = str | Ref


class RefError(ValueError):
    def __init__(self, message: str, offset: int, hint: str = "") -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


def parse(value: str) -> tuple[Part, ...]:
    """Literal text and references, in order; adjacent literals joined. RefError if malformed."""
    parts: list[Part] = []
    lit: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        if value.startswith("$${", i):
            lit.append("${")
            i += 3
            continue
        if value.startswith("${", i):
            end = value.find("}", i + 2)
            if end < 0:
                raise RefError(
                    "unclosed reference `${`",
                    i,
                    "close it with `}`, or write `$${` for a literal `${`",
                )
            inner = value[i + 2 : end]
            m = _INNER.match(inner)
            if not m:
                raise RefError(
                    f"invalid reference `${{{inner}}}`",
                    i,
                    "write ${<dependency>.<field>}, e.g. ${psql.url}, or `$${` for a literal `${`",
                )
            if lit:
                parts.append("".join(lit))
                lit = []
            parts.append(Ref(m.group("dep"), m.group("field"), i))
            i = end + 1
            continue
        lit.append(value[i])
        i += 1
    if lit:
        parts.append("".join(lit))
    return tuple(parts)


def refs(parts: tuple[Part, ...]) -> list[Ref]:
    return [p for p in parts if isinstance(p, Ref)]


def literal(parts: tuple[Part, ...]) -> str | None:
    """The text when there is no reference, else None."""
    if any(isinstance(p, Ref) for p in parts):
        return None
    return "".join(p for p in parts if isinstance(p, str))
