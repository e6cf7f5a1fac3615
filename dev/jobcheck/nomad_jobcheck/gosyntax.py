"""Go's formats, as Nomad's messages and parsers use them: time.Duration text, %q quoting,
RE2 regexps, go-version constraints, and the alloc-dir escape check."""

from __future__ import annotations

import posixpath
import re
import warnings

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


def re2_error(pattern: str) -> str | None:
    """Approximate Go's regexp (RE2) compile with Python's re.

    RE2 lacks lookaround and backreferences (Python has them: reject explicitly); Python lacks a
    few RE2 spellings (\\z, \\pL, \\Q..\\E, (?<name>), [[:alpha:]]): translate them first.
    """
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            if pattern[i + 1] in "123456789":
                return f"invalid escape sequence: `\\{pattern[i + 1]}`"
            i += 2
            continue
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?>"), i):
            return f"invalid or unsupported Perl syntax: `{pattern[i : i + 3]}`"
        i += 1
    text = re.sub(r"\\Q(.*?)(\\E|$)", lambda m: re.escape(m.group(1)), pattern)
    text = text.replace("\\z", "\\Z").replace("(?<", "(?P<").replace("(?P<P<", "(?P<")
    text = re.sub(r"\\[pP](\{[^}]*\}|[A-Za-z])", ".", text)
    text = re.sub(r"\[:\^?[a-z]+:\]", "a-z", text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(text)
    except re.error as exc:
        return f"error parsing regexp: {exc}"
    return None


_VERSION = (
    r"v?[0-9]+(\.[0-9]+)*"
    r"(-[0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*|-?[A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)?"
    r"(\+[0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*)?"
)
_VERSION_RE = re.compile(rf"\s*(=|!=|>|<|>=|<=|~>)?\s*{_VERSION}\s*")
_SEMVER_RE = re.compile(
    r"\s*(=|!=|>|<|>=|<=)?\s*v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z\-.]+)?(\+[0-9A-Za-z\-.]+)?\s*"
)


def version_constraint_ok(text: str) -> bool:
    # hashicorp/go-version NewConstraint: comma-separated "<op> <version>" terms
    return all(_VERSION_RE.fullmatch(part) for part in text.split(","))


def semver_constraint_ok(text: str) -> bool:
    return all(_SEMVER_RE.fullmatch(part) for part in text.split(","))


_GO_DURATION_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "μs": 1000,
    "ms": 10**6,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


def parse_go_duration(text: str) -> int | None:
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if not body or _GO_DURATION_RE.sub("", body) != "":
        return None
    total = 0.0
    for number, unit in _GO_DURATION_RE.findall(body):
        total += float(number) * _GO_UNITS[unit]
    return sign * round(total)


def go_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_frac(u, 1000)}µs"
    if u < SECOND:
        return f"{sign}{_frac(u, 10**6)}ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    text = f"{_frac(rest, SECOND)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _frac(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if part == 0:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def escapes_alloc(prefix: str, path: str) -> bool:
    # escapingfs.PathEscapesAllocViaRelative: Go's filepath.Join never discards the base
    alloc = "/alloc-dir/alloc-id"
    full = posixpath.normpath(f"{alloc}/{prefix}/{path}")
    return posixpath.relpath(full, alloc).startswith("..")


def go_quote(text: str) -> str:
    """Go's %q for the strings that show up here."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
