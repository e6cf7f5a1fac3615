"""Fault injection shared by the stand-in's HTTP servers (Nomad and Consul).

Every request to either server passes through `Faults.hook(handler, service)` before it is
answered: the hook counts it, sleeps for the configured latency, and may answer in its place
(an injected status, an ACL refusal) or drop the connection with a TCP reset.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

SERVICES = ("nomad", "consul")
KINDS = ("status", "reset", "latency", "acl")


@dataclass
class Rule:
    """One injected fault. Matching calls are counted; `nth`/`every`/`fraction`/`times` pick
    which of them actually fail."""

    service: str = "any"
    kind: str = "status"
    status: int = 500
    body: str | None = None
    method: str | None = None
    path_prefix: str | None = None
    nth: int | None = None
    every: int | None = None
    fraction: float | None = None
    times: int | None = None
    delay: float = 0.0
    matched: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.service not in ("any", service):
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_prefix and not path.startswith(self.path_prefix))

    def to_dict(self) -> dict:
        return asdict(self)


class Faults:
    """Latency, injected errors, resets and call counters for the stand-in servers.

    `calls` is a Counter keyed by service ("nomad", "consul") and by "service METHOD"
    ("nomad POST"); `log` keeps (service, method, path) of every request in order.
    """

    def __init__(self, seed: int = 0) -> None:
        self.latency: dict[str, float] = {s: 0.0 for s in SERVICES}
        self.rules: list[Rule] = []
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._rng = random.Random(f"faults-{seed}")
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------
    def add(
        self,
        service: str = "any",
        kind: str = "status",
        status: int = 500,
        body: str | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
        nth: int | None = None,
        every: int | None = None,
        fraction: float | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> Rule:
        if service not in ("any", *SERVICES):
            raise ValueError(f"unknown service {service!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")
        if nth is not None and nth < 1:
            raise ValueError("nth is 1-based")
        rule = Rule(
            service,
            kind,
            int(status),
            body,
            method,
            path_prefix,
            nth,
            every,
            fraction,
            times,
            float(delay),
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and latency setting (call counters are kept)."""
        with self._lock:
            self.rules.clear()
            for s in SERVICES:
                self.latency[s] = 0.0

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.log.clear()

    def count(self, service: str, method: str | None = None, path_prefix: str = "") -> int:
        """Requests seen by `service`, optionally only one method and path prefix."""
        with self._lock:
            return sum(
                1
                for s, m, p in self.log
                if s == service
                and (method is None or m == method.upper())
                and p.startswith(path_prefix)
            )

    # -- the hook --------------------------------------------------------------------------
    def hook(self, handler, service: str) -> bool:
        """Called by a request handler before it answers. True = already answered/dropped."""
        method = handler.command.upper()
        path = handler.path
        delay = 0.0
        fire: Rule | None = None
        with self._lock:
            self.calls[service] += 1
            self.calls[f"{service} {method}"] += 1
            self.log.append((service, method, path))
            delay += self.latency.get(service, 0.0)
            for rule in self.rules:
                if not rule.matches(service, method, path):
                    continue
                rule.matched += 1
                if not self._due(rule):
                    continue
                rule.fired += 1
                if rule.kind == "latency":
                    delay += rule.delay
                elif fire is None:
                    fire = rule
        if delay > 0:
            time.sleep(delay)
        if fire is None:
            return False
        if fire.kind == "reset":
            _reset(handler)
            return True
        if fire.kind == "acl":
            body = fire.body if fire.body is not None else "Permission denied"
            _answer(handler, 403, body)
            return True
        body = fire.body if fire.body is not None else f"standin: injected fault ({fire.status})"
        _answer(handler, fire.status, body)
        return True

    def _due(self, rule: Rule) -> bool:
        if rule.times is not None and rule.fired >= rule.times:
            return False
        if rule.nth is not None and rule.matched != rule.nth:
            return False
        if rule.every is not None and rule.matched % rule.every != 0:
            return False
        return not (rule.fraction is not None and self._rng.random() >= rule.fraction)


def _answer(handler, status: int, body: str) -> None:
    data = body.encode()
    # Drain the request body so the client is not left writing into a closed pipe.
    length = int(handler.headers.get("Content-Length") or 0)
    if length:
        handler.rfile.read(length)
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _reset(handler) -> None:
    """Abort the connection: SO_LINGER 0 makes close() send a RST instead of a FIN."""
    handler.close_connection = True
    sock = handler.request
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    mark = getattr(handler.server, "mark_reset", None)
    if mark is not None:
        mark(sock)  # the server then closes it without a graceful shutdown()
    else:
        try:
            sock.close()
        except OSError:
            pass
