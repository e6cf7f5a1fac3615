"""Consul stand-in: in-memory catalog/KV state plus an HTTP handler speaking Consul's /v1 API.

Behaviour is taken from Consul's docs and source, not from what nomadgen sends:
  agent/kvs_endpoint.go, agent/txn_endpoint.go, agent/consul/txn_endpoint.go,
  agent/consul/state/{kvs,txn}.go, agent/health_endpoint.go, api-docs/*.mdx.
Notable real-Consul details kept on purpose:
  * a KV write whose value/flags are unchanged does not move ModifyIndex (no watcher wake-up);
  * an empty KV value reads back as "Value": null;
  * delete-cas / ?cas on DELETE of a missing key answers true;
  * txn errors are collected for every failing op (not only the first); all-or-nothing;
  * with ACLs on, a request without a token runs as the anonymous token (deny-all):
    single reads/writes get 403, list endpoints are silently filtered (200 + empty),
    txn ops fail per-op with 409; an unknown token gets 403 "ACL not found";
  * a Consul server registers itself as service "consul" on its own node.
Sessions and locks are modelled (create/renew/destroy/info, TTL expiry, lock-delay, ?acquire=
and ?release=); the txn `lock`/`unlock` verbs are not (they answer as for an unknown session).
Not simulated: running HTTP/TCP checks (they keep their initial status), service maintenance
mode, prepared queries, namespaces, peering.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import acl as acl_mod

log = logging.getLogger("standin.consul")

CONSUL_VERSION = "1.21.5"
KV_MAX_VALUE_SIZE = 512 * 1024  # limits.kv_max_value_size default (raft.SuggestedMaxDataSize)
TXN_MAX_REQ_LEN = 512 * 1024  # limits.txn_max_req_len default
MAX_TXN_OPS = 128  # hard-coded since Consul 1.14 (64 before)
MAX_QUERY_TIME = 600.0  # blocking queries: wait is capped at 10m
DEFAULT_QUERY_TIME = 300.0  # ... and defaults to 5m
HEALTH_STATES = ("passing", "warning", "critical")
ANON_SUFFIX = "The anonymous token is used implicitly when a request does not specify a token."

_KV_READ_VERBS = {
    "get",
    "get-or-empty",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
}


# --------------------------------------------------------------------------- helpers


_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DUR_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


_GO_BOOLS = {  # strconv.ParseBool
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
SESSION_TTL_MIN, SESSION_TTL_MAX = 10.0, 86400.0  # structs.SessionTTLMax; config session_ttl_min


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration ("5s", "100ms", "1m30s"), in seconds; ValueError if invalid."""
    s, sign = text, 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def _node_id(name: str) -> str:
    # Deterministic UUID so repeated runs produce identical catalog output.
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"standin-node-{name}"))


def _is_ipv4(addr: str) -> bool:
    parts = addr.split(".")
    return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)


def _is_ipv6(addr: str) -> bool:
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(addr), ipaddress.IPv6Address)
    except ValueError:
        return False


def _node_tagged_addresses(addr: str) -> dict[str, str]:
    if _is_ipv4(addr):
        return {"lan": addr, "lan_ipv4": addr, "wan": addr, "wan_ipv4": addr}
    if _is_ipv6(addr):
        return {"lan": addr, "lan_ipv6": addr, "wan": addr, "wan_ipv6": addr}
    return {"lan": addr, "wan": addr}


def _service_tagged_addresses(addr: str, port: int) -> dict[str, dict] | None:
    # The agent fills these in for IP service addresses (used by DNS address translation).
    if _is_ipv4(addr):
        return {
            "lan_ipv4": {"Address": addr, "Port": port},
            "wan_ipv4": {"Address": addr, "Port": port},
        }
    if _is_ipv6(addr):
        return {
            "lan_ipv6": {"Address": addr, "Port": port},
            "wan_ipv6": {"Address": addr, "Port": port},
        }
    return None


def _norm(d: Any) -> dict[str, Any]:
    """Field names as Go's JSON decoding + Consul's TranslateKeys see them: case- and _-blind."""
    if not isinstance(d, dict):
        return {}
    return {str(k).replace("_", "").replace("-", "").lower(): v for k, v in d.items()}


class _HTTPError(Exception):
    def __init__(self, code: int, body: str = "", headers: dict[str, str] | None = None):
        super().__init__(body)
        self.code = code
        self.body = body
        self.headers = headers or {}


def _perm_denied(resource: str, name: str | None = None) -> _HTTPError:
    on = f' on "{name}"' if name is not None else ""
    return _HTTPError(
        403, f"Permission denied: anonymous token lacks permission '{resource}'{on}. {ANON_SUFFIX}"
    )


# --------------------------------------------------------------------------- catalog tables


class _Table(dict):
    """A catalog table keyed (node, id) that keeps secondary indexes in step with every write,
    as memdb's indexes do (agent/consul/state/catalog_schema.go: services by name, checks by
    service), so that reads and writes cost the same however many services the catalog holds.
    `indexes` maps an index name to a function of (key, row) giving the row's index key."""

    def __init__(self, **indexes) -> None:
        super().__init__()
        self._fns = indexes
        self.by: dict[str, dict] = {name: {} for name in indexes}

    def _unindex(self, key) -> None:
        row = dict.get(self, key)
        if row is None:
            return
        for name, fn in self._fns.items():
            ik = fn(key, row)
            rows = self.by[name].get(ik)
            if rows is not None:
                rows.pop(key, None)
                if not rows:
                    del self.by[name][ik]

    def __setitem__(self, key, row) -> None:
        self._unindex(key)
        dict.__setitem__(self, key, row)
        for name, fn in self._fns.items():
            self.by[name].setdefault(fn(key, row), {})[key] = row

    def __delitem__(self, key) -> None:
        if key not in self:
            raise KeyError(key)
        self._unindex(key)
        dict.__delitem__(self, key)

    _MISSING = object()

    def pop(self, key, default=_MISSING):
        if key in self:
            row = dict.__getitem__(self, key)
            del self[key]
            return row
        if default is _Table._MISSING:
            raise KeyError(key)
        return default

    def lookup(self, index: str, value) -> list:
        """The rows whose `index` key is `value`, in insertion order (dict iteration order)."""
        return list((self.by[index].get(value) or {}).items())

    def setdefault(self, *_a):  # not kept in step: never used on a table
        raise NotImplementedError

    update = clear = popitem = setdefault


# --------------------------------------------------------------------------- KV store


class _KVStore:
    """KV table + tombstone graveyard. Entries are never mutated in place (copy-on-write),
    so clone() is cheap and a transaction can run against a clone and be dropped on error."""

    __slots__ = ("entries", "index", "tombstones")

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        self.tombstones: dict[str, int] = {}
        self.index = 0  # max index of the kvs + tombstones tables

    def clone(self) -> _KVStore:
        c = _KVStore()
        c.entries = dict(self.entries)
        c.tombstones = dict(self.tombstones)
        c.index = self.index
        return c

    def set(self, idx: int, key: str, value: bytes, flags: int) -> dict:
        old = self.entries.get(key)
        new = {
            "Key": key,
            "Value": value,
            "Flags": flags,
            "Session": old["Session"] if old else "",
            "LockIndex": old["LockIndex"] if old else 0,
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
        }
        if old is not None and old["Value"] == value and old["Flags"] == flags:
            return old  # kvsSetTxn: unchanged entry is not rewritten, ModifyIndex stays
        self.entries[key] = new
        self.index = idx
        return new

    def cas(self, idx: int, key: str, value: bytes, flags: int, cas: int) -> dict | None:
        old = self.entries.get(key)
        if cas == 0 and old is not None:
            return None
        if cas != 0 and (old is None or old["ModifyIndex"] != cas):
            return None
        return self.set(idx, key, value, flags)

    def delete(self, idx: int, key: str) -> None:
        if key in self.entries:
            del self.entries[key]
            self.tombstones[key] = idx
            self.index = idx

    def delete_cas(self, idx: int, key: str, cas: int) -> bool:
        old = self.entries.get(key)
        if old is None or old["ModifyIndex"] != cas:
            return old is None  # kvsDeleteCASTxn: deleting a missing key "succeeds"
        self.delete(idx, key)
        return True

    def delete_tree(self, idx: int, prefix: str) -> None:
        doomed = [k for k in self.entries if k.startswith(prefix)]
        if not doomed:
            return
        for k in doomed:
            del self.entries[k]
        self.tombstones[prefix] = idx  # one tombstone for the whole prefix, like Consul
        self.index = idx

    def _prefix_index(self, prefix: str, entries: Iterable[dict]) -> int:
        lindex = max((e["ModifyIndex"] for e in entries), default=0)
        if prefix:
            gindex = max((i for k, i in self.tombstones.items() if k.startswith(prefix)), default=0)
            lindex = max(lindex, gindex)
        else:
            lindex = self.index
        return lindex or self.index

    def list(self, prefix: str) -> tuple[int, list[dict]]:
        ents = [self.entries[k] for k in sorted(self.entries) if k.startswith(prefix)]
        return self._prefix_index(prefix, ents), ents

    def list_keys(self, prefix: str, sep: str) -> tuple[int, list[str]]:
        ents = [self.entries[k] for k in sorted(self.entries) if k.startswith(prefix)]
        keys: list[str] = []
        for e in ents:
            k = e["Key"]
            if sep:
                pos = k.find(sep, len(prefix))
                if pos > -1:
                    k = k[: pos + len(sep)]
                    if keys and keys[-1] == k:
                        continue
            keys.append(k)
        return self._prefix_index(prefix, ents), keys


def _kv_json(e: dict, with_value: bool = True) -> dict:
    d: dict[str, Any] = {"LockIndex": e["LockIndex"], "Key": e["Key"], "Flags": e["Flags"]}
    value = e["Value"] if with_value else b""
    # An empty []byte is nil in Go and encodes as null.
    d["Value"] = base64.b64encode(value).decode("ascii") if value else None
    if e.get("Session"):
        d["Session"] = e["Session"]
    d["CreateIndex"] = e["CreateIndex"]
    d["ModifyIndex"] = e["ModifyIndex"]
    return d


# --------------------------------------------------------------------------- filter (go-bexpr subset)


class _FilterError(ValueError):
    pass


_FTOK = re.compile(
    r'\s*(?:(?P<op>==|!=|\(|\))|"(?P<dq>(?:[^"\\]|\\.)*)"|`(?P<bq>[^`]*)`|(?P<word>[^\s()"`=!]+))'
)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "contains", "matches"}


class _Filter:
    """Minimal go-bexpr: ==, !=, in, not in, contains, not contains, matches, not matches,
    is empty, is not empty, and/or/not, parentheses. Selectors walk the JSON shape of each
    result (lists are matched with "any element" semantics). Unlike bexpr, an unknown
    selector is not rejected up front; it simply matches nothing."""

    def __init__(self, expr: str) -> None:
        self.toks = self._lex(expr)
        self.pos = 0
        self.tree = self._or()
        if self.pos != len(self.toks):
            raise _FilterError(f"unexpected token {self.toks[self.pos][1]!r}")

    @staticmethod
    def _lex(expr: str) -> list[tuple[str, str]]:
        out, pos = [], 0
        while pos < len(expr):
            if expr[pos:].strip() == "":
                break
            m = _FTOK.match(expr, pos)
            if not m or m.end() == pos:
                raise _FilterError(f"invalid syntax at position {pos}")
            pos = m.end()
            if m.group("op"):
                out.append(("op", m.group("op")))
            elif m.group("dq") is not None:
                out.append(("str", json.loads(f'"{m.group("dq")}"')))
            elif m.group("bq") is not None:
                out.append(("str", m.group("bq")))
            else:
                w = m.group("word")
                out.append(("kw", w) if w in _KEYWORDS else ("word", w))
        if not out:
            raise _FilterError("empty expression")
        return out

    def _peek(self, k: int = 0) -> tuple[str, str] | None:
        i = self.pos + k
        return self.toks[i] if i < len(self.toks) else None

    def _take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        t = self._peek()
        if t is None or (kind and t[0] != kind) or (value and t[1] != value):
            raise _FilterError(f"expected {value or kind}, got {t[1] if t else 'end of input'!r}")
        self.pos += 1
        return t

    def _or(self) -> tuple:
        left = self._and()
        while self._peek() == ("kw", "or"):
            self.pos += 1
            left = ("or", left, self._and())
        return left

    def _and(self) -> tuple:
        left = self._not()
        while self._peek() == ("kw", "and"):
            self.pos += 1
            left = ("and", left, self._not())
        return left

    def _not(self) -> tuple:
        if self._peek() == ("kw", "not"):
            self.pos += 1
            return ("not", self._not())
        if self._peek() == ("op", "("):
            self.pos += 1
            e = self._or()
            self._take("op", ")")
            return e
        return self._match()

    def _match(self) -> tuple:
        first = self._take()
        nxt, nxt2 = self._peek(), self._peek(1)
        if first[0] in ("str", "word") and (
            nxt == ("kw", "in") or (nxt == ("kw", "not") and nxt2 == ("kw", "in"))
        ):
            neg = nxt == ("kw", "not")
            self.pos += 2 if neg else 1
            sel = self._take("word")[1]
            return ("in", first[1], sel, neg)
        if first[0] != "word":
            raise _FilterError(f"expected selector, got {first[1]!r}")
        sel = first[1]
        t = self._take()
        if t in (("op", "=="), ("op", "!=")):
            v = self._take()
            if v[0] not in ("str", "word"):
                raise _FilterError(f"expected value, got {v[1]!r}")
            return ("eq", sel, v[1], t[1] == "!=")
        if t == ("kw", "is"):
            neg = self._peek() == ("kw", "not")
            if neg:
                self.pos += 1
            self._take("kw", "empty")
            return ("empty", sel, neg)
        neg = t == ("kw", "not")
        if neg:
            t = self._take("kw")
        if t in (("kw", "contains"), ("kw", "matches")):
            v = self._take()
            if v[0] not in ("str", "word"):
                raise _FilterError(f"expected value, got {v[1]!r}")
            if t[1] == "matches":
                try:
                    return ("matches", sel, re.compile(v[1]), neg)
                except re.error as exc:
                    raise _FilterError(str(exc)) from exc
            return ("in", v[1], sel, neg)
        raise _FilterError(f"unexpected token {t[1]!r}")

    @staticmethod
    def _resolve(obj: Any, sel: str) -> list[Any]:
        cur = [obj]
        for part in sel.split("."):
            nxt = []
            for c in cur:
                items = c if isinstance(c, list) else [c]
                for it in items:
                    if isinstance(it, dict):
                        if part in it:
                            nxt.append(it[part])
                        else:
                            low = {str(k).lower(): k for k in it}
                            if part.lower() in low:
                                nxt.append(it[low[part.lower()]])
            cur = nxt
        return cur

    @staticmethod
    def _s(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return "" if v is None else str(v)

    def _eval(self, node: tuple, obj: Any) -> bool:
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], obj) or self._eval(node[2], obj)
        if kind == "and":
            return self._eval(node[1], obj) and self._eval(node[2], obj)
        if kind == "not":
            return not self._eval(node[1], obj)
        if kind == "eq":
            _, sel, val, neg = node
            hit = any(
                self._s(v) == val
                for v in self._resolve(obj, sel)
                if not isinstance(v, (list, dict))
            )
            return hit != neg
        if kind == "empty":
            _, sel, neg = node
            vals = self._resolve(obj, sel)
            empty = all(v in (None, "", [], {}) for v in vals)
            return empty != neg
        if kind == "in":
            _, val, sel, neg = node
            hit = False
            for v in self._resolve(obj, sel):
                if isinstance(v, list):
                    hit = hit or any(self._s(x) == val for x in v)
                elif isinstance(v, (dict, str)):
                    hit = hit or val in v
            return hit != neg
        if kind == "matches":
            _, sel, rx, neg = node
            hit = any(isinstance(v, str) and rx.search(v) for v in self._resolve(obj, sel))
            return hit != neg
        raise AssertionError(kind)

    def __call__(self, obj: Any) -> bool:
        return self._eval(self.tree, obj)


# --------------------------------------------------------------------------- state


class ConsulState:
    """Thread-safe Consul state: one raft-like index (starts at 1, +1 per write), a KV store,
    and a catalog (nodes, services, checks). Blocking readers wait on one Condition."""

    def __init__(
        self,
        *,
        datacenter: str = "dc1",
        acl_tokens: set[str] | None = None,
        node_name: str = "standin",
        node_address: str = "127.0.0.1",
    ) -> None:
        self.datacenter = datacenter
        self.acl_tokens: frozenset[str] = frozenset(acl_tokens or ())
        # Tokens given here are global-management; acl.add_token(rules) adds narrower ones.
        self.acl = acl_mod.ConsulACL(self.acl_tokens)
        self.node_name = node_name
        self.node_address = node_address
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._index = 1
        self._jitter = random.Random("blocking-jitter")
        self._kv = _KVStore()
        self._nodes: dict[str, dict] = {}
        # (node, service id) -> service; (node, check id) -> check
        self._services: dict[tuple[str, str], dict] = _Table(
            name=lambda k, s: s["Service"].lower(), id=lambda k, s: k[1]
        )
        self._checks: dict[tuple[str, str], dict] = _Table(
            service=lambda k, c: (k[0], c["ServiceID"])
        )
        self._tables = {"nodes": 0, "services": 0, "checks": 0}
        self._svc_index: dict[str, int] = {}  # lower-cased service name -> last change
        self._svc_extinction = 0  # last time some service lost its final instance
        # Sessions and locks (agent/consul/session_ttl.go, state/kvs.go, state/session.go).
        self.time_scale = 1.0  # multiplies session TTLs and lock-delays, like the Nomad side
        self._sessions: dict[str, dict] = {}
        self._session_timers: dict[str, threading.Timer] = {}
        self._lock_delay: dict[str, float] = {}  # key -> monotonic time the delay ends
        self._session_seq = 0
        # Instances Nomad clients registered through this agent (listed by /v1/agent/services).
        self._agent_extra: set[tuple[str, str]] = set()
        # Bootstrap at index 1: the server's own node, serfHealth, and the "consul" service.
        self._put_node(
            1,
            node_name,
            node_address,
            {"consul-network-segment": "", "consul-version": CONSUL_VERSION},
        )
        self._put_service(
            1,
            node=node_name,
            sid="consul",
            name="consul",
            address="",
            port=8300,
            tags=[],
            meta={"raft_version": "3", "version": CONSUL_VERSION},
            checks=[],
        )

    # ---- generic

    @property
    def acl_enabled(self) -> bool:
        return self.acl.enabled

    @property
    def index(self) -> int:
        with self._lock:
            return self._index

    def _next_index(self) -> int:
        self._index += 1
        return self._index

    def _notify(self) -> None:
        self._cond.notify_all()

    def block(
        self, min_index: int, wait: float, query: Callable[[], tuple[int, Any]]
    ) -> tuple[int, Any]:
        """Run query() (under the lock) until its index passes min_index or wait elapses, plus
        up to wait/16 of jitter as Consul adds (agent/consul/rpc.go blockingQuery,
        lib.RandomStagger(timeout / JitterFraction)): a client must not time out at `wait`."""
        if min_index > 0:
            wait += self._jitter.uniform(0, wait / 16)
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                idx, result = query()
                idx = max(idx, 1)  # Consul never reports index 0
                if min_index <= 0 or idx > min_index:
                    return idx, result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return idx, result
                self._cond.wait(remaining)

    # ---- sessions and locks

    def session_create(self, body: dict) -> str:
        """agent/session_endpoint.go SessionCreate: defaults Node = the agent's node,
        LockDelay 15s, Behavior release; agent/consul/session_endpoint.go Apply checks the
        TTL bounds [10s, 24h] and that the node exists."""
        b = _norm(body)
        ttl_text = str(b.get("ttl") or "")
        ttl = 0.0
        if ttl_text:
            try:
                ttl = parse_go_duration(ttl_text)
            except ValueError:
                raise _HTTPError(
                    400, f"Request decode failed: time: invalid duration {ttl_text!r}"
                ) from None
            if ttl != 0 and not SESSION_TTL_MIN <= ttl <= SESSION_TTL_MAX:
                raise _HTTPError(
                    500, f"Invalid Session TTL '{int(ttl * 1e9)}', must be between [10s=24h0m0s]"
                )
        delay = b.get("lockdelay", 15.0)
        if isinstance(delay, str):
            delay = parse_go_duration(delay)
        elif isinstance(delay, int | float):
            # FixupLockDelay: small numbers are seconds, large ones nanoseconds.
            delay = float(delay) if delay < 1000 else delay / 1e9
        behavior = b.get("behavior") or "release"
        if behavior not in ("release", "delete"):
            raise _HTTPError(500, f"Invalid Behavior setting '{behavior}'")
        node = b.get("node") or self.node_name
        with self._cond:
            if node not in self._nodes:
                raise _HTTPError(500, "Missing node registration")
            self._session_seq += 1
            sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin-session-{self._session_seq}"))
            idx = self._next_index()
            self._sessions[sid] = {
                "ID": sid,
                "Name": str(b.get("name") or ""),
                "Node": node,
                "LockDelay": int(delay * 1e9),
                "Behavior": behavior,
                "TTL": ttl_text,
                "NodeChecks": ["serfHealth"],
                "ServiceChecks": None,
                "CreateIndex": idx,
                "ModifyIndex": idx,
                "_ttl": ttl,
                "_delay": delay,
            }
            self._arm(sid)
            self._notify()
        return sid

    def _arm(self, sid: str) -> None:
        # session_ttl.go resetSessionTimer: the timer runs TTL * SessionTTLMultiplier (2).
        old = self._session_timers.pop(sid, None)
        if old:
            old.cancel()
        ttl = self._sessions[sid]["_ttl"]
        if ttl:
            t = threading.Timer(ttl * 2 * self.time_scale, self.session_destroy, (sid,))
            t.daemon = True
            self._session_timers[sid] = t
            t.start()

    def session_renew(self, sid: str) -> dict | None:
        with self._cond:
            if sid not in self._sessions:
                return None
            self._arm(sid)
            return self._sessions[sid]

    def session_destroy(self, sid: str) -> None:
        """state/session.go deleteSessionTxn: the session's locks are released (or their keys
        deleted, Behavior delete) and each gets the session's lock-delay."""
        with self._cond:
            sess = self._sessions.pop(sid, None)
            timer = self._session_timers.pop(sid, None)
            if timer:
                timer.cancel()
            idx = self._next_index()
            if sess is None:
                return
            now = time.monotonic()
            for key, e in list(self._kv.entries.items()):
                if e.get("Session") != sid:
                    continue
                if sess["_delay"] > 0:
                    self._lock_delay[key] = now + sess["_delay"] * self.time_scale
                if sess["Behavior"] == "delete":
                    self._kv.delete(idx, key)
                else:
                    self._kv.entries[key] = {**e, "Session": "", "ModifyIndex": idx}
                    self._kv.index = idx
            self._notify()

    def session_json(self, sid: str) -> dict | None:
        with self._lock:
            s = self._sessions.get(sid)
            return None if s is None else {k: v for k, v in s.items() if not k.startswith("_")}

    def kv_acquire(self, key: str, value: bytes, flags: int, sid: str) -> bool:
        """state/kvs.go kvsLockTxn (+ kvs_endpoint.go: no acquire while a lock-delay runs)."""
        with self._cond:
            idx = self._next_index()
            if sid not in self._sessions:
                raise _HTTPError(500, f'invalid session "{sid}"')
            if self._lock_delay.get(key, 0) > time.monotonic():
                return False
            old = self._kv.entries.get(key)
            if old is not None and old.get("Session") and old["Session"] != sid:
                return False
            held = old is not None and old.get("Session") == sid
            self._kv.entries[key] = {
                "Key": key,
                "Value": value,
                "Flags": flags,
                "Session": sid,
                "LockIndex": (old["LockIndex"] if held else (old["LockIndex"] + 1 if old else 1)),
                "CreateIndex": old["CreateIndex"] if old else idx,
                "ModifyIndex": idx,
            }
            self._kv.index = idx
            self._notify()
            return True

    def kv_release(self, key: str, value: bytes, flags: int, sid: str) -> bool:
        """state/kvs.go kvsUnlockTxn: only the holding session releases."""
        with self._cond:
            idx = self._next_index()
            old = self._kv.entries.get(key)
            if old is None or old.get("Session") != sid:
                return False
            self._kv.entries[key] = {
                **old,
                "Value": value,
                "Flags": flags,
                "Session": "",
                "ModifyIndex": idx,
            }
            self._kv.index = idx
            self._notify()
            return True

    # ---- KV (direct helpers)

    def kv_get(self, key: str) -> bytes | None:
        with self._lock:
            e = self._kv.entries.get(key)
            return None if e is None else bytes(e["Value"])

    def kv_put(self, key: str, value: bytes) -> None:
        with self._cond:
            self._kv.set(self._next_index(), key, bytes(value), 0)
            self._notify()

    # ---- catalog internals (caller holds the lock)

    def _touch_services_on(self, idx: int, node: str) -> None:
        for (n, _), svc in self._services.items():
            if n == node:
                self._svc_index[svc["Service"].lower()] = idx

    def _put_node(self, idx: int, name: str, address: str, meta: dict[str, str] | None) -> None:
        old = self._nodes.get(name)
        node = {
            "ID": _node_id(name),
            "Node": name,
            "Address": address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": _node_tagged_addresses(address),
            "Meta": dict(meta or {}),
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
        }
        if old and all(old[k] == node[k] for k in ("Address", "Meta")):
            return
        self._nodes[name] = node
        self._tables["nodes"] = idx
        self._touch_services_on(idx, name)
        if (name, "serfHealth") not in self._checks:
            self._checks[(name, "serfHealth")] = self._make_check(
                idx,
                name,
                "serfHealth",
                "Serf Health Status",
                "passing",
                None,
                output="Agent alive and reachable",
            )
            self._tables["checks"] = idx

    def _make_check(
        self,
        idx: int,
        node: str,
        check_id: str,
        name: str,
        status: str,
        svc: dict | None,
        *,
        output: str = "",
        notes: str = "",
        ctype: str = "",
        interval: str = "",
        timeout: str = "",
        definition: dict | None = None,
    ) -> dict:
        return {
            "Node": node,
            "CheckID": check_id,
            "Name": name,
            "Status": status,
            "Notes": notes,
            "Output": output,
            "ServiceID": svc["ID"] if svc else "",
            "ServiceName": svc["Service"] if svc else "",
            "ServiceTags": list(svc["Tags"]) if svc else [],
            "Type": ctype,
            "Interval": interval,
            "Timeout": timeout,
            "ExposedPort": 0,
            "Definition": definition or {},
            "CreateIndex": idx,
            "ModifyIndex": idx,
        }

    def _put_service(
        self,
        idx: int,
        *,
        node: str,
        sid: str,
        name: str,
        address: str,
        port: int,
        tags: list[str],
        meta: dict[str, str] | None,
        checks: list[dict],
        weights: dict | None = None,
        enable_tag_override: bool = False,
        tagged_addresses: dict | None = None,
        replace_checks: bool = True,
    ) -> None:
        old = self._services.get((node, sid))
        if old is not None and old["Service"].lower() != name.lower():
            self._drop_service(idx, node, sid)
            old = None
        svc = {
            "Node": node,
            "ID": sid,
            "Service": name,
            "Tags": list(tags or []),
            "Address": address or "",
            "TaggedAddresses": tagged_addresses or _service_tagged_addresses(address or "", port),
            "Meta": dict(meta) if meta is not None else None,
            "Port": int(port or 0),
            "Weights": weights or {"Passing": 1, "Warning": 1},
            "EnableTagOverride": bool(enable_tag_override),
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
        }
        self._services[(node, sid)] = svc
        if replace_checks:
            for key, _ in self._checks.lookup("service", (node, sid)):
                del self._checks[key]
        for chk in checks:
            chk = dict(chk, ServiceID=sid, ServiceName=name, ServiceTags=list(svc["Tags"]))
            old_chk = self._checks.get((node, chk["CheckID"]))
            if old_chk:
                chk["CreateIndex"] = old_chk["CreateIndex"]
            self._checks[(node, chk["CheckID"])] = chk
        # Service tags are mirrored on every check of the service.
        for key, c in self._checks.lookup("service", (node, sid)):
            if c["ServiceTags"] != svc["Tags"]:
                self._checks[key] = dict(c, ServiceTags=list(svc["Tags"]), ModifyIndex=idx)
        self._tables["services"] = idx
        self._tables["checks"] = idx
        self._svc_index[name.lower()] = idx

    def _drop_service(self, idx: int, node: str, sid: str) -> bool:
        self._agent_extra.discard((node, sid))
        svc = self._services.pop((node, sid), None)
        if svc is None:
            return False
        for key, _ in self._checks.lookup("service", (node, sid)):
            del self._checks[key]
        self._tables["services"] = idx
        self._tables["checks"] = idx
        lname = svc["Service"].lower()
        if self._services.lookup("name", lname):
            self._svc_index[lname] = idx
        else:
            self._svc_index.pop(lname, None)
            self._svc_extinction = idx
        return True

    def _set_check_status(
        self, idx: int, key: tuple[str, str], status: str, output: str | None = None
    ) -> bool:
        c = self._checks[key]
        if c["Status"] == status and (output is None or c["Output"] == output):
            return False
        self._checks[key] = dict(
            c, Status=status, Output=c["Output"] if output is None else output, ModifyIndex=idx
        )
        self._tables["checks"] = idx
        if c["ServiceName"]:
            self._svc_index[c["ServiceName"].lower()] = idx
        else:
            self._touch_services_on(idx, c["Node"])
        return True

    # ---- catalog API used by the Nomad stand-in

    def register_node(self, name: str, address: str, meta: dict[str, str] | None = None) -> None:
        with self._cond:
            self._put_node(self._next_index(), name, address, meta)
            self._notify()

    def register_service(
        self,
        *,
        node: str,
        service_id: str,
        name: str,
        address: str,
        port: int,
        tags: list[str],
        meta: dict[str, str] | None = None,
        check_status: str = "passing",
        check_name: str = "",
        check_id: str = "",
        through_agent: bool = False,
    ) -> None:
        """Register (or replace) one instance with a single service check in check_status.
        An unknown node is created on the fly with the service address (catalog register
        does the same). `through_agent`: a Nomad client registered it through the agent this
        API serves, so /v1/agent/services lists it (as on a real agent Nomad clients use)."""
        if check_status not in HEALTH_STATES:
            raise ValueError(f"check_status must be one of {HEALTH_STATES}, not {check_status!r}")
        with self._cond:
            idx = self._next_index()
            if node not in self._nodes:
                self._put_node(idx, node, address, None)
            chk = self._make_check(
                idx,
                node,
                check_id or f"service:{service_id}",
                check_name or f"Service '{name}' check",
                check_status,
                None,
            )
            self._put_service(
                idx,
                node=node,
                sid=service_id,
                name=name,
                address=address,
                port=port,
                tags=list(tags),
                meta=meta,
                checks=[chk],
            )
            if through_agent:
                self._agent_extra.add((node, service_id))
            self._notify()

    def check_statuses(self, service_id: str) -> dict[str, str]:
        """Check ID -> status of every check of the instance(s) with this service ID."""
        with self._lock:
            return {
                c["CheckID"]: c["Status"]
                for (_, _), c in self._checks.items()
                if c["ServiceID"] == service_id
            }

    def set_service_health(self, service_id: str, status: str) -> None:
        """Set every check of the instance(s) with this service ID. KeyError if unknown."""
        if status not in HEALTH_STATES:
            raise ValueError(f"status must be one of {HEALTH_STATES}, not {status!r}")
        with self._cond:
            targets = [k for k, _ in self._services.lookup("id", service_id)]
            if not targets:
                raise KeyError(f"unknown service ID {service_id!r}")
            idx = self._index + 1
            changed = False
            for node, sid in targets:
                keys = [k for k, _ in self._checks.lookup("service", (node, sid))]
                if not keys:  # no check yet: give it one so its health can be driven
                    svc = self._services[(node, sid)]
                    key = (node, f"service:{sid}")
                    self._checks[key] = self._make_check(
                        idx, node, key[1], f"Service '{svc['Service']}' check", status, svc
                    )
                    self._tables["checks"] = idx
                    self._svc_index[svc["Service"].lower()] = idx
                    changed = True
                for k in keys:
                    changed = self._set_check_status(idx, k, status) or changed
            if changed:
                self._index = idx
                self._notify()

    def deregister_service(self, service_id: str) -> None:
        """Remove the instance(s) with this service ID and their checks; unknown is a no-op."""
        with self._cond:
            targets = [k for k, _ in self._services.lookup("id", service_id)]
            if not targets:
                return
            idx = self._next_index()
            for node, sid in targets:
                self._drop_service(idx, node, sid)
            self._notify()

    def deregister_node(self, name: str) -> None:
        """Remove a node with all its services and checks (extra helper, not in the contract)."""
        with self._cond:
            if name not in self._nodes:
                return
            idx = self._next_index()
            for node, sid in [k for k in self._services if k[0] == name]:
                self._drop_service(idx, node, sid)
            for key in [k for k in self._checks if k[0] == name]:
                del self._checks[key]
            del self._nodes[name]
            self._tables["nodes"] = self._tables["checks"] = idx
            self._notify()

    def set_node_health(self, name: str, status: str) -> None:
        """Set the node's serfHealth check (extra helper, not in the contract)."""
        if status not in HEALTH_STATES:
            raise ValueError(f"status must be one of {HEALTH_STATES}, not {status!r}")
        with self._cond:
            if (name, "serfHealth") not in self._checks:
                raise KeyError(f"unknown node {name!r}")
            out = (
                "Agent alive and reachable"
                if status == "passing"
                else "Agent not live or unreachable"
            )
            if self._set_check_status(self._index + 1, (name, "serfHealth"), status, out):
                self._index += 1
                self._notify()

    def healthy_instances(self, name: str, tag: str | None = None) -> list[dict]:
        """Instances whose checks (service and node) all pass, as /v1/catalog/service entries,
        sorted by (Node, ServiceID)."""
        with self._lock:
            out = []
            for entry in self.check_service_nodes(name, [tag] if tag else []):
                if all(c["Status"] == "passing" for c in entry["Checks"]):
                    out.append(
                        self._catalog_service_json(
                            self._nodes[entry["Node"]["Node"]], entry["_svc"]
                        )
                    )
            return out

    # ---- read models (JSON shapes), also used by dns.py

    def _node_json(self, n: dict) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in n.items()}

    @staticmethod
    def _check_json(c: dict) -> dict:
        return dict(c, ServiceTags=list(c["ServiceTags"]), Definition=dict(c["Definition"]))

    @staticmethod
    def _service_json(s: dict) -> dict:
        d = {
            "ID": s["ID"],
            "Service": s["Service"],
            "Tags": list(s["Tags"]),
            "Address": s["Address"],
        }
        if s["TaggedAddresses"]:
            d["TaggedAddresses"] = json.loads(json.dumps(s["TaggedAddresses"]))
        d.update(
            {
                "Meta": dict(s["Meta"]) if s["Meta"] is not None else None,
                "Port": s["Port"],
                "Weights": dict(s["Weights"]),
                "EnableTagOverride": s["EnableTagOverride"],
                "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
                "Connect": {},
                "PeerName": "",
                "CreateIndex": s["CreateIndex"],
                "ModifyIndex": s["ModifyIndex"],
            }
        )
        return d

    def _catalog_service_json(self, n: dict, s: dict) -> dict:
        d = {
            "ID": n["ID"],
            "Node": n["Node"],
            "Address": n["Address"],
            "Datacenter": n["Datacenter"],
            "TaggedAddresses": dict(n["TaggedAddresses"]),
            "NodeMeta": dict(n["Meta"]),
            "ServiceKind": "",
            "ServiceID": s["ID"],
            "ServiceName": s["Service"],
            "ServiceTags": list(s["Tags"]),
            "ServiceAddress": s["Address"],
        }
        if s["TaggedAddresses"]:
            d["ServiceTaggedAddresses"] = json.loads(json.dumps(s["TaggedAddresses"]))
        d.update(
            {
                "ServiceWeights": dict(s["Weights"]),
                "ServiceMeta": dict(s["Meta"]) if s["Meta"] is not None else {},
                "ServicePort": s["Port"],
                "ServiceSocketPath": "",
                "ServiceEnableTagOverride": s["EnableTagOverride"],
                "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
                "ServiceConnect": {},
                "ServicePeerName": "",
                "CreateIndex": s["CreateIndex"],
                "ModifyIndex": s["ModifyIndex"],
            }
        )
        return d

    @staticmethod
    def _has_tags(svc: dict, tags: list[str]) -> bool:
        have = {t.lower() for t in svc["Tags"]}
        return all(t.lower() in have for t in tags)

    def _instances(self, name: str, tags: list[str]) -> list[dict]:
        lname = name.lower()  # service names are matched case-insensitively, like memdb's index
        found = [
            s
            for _, s in self._services.lookup("name", lname)
            if self._has_tags(s, tags) and s["Node"] in self._nodes
        ]
        return sorted(found, key=lambda s: (s["Node"], s["ID"]))

    def service_index(self, name: str, with_checks: bool) -> int:
        """Index for catalog/health service reads (maxIndexForService)."""
        with self._lock:
            lname = name.lower()
            if lname in self._svc_index:
                return self._svc_index[lname]
            if self._svc_extinction:
                return self._svc_extinction
            tables = ("nodes", "services", "checks") if with_checks else ("nodes", "services")
            return max(self._tables[t] for t in tables)

    def check_service_nodes(self, name: str, tags: list[str] | None = None) -> list[dict]:
        """/v1/health/service/<name> entries (Node, Service, Checks); checks sorted by CheckID.
        Each entry also carries "_svc" (internal record) for in-process callers."""
        with self._lock:
            out = []
            for s in self._instances(name, tags or []):
                node = self._nodes[s["Node"]]
                checks = sorted(
                    [c for _, c in self._checks.lookup("service", (s["Node"], ""))]
                    + [c for _, c in self._checks.lookup("service", (s["Node"], s["ID"]))]
                    if s["ID"]
                    else [c for _, c in self._checks.lookup("service", (s["Node"], ""))],
                    key=lambda c: c["CheckID"],
                )
                out.append(
                    {
                        "Node": self._node_json(node),
                        "Service": self._service_json(s),
                        "Checks": [self._check_json(c) for c in checks],
                        "_svc": s,
                    }
                )
            return out

    def get_node(self, name: str) -> dict | None:
        with self._lock:
            n = self._nodes.get(name)
            if n is None:  # node names are case-insensitive in the catalog
                n = next((v for k, v in self._nodes.items() if k.lower() == name.lower()), None)
            return None if n is None else self._node_json(n)

    def list_nodes(self) -> list[dict]:
        with self._lock:
            return [self._node_json(self._nodes[k]) for k in sorted(self._nodes)]

    def services_with_address(self, address: str) -> list[dict]:
        with self._lock:
            return [
                dict(s)
                for s in sorted(self._services.values(), key=lambda s: (s["Node"], s["ID"]))
                if s["Address"] == address
            ]


# --------------------------------------------------------------------------- HTTP handler


_Route = tuple[re.Pattern, tuple[str, ...], str]

_ROUTES: list[_Route] = [
    (re.compile(r"^/v1/kv/(?P<arg>.*)$", re.DOTALL), ("GET", "PUT", "DELETE"), "kv"),
    (re.compile(r"^/v1/txn$"), ("PUT",), "txn"),
    (re.compile(r"^/v1/catalog/services$"), ("GET",), "catalog_services"),
    (re.compile(r"^/v1/catalog/service/(?P<arg>.*)$", re.DOTALL), ("GET",), "catalog_service"),
    (re.compile(r"^/v1/catalog/nodes$"), ("GET",), "catalog_nodes"),
    (re.compile(r"^/v1/catalog/node/(?P<arg>.*)$", re.DOTALL), ("GET",), "catalog_node"),
    (re.compile(r"^/v1/catalog/datacenters$"), ("GET",), "catalog_datacenters"),
    (re.compile(r"^/v1/catalog/register$"), ("PUT",), "catalog_register"),
    (re.compile(r"^/v1/catalog/deregister$"), ("PUT",), "catalog_deregister"),
    (re.compile(r"^/v1/health/service/(?P<arg>.*)$", re.DOTALL), ("GET",), "health_service"),
    (re.compile(r"^/v1/health/checks/(?P<arg>.*)$", re.DOTALL), ("GET",), "health_checks"),
    (re.compile(r"^/v1/health/state/(?P<arg>.*)$", re.DOTALL), ("GET",), "health_state"),
    (re.compile(r"^/v1/health/node/(?P<arg>.*)$", re.DOTALL), ("GET",), "health_node"),
    (re.compile(r"^/v1/agent/self$"), ("GET",), "agent_self"),
    (re.compile(r"^/v1/agent/services$"), ("GET",), "agent_services"),
    (re.compile(r"^/v1/agent/checks$"), ("GET",), "agent_checks"),
    (re.compile(r"^/v1/agent/service/register$"), ("PUT",), "agent_service_register"),
    (
        re.compile(r"^/v1/agent/service/deregister/(?P<arg>.+)$", re.DOTALL),
        ("PUT",),
        "agent_service_deregister",
    ),
    (
        re.compile(r"^/v1/agent/service/maintenance/(?P<arg>.+)$", re.DOTALL),
        ("PUT",),
        "agent_service_maintenance",
    ),
    (re.compile(r"^/v1/agent/service/(?P<arg>[^/]+)$", re.DOTALL), ("GET",), "agent_service"),
    (
        re.compile(r"^/v1/agent/check/(?P<verb>pass|warn|fail|update)/(?P<arg>.+)$", re.DOTALL),
        ("PUT",),
        "agent_check_ttl",
    ),
    (re.compile(r"^/v1/session/create$"), ("PUT",), "session_create"),
    (re.compile(r"^/v1/session/destroy/(?P<arg>[^/]+)$"), ("PUT",), "session_destroy"),
    (re.compile(r"^/v1/session/renew/(?P<arg>[^/]+)$"), ("PUT",), "session_renew"),
    (re.compile(r"^/v1/session/info/(?P<arg>[^/]+)$"), ("GET",), "session_info"),
    (re.compile(r"^/v1/status/leader$"), ("GET",), "status_leader"),
    (re.compile(r"^/v1/status/peers$"), ("GET",), "status_peers"),
]


def make_handler(
    state: ConsulState,
    hook: Callable[[BaseHTTPRequestHandler, str], bool] | None = None,
) -> type[BaseHTTPRequestHandler]:
    """Handler class for http.server.ThreadingHTTPServer serving Consul's /v1 API from state.
    hook(handler, "consul") runs first on every request; True means it already answered."""

    class ConsulHandler(_ConsulHandlerBase):
        pass

    ConsulHandler.state = state
    ConsulHandler.hook = staticmethod(hook) if hook else None
    return ConsulHandler


class _ConsulHandlerBase(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: ConsulState
    hook: Callable[[BaseHTTPRequestHandler, str], bool] | None = None

    # Go's net/http sends Date but no Server header.
    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_POST = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # ---- plumbing

    def _dispatch(self) -> None:
        hook = type(self).hook
        if hook is not None and hook(self, "consul"):
            # The request body may be unread; never reuse this connection.
            self.close_connection = True
            return
        try:
            self._body = self._read_body()
        except _HTTPError as exc:
            self.close_connection = True
            self._send_text(exc.code, exc.body)
            return
        parts = urlsplit(self.path)
        self.req_path = unquote(parts.path)
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self._extra_headers: dict[str, str] = {}
        for rx, methods, name in _ROUTES:
            m = rx.match(self.req_path)
            if not m:
                continue
            if self.command not in methods:
                self._send_text(
                    405, f"method {self.command} not allowed", {"Allow": ",".join(methods)}
                )
                return
            try:
                self._common()
                getattr(self, "_r_" + name)(**m.groupdict())
            except _HTTPError as exc:
                self._send_text(exc.code, exc.body, exc.headers)
            except Exception as exc:  # an internal bug must still produce an HTTP answer
                log.exception("consul stand-in failed on %s %s", self.command, self.path)
                self._send_text(500, f"stand-in internal error: {exc}")
            return
        log.warning("consul stand-in: unknown route %s %s", self.command, self.path)
        self._send_text(
            501, f"consul stand-in: route not implemented: {self.command} {self.req_path}"
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline(65537).strip()
                size = int(line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > 64 * 1024 * 1024:
            raise _HTTPError(413, f"Request body({length} bytes) too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self, code: int, body: bytes, ctype: str | None, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for k, v in {**self._extra_headers, **(headers or {})}.items():
            self.send_header(k, v)
        if ctype and body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_text(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8", headers)

    def _send_json(self, obj: Any, code: int = 200) -> None:
        if self._has("pretty"):
            text = json.dumps(obj, indent=4) + "\n"
        else:
            text = json.dumps(obj, separators=(",", ":"))
        self._send(code, text.encode(), "application/json")

    def _q(self, key: str) -> str | None:
        vals = self.query.get(key)
        return vals[0] if vals else None

    def _has(self, key: str) -> bool:
        return key in self.query

    def _token(self) -> str:
        # Same precedence as Consul's parseToken: ?token=, then X-Consul-Token, then Bearer.
        tok = self._q("token")
        if tok:
            return tok
        tok = self.headers.get("X-Consul-Token")
        if tok:
            return tok.strip()
        auth = self.headers.get("Authorization", "")
        parts = auth.split(" ")
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1].strip()
        return ""

    def _common(self) -> None:
        """Consul's s.parse(): token, dc, consistency, wait/index."""
        st = self.state
        self.authorized = True  # ACLs off, or a management token
        self.authz: acl_mod.ConsulAuthz | None = None
        if st.acl_enabled and not self.req_path.startswith("/v1/status/"):
            try:
                self.authz = st.acl.resolve(self._token())
            except KeyError:
                raise _HTTPError(403, "ACL not found") from None
            self.authorized = self.authz.management
        dc = self._q("dc")
        if dc and dc != st.datacenter:
            raise _HTTPError(500, "No path to datacenter")
        if self._has("stale") and self._has("consistent"):
            raise _HTTPError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        self.consistency = (
            "stale" if self._has("stale") else "consistent" if self._has("consistent") else "leader"
        )
        self.wait = DEFAULT_QUERY_TIME
        wait = self._q("wait")
        if wait:
            try:
                w = parse_go_duration(wait)
            except ValueError:
                raise _HTTPError(400, "Invalid wait time") from None
            self.wait = (
                MAX_QUERY_TIME if w > MAX_QUERY_TIME else (w if w > 0 else DEFAULT_QUERY_TIME)
            )
        self.min_index = 0
        idx = self._q("index")
        if idx:
            try:
                self.min_index = int(idx)
                if self.min_index < 0:
                    raise ValueError
            except ValueError:
                raise _HTTPError(400, "Invalid index") from None
        self.filter: _Filter | None = None
        expr = self._q("filter")
        if expr:
            try:
                self.filter = _Filter(expr)
            except _FilterError as exc:
                raise _HTTPError(
                    400, f"Failed to create boolean expression evaluator: {exc}"
                ) from None
        self.node_meta: list[tuple[str, str]] = []
        for item in self.query.get("node-meta", []):
            k, _, v = item.partition(":")
            self.node_meta.append((k, v))

    def _set_meta(self, index: int) -> None:
        self._extra_headers.update(
            {
                "X-Consul-Index": str(max(index, 1)),
                "X-Consul-KnownLeader": "true",
                "X-Consul-LastContact": "0",
                "X-Consul-Effective-Consistency": self.consistency,
            }
        )

    def _blocking(self, query: Callable[[], tuple[int, Any]]) -> Any:
        idx, result = self.state.block(self.min_index, self.wait, query)
        self._set_meta(idx)
        return result

    def _need(self, resource: str, name: str | None = None) -> None:
        if self.authorized or self.authz is None or self.authz.allows(resource, name):
            return
        raise _HTTPError(403, self.authz.denied(resource, name))

    def _acl_filter(self, items: list) -> list:
        """List reads are filtered per row by the token's rules (dev/standin/nomad_standin/acl.py), not
        refused; Consul then sets X-Consul-Results-Filtered-By-ACLs."""
        if self.authorized or self.authz is None:
            return items
        kept = [i for i in items if self.authz.sees(i)]
        if len(kept) < len(items):
            self._extra_headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
        return kept

    def _node_meta_ok(self, node: dict) -> bool:
        return all(node["Meta"].get(k) == v for k, v in self.node_meta)

    def _apply_filter(self, items: list) -> list:
        return [i for i in items if self.filter(i)] if self.filter else items

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _HTTPError(400, f"Request decode failed: {exc}") from None

    # ---- KV

    def _r_kv(self, arg: str) -> None:
        key = arg
        if key.startswith("/"):
            raise _HTTPError(400, "key must not begin with a '/'")
        if self.command == "GET":
            if self._has("keys"):
                self._kv_keys(key)
            else:
                self._kv_get(key)
        elif self.command == "PUT":
            self._kv_put(key)
        else:
            self._kv_delete(key)

    def _kv_get(self, key: str) -> None:
        st = self.state
        recurse = self._has("recurse")
        if not recurse and key == "":
            raise _HTTPError(400, "Missing key name")
        if not recurse:
            self._need("key:read", key)

        def query() -> tuple[int, list[dict]]:
            if recurse:
                return st._kv.list(key)
            e = st._kv.entries.get(key)
            return (e["ModifyIndex"], [e]) if e else (st._kv.index, [])

        entries = self._acl_filter(self._blocking(query))
        if not entries:
            self._send(404, b"", None)
            return
        if self._has("raw") and not recurse:
            self._send(
                200,
                bytes(entries[0]["Value"]),
                "text/plain",
                {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
            )
            return
        self._send_json([_kv_json(e) for e in entries])

    def _kv_keys(self, prefix: str) -> None:
        sep = self._q("separator") if self._has("separator") else (self._q("seperator") or "")
        keys = self._acl_filter(self._blocking(lambda: self.state._kv.list_keys(prefix, sep or "")))
        if not keys and prefix:
            self._send(404, b"", None)
            return
        self._send_json(keys)

    def _flags_cas(self, name: str) -> int | None:
        if not self._has(name):
            return None
        try:
            v = int(self._q(name) or "")
            if v < 0 or v >= 2**64:
                raise ValueError
            return v
        except ValueError:
            raise _HTTPError(
                500, f'strconv.ParseUint: parsing "{self._q(name)}": invalid syntax'
            ) from None

    def _kv_put(self, key: str) -> None:
        st = self.state
        if key == "":
            raise _HTTPError(400, "Missing key name")
        present = [f for f in ("cas", "acquire", "release") if self._has(f)]
        if len(present) > 1:
            raise _HTTPError(
                400,
                "Conflicting flags: "
                + "&".join(f"{k}={v[0]}" for k, v in sorted(self.query.items())),
            )
        self._need("key:write", key)
        flags = self._flags_cas("flags") or 0
        cas = self._flags_cas("cas")
        length = int(self.headers.get("Content-Length") or len(self._body))
        if length > KV_MAX_VALUE_SIZE:
            raise _HTTPError(
                413,
                f"Request body({length} bytes) too large, max size: {KV_MAX_VALUE_SIZE} bytes. See "
                "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
            )
        value = self._body
        if self._has("acquire") or self._has("release"):
            verb = "acquire" if self._has("acquire") else "release"
            sess = self._q(verb) or ""
            if not sess:
                with st._cond:
                    st._next_index()
                raise _HTTPError(500, "missing session")
            fn = st.kv_acquire if verb == "acquire" else st.kv_release
            self._send_json(fn(key, value, flags, sess))
            return
        with st._cond:
            idx = st._next_index()
            if cas is not None:
                ok = st._kv.cas(idx, key, value, flags, cas) is not None
            else:
                st._kv.set(idx, key, value, flags)
                ok = True
            st._notify()
        self._send_json(ok)

    def _kv_delete(self, key: str) -> None:
        st = self.state
        recurse = self._has("recurse")
        if recurse and self._has("cas"):
            raise _HTTPError(
                400,
                "Conflicting flags: "
                + "&".join(f"{k}={v[0]}" for k, v in sorted(self.query.items())),
            )
        if not recurse and key == "":
            raise _HTTPError(400, "Missing key name")
        self._need("key:write", key)
        cas = self._flags_cas("cas")
        with st._cond:
            idx = st._next_index()
            ok = True
            if recurse:
                st._kv.delete_tree(idx, key)
            elif cas is not None:
                ok = st._kv.delete_cas(idx, key, cas)
            else:
                st._kv.delete(idx, key)
            st._notify()
        self._send_json(ok)

    # ---- transactions

    def _r_txn(self) -> None:
        st = self.state
        max_len = max(TXN_MAX_REQ_LEN, KV_MAX_VALUE_SIZE)
        if len(self._body) > max_len:
            raise _HTTPError(413, f"Request body too large, max size: {max_len} bytes")
        try:
            raw = json.loads(self._body.decode("utf-8"))
            if not isinstance(raw, list):
                raise TypeError(
                    f"json: cannot unmarshal {type(raw).__name__} into Go value of type api.TxnOps"
                )
            ops = [self._txn_decode(o) for o in raw]
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise _HTTPError(400, f"Failed to parse body: {exc}") from None
        ops = [o for o in ops if o is not None]  # ops naming no KV/Node/Service/Check are dropped
        if len(ops) > MAX_TXN_OPS:
            raise _HTTPError(
                413, f"Transaction contains too many operations ({len(ops)} > {MAX_TXN_OPS})"
            )
        for kind, op in ops:
            if kind == "KV" and len(op["Value"]) > KV_MAX_VALUE_SIZE:
                raise _HTTPError(
                    413,
                    f'Value for key "{op["Key"]}" is too large ({len(op["Value"])} > {KV_MAX_VALUE_SIZE} bytes)',
                )
        writes = sum(1 for kind, op in ops if kind != "KV" or op["Verb"] not in _KV_READ_VERBS)

        # preCheck: key presence + ACLs, every op, before anything runs.
        errors: list[dict] = []
        for i, (kind, op) in enumerate(ops):
            if kind != "KV":
                continue
            verb = op["Verb"]
            if op["Key"] == "" and verb != "delete-tree":
                errors.append({"OpIndex": i, "What": "Must provide key"})
            elif not self.authorized and verb not in ("get", "get-tree", "get-or-empty"):
                # kvsPreApply (agent/consul/kvs_endpoint.go): gets are filtered on output,
                # check-index/check-session need read, delete-tree write on the whole prefix,
                # every other verb (check-not-exists too) write.
                if verb in ("check-index", "check-session"):
                    ok, perm = self.authz.allows("key:read", op["Key"]), "key:read"
                elif verb == "delete-tree":
                    ok, perm = self.authz.key_write_prefix(op["Key"]), "key:write"
                else:
                    ok, perm = self.authz.allows("key:write", op["Key"]), "key:write"
                if not ok:
                    errors.append({"OpIndex": i, "What": self.authz.denied(perm, op["Key"])})
        if errors:
            self._send_json({"Results": None, "Errors": errors}, 409)
            return

        with st._cond:
            work = st._kv.clone()
            idx = st._index + 1
            results: list[dict] = []
            for i, (kind, op) in enumerate(ops):
                try:
                    if kind != "KV":
                        raise ValueError(
                            f"stand-in: {kind} operations in /v1/txn are not supported"
                        )
                    results.extend(self._txn_kv(work, idx, op))
                except ValueError as exc:
                    errors.append({"OpIndex": i, "What": str(exc)})
            if not self.authorized:  # reads are filtered on the way out (FilterTxnResults)
                results = [r for r in results if self.authz.sees(r.get("KV"))]
            if writes:
                st._index = idx  # the txn went through raft whether or not it committed
                if not errors:
                    st._kv = work
                    st._notify()
        self._extra_headers.update(
            {"X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"} if not writes else {}
        )
        if errors:
            self._send_json({"Results": None, "Errors": errors}, 409)
        else:
            self._send_json({"Results": results, "Errors": None})

    @staticmethod
    def _txn_decode(o: Any) -> tuple[str, dict] | None:
        if not isinstance(o, dict):
            raise TypeError("json: cannot unmarshal into Go value of type api.TxnOp")
        top = {str(k).lower(): v for k, v in o.items()}
        for kind in ("kv", "node", "service", "check"):
            if top.get(kind) is None:
                continue
            if kind != "kv":
                return kind.capitalize(), {}
            kv = _norm(top["kv"])
            val = kv.get("value")
            if val is None:
                value = b""
            elif isinstance(val, str):
                try:
                    value = base64.b64decode(val, validate=True)
                except binascii.Error as exc:
                    raise ValueError(f"failed to decode value: {exc}") from None
            else:
                raise ValueError(f"unexpected value type: {type(val).__name__}")
            try:
                flags = int(kv.get("flags") or 0)
                index = int(kv.get("index") or 0)
            except (TypeError, ValueError):
                raise ValueError("json: cannot unmarshal Flags/Index into uint64") from None
            return "KV", {
                "Verb": str(kv.get("verb") or ""),
                "Key": str(kv.get("key") or ""),
                "Value": value,
                "Flags": flags,
                "Index": index,
                "Session": str(kv.get("session") or ""),
            }
        return None

    @staticmethod
    def _txn_kv(work: _KVStore, idx: int, op: dict) -> list[dict]:
        verb, key = op["Verb"], op["Key"]
        if verb == "set":
            return [
                {"KV": _kv_json(work.set(idx, key, op["Value"], op["Flags"]), with_value=False)}
            ]
        if verb == "cas":
            e = work.cas(idx, key, op["Value"], op["Flags"], op["Index"])
            if e is None:
                raise ValueError(f'failed to set key "{key}", index is stale')
            return [{"KV": _kv_json(e, with_value=False)}]
        if verb == "lock":
            if not op["Session"]:
                raise ValueError("missing session")
            raise ValueError(f'invalid session "{op["Session"]}"')  # no sessions exist here
        if verb == "unlock":
            if not op["Session"]:
                raise ValueError("missing session")
            raise ValueError(
                f'failed to unlock key "{key}", lock isn\'t held, or is held by another session'
            )
        if verb == "get":
            e = work.entries.get(key)
            if e is None:
                raise ValueError(f'key "{key}" doesn\'t exist')
            return [{"KV": _kv_json(e)}]
        if verb == "get-or-empty":
            e = work.entries.get(key)
            if e is None:
                e = {
                    "Key": key,
                    "Value": b"",
                    "Flags": op["Flags"],
                    "Session": op["Session"],
                    "LockIndex": 0,
                    "CreateIndex": 0,
                    "ModifyIndex": op["Index"],
                }
            return [{"KV": _kv_json(e)}]
        if verb == "get-tree":
            return [{"KV": _kv_json(e)} for e in work.list(key)[1]]
        if verb == "check-index":
            e = work.entries.get(key)
            if e is None:
                raise ValueError(f'failed to check index, key "{key}" doesn\'t exist')
            if e["ModifyIndex"] != op["Index"]:
                raise ValueError(
                    f'failed index check for key "{key}", current modify index {e["ModifyIndex"]} != {op["Index"]}'
                )
            return [{"KV": _kv_json(e, with_value=False)}]
        if verb == "check-session":
            e = work.entries.get(key)
            if e is None:
                raise ValueError(f'failed to check session, key "{key}" doesn\'t exist')
            if e["Session"] != op["Session"]:
                raise ValueError(
                    f'failed session check for key "{key}", current session "{e["Session"]}" != "{op["Session"]}"'
                )
            return [{"KV": _kv_json(e, with_value=False)}]
        if verb == "check-not-exists":
            if key in work.entries:
                raise ValueError(f'key "{key}" exists')
            return []
        if verb == "delete":
            work.delete(idx, key)
            return []
        if verb == "delete-tree":
            work.delete_tree(idx, key)
            return []
        if verb == "delete-cas":
            if not work.delete_cas(idx, key, op["Index"]):
                raise ValueError(f'failed to delete key "{key}", index is stale')
            return []
        raise ValueError(f'unknown KV verb "{verb}"')

    # ---- catalog

    def _r_catalog_services(self) -> None:
        st = self.state

        def query() -> tuple[int, dict]:
            rows = [
                st._catalog_service_json(st._nodes[s["Node"]], s)
                for s in sorted(
                    st._services.values(), key=lambda s: (s["Service"], s["Node"], s["ID"])
                )
                if s["Node"] in st._nodes and self._node_meta_ok(st._nodes[s["Node"]])
            ]
            rows = self._acl_filter(self._apply_filter(rows))
            out: dict[str, list[str]] = {}
            for r in rows:
                tags = out.setdefault(r["ServiceName"], [])
                tags.extend(t for t in r["ServiceTags"] if t not in tags)
            return st._tables["services"], {k: sorted(out[k]) for k in sorted(out)}

        self._send_json(self._blocking(query))

    def _service_tags(self) -> list[str]:
        return [t for t in self.query.get("tag", []) if t != ""]

    def _r_catalog_service(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing service name")
        tags = self._service_tags()

        def query() -> tuple[int, list]:
            rows = [
                st._catalog_service_json(st._nodes[s["Node"]], s)
                for s in st._instances(arg, tags)
                if self._node_meta_ok(st._nodes[s["Node"]])
            ]
            return st.service_index(arg, with_checks=False), self._acl_filter(
                self._apply_filter(rows)
            )

        self._send_json(self._blocking(query))

    def _r_catalog_nodes(self) -> None:
        st = self.state

        def query() -> tuple[int, list]:
            rows = [
                st._node_json(st._nodes[k])
                for k in sorted(st._nodes)
                if self._node_meta_ok(st._nodes[k])
            ]
            return st._tables["nodes"], self._acl_filter(self._apply_filter(rows))

        self._send_json(self._blocking(query))

    def _r_catalog_node(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing node name")

        def query() -> tuple[int, Any]:
            idx = max(st._tables["nodes"], st._tables["services"])
            n = st._nodes.get(arg)
            if n is None or not (self.authorized or self.authz.allows("node:read", arg)):
                return idx, None
            svcs = {
                s["ID"]: st._service_json(s)
                for s in sorted(st._services.values(), key=lambda s: s["ID"])
                if s["Node"] == arg
            }
            return idx, {"Node": st._node_json(n), "Services": svcs}

        self._send_json(self._blocking(query))

    def _r_catalog_datacenters(self) -> None:
        self._send_json([self.state.datacenter])

    def _r_catalog_register(self) -> None:
        st = self.state
        body = self._json_body()
        b = _norm(body)
        if not self._token() and isinstance(b.get("writerequest"), dict):
            tok = _norm(b["writerequest"]).get("token") or ""
            if tok and st.acl_enabled:
                try:
                    self.authz = st.acl.resolve(tok)
                except KeyError:
                    raise _HTTPError(403, "ACL not found") from None
                self.authorized = self.authz.management
        node, address = str(b.get("node") or ""), str(b.get("address") or "")
        if not node:
            raise _HTTPError(400, "Must provide node")
        self._need("node:write", node)
        if not address and not b.get("skipnodeupdate"):
            raise _HTTPError(400, "Must provide address if SkipNodeUpdate is not set")
        svc = _norm(b.get("service"))
        checks = [
            _norm(c) for c in ([b["check"]] if b.get("check") else []) + list(b.get("checks") or [])
        ]
        with st._cond:
            idx = st._next_index()
            if not b.get("skipnodeupdate") or node not in st._nodes:
                st._put_node(
                    idx,
                    node,
                    address or st._nodes.get(node, {}).get("Address", ""),
                    b.get("nodemeta"),
                )
            if svc:
                name = str(svc.get("service") or "")
                if not name:
                    raise _HTTPError(400, "Must provide service name with ID")
                sid = str(svc.get("id") or name)
                old = st._services.get((node, sid))
                st._put_service(
                    idx,
                    node=node,
                    sid=sid,
                    name=name,
                    address=str(svc.get("address") or ""),
                    port=int(svc.get("port") or 0),
                    tags=list(svc.get("tags") or []),
                    meta=svc.get("meta"),
                    checks=[],
                    enable_tag_override=bool(svc.get("enabletagoverride")),
                    replace_checks=old is None,
                )
            for c in checks:
                sid = str(c.get("serviceid") or "")
                s = st._services.get((node, sid)) if sid else None
                if sid and s is None:
                    raise _HTTPError(
                        500, f'Unknown service ID "{sid}" for check ID "{c.get("checkid")}"'
                    )
                cid = str(c.get("checkid") or c.get("name") or "")
                status = str(c.get("status") or "critical")
                st._checks[(node, cid)] = st._make_check(
                    idx,
                    node,
                    cid,
                    str(c.get("name") or cid),
                    status,
                    s,
                    notes=str(c.get("notes") or ""),
                )
                st._tables["checks"] = idx
                if s:
                    st._svc_index[s["Service"].lower()] = idx
                else:
                    st._touch_services_on(idx, node)
            st._notify()
        self._send_json(True)

    def _r_catalog_deregister(self) -> None:
        st = self.state
        b = _norm(self._json_body())
        node = str(b.get("node") or "")
        if not node:
            raise _HTTPError(400, "Must provide node")
        self._need("node:write", node)
        with st._cond:
            idx = st._next_index()
            if b.get("serviceid"):
                st._drop_service(idx, node, str(b["serviceid"]))
            elif b.get("checkid"):
                if st._checks.pop((node, str(b["checkid"])), None):
                    st._tables["checks"] = idx
                    st._touch_services_on(idx, node)
            elif node in st._nodes:
                for n, sid in [k for k in st._services if k[0] == node]:
                    st._drop_service(idx, n, sid)
                for key in [k for k in st._checks if k[0] == node]:
                    del st._checks[key]
                del st._nodes[node]
                st._tables["nodes"] = st._tables["checks"] = idx
            st._notify()
        self._send_json(True)

    # ---- health

    def _passing_param(self) -> bool:
        if not self._has("passing"):
            return False
        val = (self._q("passing") or "").lower()
        if val == "":
            return True
        if val in ("1", "t", "true"):
            return True
        if val in ("0", "f", "false"):
            return False
        raise _HTTPError(400, "Invalid value for ?passing")

    def _r_health_service(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing service name")
        tags = self._service_tags()
        passing = self._passing_param()

        def query() -> tuple[int, list]:
            rows = []
            for e in st.check_service_nodes(arg, tags):
                e.pop("_svc")
                if not self._node_meta_ok(e["Node"]):
                    continue
                if passing and any(c["Status"] != "passing" for c in e["Checks"]):
                    continue
                rows.append(e)
            # bexpr runs server-side before ?passing in Consul; order is irrelevant for the result.
            return st.service_index(arg, with_checks=True), self._acl_filter(
                self._apply_filter(rows)
            )

        self._send_json(self._blocking(query))

    def _checks_rows(self, pred: Callable[[dict], bool]) -> list[dict]:
        st = self.state
        rows = [
            st._check_json(st._checks[k])
            for k in sorted(st._checks, key=lambda k: (k[0], k[1]))
            if pred(st._checks[k])
        ]
        return self._acl_filter(self._apply_filter(rows))

    def _r_health_checks(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing service name")
        lname = arg.lower()
        self._send_json(
            self._blocking(
                lambda: (
                    st.service_index(arg, with_checks=True),
                    self._checks_rows(
                        lambda c: c["ServiceName"].lower() == lname and c["ServiceID"] != ""
                    ),
                )
            )
        )

    def _r_health_state(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing check state")
        if arg not in ("any", *HEALTH_STATES):
            raise _HTTPError(400, f"Bad check state: {arg}")  # wording unverified against Consul
        self._send_json(
            self._blocking(
                lambda: (
                    st._tables["checks"],
                    self._checks_rows(lambda c: arg == "any" or c["Status"] == arg),
                )
            )
        )

    def _r_health_node(self, arg: str) -> None:
        st = self.state
        if arg == "":
            raise _HTTPError(400, "Missing node name")
        self._send_json(
            self._blocking(
                lambda: (st._tables["checks"], self._checks_rows(lambda c: c["Node"] == arg))
            )
        )

    # ---- agent

    def _r_agent_self(self) -> None:
        st = self.state
        self._need("agent:read", st.node_name)
        self._send_json(
            {
                "Config": {
                    "Datacenter": st.datacenter,
                    "PrimaryDatacenter": st.datacenter,
                    "NodeName": st.node_name,
                    "NodeID": _node_id(st.node_name),
                    "Revision": "standin",
                    "Server": True,
                    "Version": CONSUL_VERSION,
                },
                "Coord": None,
                "Member": {
                    "Name": st.node_name,
                    "Addr": st.node_address,
                    "Port": 8301,
                    "Tags": {
                        "dc": st.datacenter,
                        "role": "consul",
                        "build": CONSUL_VERSION,
                        "port": "8300",
                    },
                    "Status": 1,
                },
                "Stats": {},
                "Meta": {"consul-network-segment": "", "consul-version": CONSUL_VERSION},
            }
        )

    def _agent_service_json(self, s: dict) -> dict:
        d = {
            "ID": s["ID"],
            "Service": s["Service"],
            "Tags": list(s["Tags"]),
            "Meta": dict(s["Meta"]) if s["Meta"] is not None else {},
            "Port": s["Port"],
            "Address": s["Address"],
        }
        if s["TaggedAddresses"]:
            d["TaggedAddresses"] = json.loads(json.dumps(s["TaggedAddresses"]))
        d.update(
            {
                "Weights": dict(s["Weights"]),
                "EnableTagOverride": s["EnableTagOverride"],
                "Datacenter": self.state.datacenter,
            }
        )
        return d

    def _agent_services(self) -> list[dict]:
        st = self.state
        with st._lock:
            # The server's own "consul" service lives in the catalog, not in the agent's local state.
            # Nomad clients register their allocations' services through the local agent
            # (command/agent/consul/service_client.go), so it lists them too, each with
            # external-source = nomad in its meta.
            return [
                self._agent_service_json(s)
                for s in sorted(st._services.values(), key=lambda s: s["ID"])
                if (s["Node"] == st.node_name and s["ID"] != "consul")
                or (s["Node"], s["ID"]) in st._agent_extra
            ]

    def _r_agent_services(self) -> None:
        rows = self._acl_filter(self._apply_filter(self._agent_services()))
        self._send_json({r["ID"]: r for r in rows})

    def _r_agent_service(self, arg: str) -> None:
        self._need("service:read", arg)
        for r in self._agent_services():
            if r["ID"] == arg:
                self._send_json(r)
                return
        raise _HTTPError(404, f"unknown service ID: {arg}")

    def _r_agent_checks(self) -> None:
        st = self.state
        with st._lock:
            rows = self._checks_rows(
                lambda c: (
                    (c["Node"] == st.node_name and c["CheckID"] != "serfHealth")
                    or (c["Node"], c["ServiceID"]) in st._agent_extra
                )
            )
        self._send_json({r["CheckID"]: r for r in rows})

    def _r_agent_service_register(self) -> None:
        st = self.state
        body = self._json_body()
        if not isinstance(body, dict):
            raise _HTTPError(
                400,
                "Request decode failed: json: cannot unmarshal into Go value of type structs.ServiceDefinition",
            )
        b = _norm(body)
        name = b.get("name")
        if not isinstance(name, str) or not name:
            raise _HTTPError(400, "Missing service name")
        self._need("service:write", name)
        sid = str(b.get("id") or name)
        meta = b.get("meta")
        if meta is not None:
            if not isinstance(meta, dict):
                raise _HTTPError(400, "Request decode failed: Meta must be a map of strings")
            for k, v in meta.items():
                if not re.fullmatch(r"[A-Za-z0-9_-]+", str(k)):
                    raise _HTTPError(
                        400, f"Invalid Service Meta: Key contains invalid characters: {k!r}"
                    )
                if len(str(k)) > 128 or len(str(v)) > 512:
                    raise _HTTPError(400, f"Invalid Service Meta: key or value too long: {k!r}")
        try:
            port = int(b.get("port") or 0)
        except (TypeError, ValueError):
            raise _HTTPError(400, "Request decode failed: Port must be a number") from None
        address = str(b.get("address") or "")
        tags = [str(t) for t in (b.get("tags") or [])]
        raw_checks = ([b["check"]] if isinstance(b.get("check"), dict) and b["check"] else []) + [
            c for c in (b.get("checks") or []) if isinstance(c, dict)
        ]
        svc_stub = {"ID": sid, "Service": name, "Tags": tags}
        checks = []
        with st._cond:
            idx = st._index + 1
            for i, rc in enumerate(raw_checks):
                checks.append(self._agent_check(idx, rc, svc_stub, i, len(raw_checks)))
            weights = _norm(b.get("weights")) or {}
            st._index = idx
            st._put_service(
                idx,
                node=st.node_name,
                sid=sid,
                name=name,
                address=address,
                port=port,
                tags=tags,
                meta={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else None,
                checks=checks,
                weights={
                    "Passing": int(weights.get("passing", 1)),
                    "Warning": int(weights.get("warning", 1)),
                },
                enable_tag_override=bool(b.get("enabletagoverride")),
                replace_checks=self._has("replace-existing-checks")
                and (self._q("replace-existing-checks") or "true").lower() not in ("false", "0"),
            )
            st._notify()
        self._send(200, b"", None)

    def _agent_check(self, idx: int, rc: dict, svc: dict, i: int, n: int) -> dict:
        c = _norm(rc)
        kinds = [
            ("ttl", "ttl"),
            ("http", "http"),
            ("tcp", "tcp"),
            ("grpc", "grpc"),
            ("args", "script"),
            ("scriptargs", "script"),
            ("h2ping", "h2ping"),
            ("udp", "udp"),
            ("aliasservice", "alias"),
            ("dockercontainerid", "docker"),
            ("osservice", "os_service"),
        ]
        ctype = next((t for k, t in kinds if c.get(k)), "")
        interval = str(c.get("interval") or "")
        needs_interval = ctype in (
            "http",
            "tcp",
            "grpc",
            "script",
            "h2ping",
            "udp",
            "docker",
            "os_service",
        )
        try:
            iv = parse_go_duration(interval) if interval else 0.0
        except ValueError:
            raise _HTTPError(400, f"Request decode failed: invalid duration {interval!r}") from None
        if ctype == "ttl" and iv > 0:
            raise _HTTPError(400, "Invalid check: Interval and TTL cannot both be specified")
        if needs_interval and iv <= 0:
            raise _HTTPError(
                400,
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks",
            )
        if not ctype:
            raise _HTTPError(400, "Invalid check: TTL must be > 0 for TTL checks")
        status = str(c.get("status") or "")
        if status and status not in HEALTH_STATES:
            raise _HTTPError(400, "Status for checks must 'passing', 'warning', 'critical'")
        cid = str(c.get("checkid") or c.get("id") or "")
        if not cid:
            cid = f"service:{svc['ID']}" + (f":{i + 1}" if n > 1 else "")
        definition = {
            k: v
            for k, v in rc.items()
            if k.lower() not in ("status", "name", "id", "checkid", "notes")
        }
        # Checks start critical unless Status says otherwise; HTTP/TCP checks are not run here.
        return self.state._make_check(
            idx,
            self.state.node_name,
            cid,
            str(c.get("name") or f"Service '{svc['Service']}' check"),
            status or "critical",
            svc,
            notes=str(c.get("notes") or ""),
            ctype=ctype,
            interval=interval,
            timeout=str(c.get("timeout") or ""),
            definition=definition,
        )

    def _r_agent_service_deregister(self, arg: str) -> None:
        st = self.state
        with st._cond:
            svc = st._services.get((st.node_name, arg))
            node = st.node_name
            if svc is None:  # an instance a Nomad client registered through this agent
                node = next((n for n, i in st._agent_extra if i == arg), node)
                svc = st._services.get((node, arg))
            self._need("service:write", svc["Service"] if svc else arg)
            if svc is None or arg == "consul":
                raise _HTTPError(
                    404,
                    f'Unknown service ID "{arg}". Ensure that the service ID is passed, not the service name.',
                )
            st._drop_service(st._next_index(), node, arg)
            st._notify()
        self._send(200, b"", None)

    def _r_agent_service_maintenance(self, arg: str) -> None:
        """agent/agent_endpoint.go AgentServiceMaintenance: `enable` must be present and a Go
        bool (400 otherwise); vetServiceUpdateWithAuthorizer: an unknown ID is 404, a known one
        needs service:write on its name; enable=false on a service not in maintenance changes
        nothing (agent.go DisableServiceMaintenance). Maintenance mode itself (a critical
        `_service_maintenance:<id>` check) is not modelled: enable=true is a 501."""
        st = self.state
        if not self._has("enable"):
            raise _HTTPError(400, "Missing value for enable")
        raw = self._q("enable") or ""
        if raw not in _GO_BOOLS:
            raise _HTTPError(400, f'Invalid value for enable: "{raw}"')
        with st._cond:
            svc = st._services.get((st.node_name, arg))
            if svc is None:
                node = next((n for n, i in st._agent_extra if i == arg), None)
                svc = st._services.get((node, arg)) if node else None
            if svc is None or arg == "consul":
                raise _HTTPError(
                    404,
                    f'Unknown service ID "{arg}". Ensure that the service ID is passed, not the service name.',
                )
            self._need("service:write", svc["Service"])
        if _GO_BOOLS[raw]:
            raise _HTTPError(501, "stand-in: service maintenance mode is not modelled")
        self._send(200, b"", None)

    def _r_agent_check_ttl(self, verb: str, arg: str) -> None:
        st = self.state
        self._need("agent:write", st.node_name)
        if verb == "update":
            b = _norm(self._json_body())
            status, output = str(b.get("status") or ""), str(b.get("output") or "")
            if status not in HEALTH_STATES:
                raise _HTTPError(400, f'Invalid check status: "{status}"')
        else:
            status = {"pass": "passing", "warn": "warning", "fail": "critical"}[verb]
            output = self._q("note") or ""
        with st._cond:
            key = (st.node_name, arg)
            chk = st._checks.get(key)
            if chk is None or chk["Type"] != "ttl":
                raise _HTTPError(500, f'CheckID "{arg}" does not have associated TTL')
            if st._set_check_status(st._index + 1, key, status, output):
                st._index += 1
                st._notify()
        self._send(200, b"", None)

    # ---- status

    # ---- sessions (agent/session_endpoint.go)

    def _r_session_create(self) -> None:
        body = self._json_body() if self._body.strip() else {}
        node = (_norm(body).get("node") if isinstance(body, dict) else None) or self.state.node_name
        self._need("session:write", node)
        self._send_json({"ID": self.state.session_create(body if isinstance(body, dict) else {})})

    def _r_session_destroy(self, arg: str) -> None:
        sess = self.state.session_json(arg)
        if sess is not None:
            self._need("session:write", sess["Node"])
        self.state.session_destroy(arg)
        self._send_json(True)

    def _r_session_renew(self, arg: str) -> None:
        sess = self.state.session_json(arg)
        if sess is not None:
            self._need("session:write", sess["Node"])
        if self.state.session_renew(arg) is None:
            raise _HTTPError(404, f"Session id '{arg}' not found")
        self._send_json([self.state.session_json(arg)])

    def _r_session_info(self, arg: str) -> None:
        sess = self.state.session_json(arg)
        if sess is not None:
            self._need("session:read", sess["Node"])
        self._set_meta(self.state.index)
        self._send_json([sess] if sess else [])

    def _r_status_leader(self) -> None:
        self._send_json(f"{self.state.node_address}:8300")

    def _r_status_peers(self) -> None:
        self._send_json([f"{self.state.node_address}:8300"])
