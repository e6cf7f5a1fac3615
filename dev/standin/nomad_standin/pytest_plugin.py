"""pytest fixtures for a local cluster: `cluster` and `standin_factory`.

Both first remove every NOMAD_* and CONSUL_* variable from the environment (python-nomad and the
consul clients read NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN behind the
caller's back), so a developer's shell can never send tests to a real cluster.

`cluster` runs a fresh stand-in per test. With NOMADGEN_TEST_REAL=1 it uses the real agents
named by the NOMAD_ADDR and CONSUL_HTTP_ADDR seen before clearing, which must be loopback
addresses (see dev/README.md for `make dev-up` with real agents).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from . import nomadsched
from .faults import Faults
from .server import StandIn

REAL_FLAG = "NOMADGEN_TEST_REAL"
CLEARED_PREFIXES = ("NOMAD_", "CONSUL_")
# Fast clocks for the default fixture: min_healthy_time 10s -> 0.2s, progress_deadline 10m -> 12s.
DEFAULT_TIME_SCALE = 0.02


@dataclass
class Cluster:
    """Where a test's cluster is. `standin` and `faults` are None against real agents."""

    backend: str  # "standin" | "real"
    nomad_addr: str  # http://127.0.0.1:PORT
    consul_addr: str  # http://127.0.0.1:PORT
    dns_host: str
    dns_port: int
    standin: StandIn | None = None
    faults: Faults | None = None
    nomad_token: str | None = None
    consul_token: str | None = None
    zones: tuple[str, ...] = field(default=("zone-a", "zone-b", "zone-c"))

    @property
    def nomad_host(self) -> str:
        return urlsplit(self.nomad_addr).hostname or "127.0.0.1"

    @property
    def nomad_port(self) -> int:
        return urlsplit(self.nomad_addr).port or 4646

    @property
    def consul_host(self) -> str:
        return urlsplit(self.consul_addr).hostname or "127.0.0.1"

    @property
    def consul_port(self) -> int:
        return urlsplit(self.consul_addr).port or 8500

    def env(self) -> dict[str, str]:
        """Client environment for this cluster (for CLI tests that read it on purpose)."""
        out = {
            "NOMAD_ADDR": self.nomad_addr,
            "CONSUL_HTTP_ADDR": f"{self.consul_host}:{self.consul_port}",
            "NOMADGEN_DNS": f"{self.dns_host}:{self.dns_port}",
        }
        if self.nomad_token:
            out["NOMAD_TOKEN"] = self.nomad_token
        if self.consul_token:
            out["CONSUL_HTTP_TOKEN"] = self.consul_token
        return out

    def nomad_client(self, **kwargs):
        """A python-nomad client bound to this cluster (arguments explicit, no env reads)."""
        import nomad

        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("token", self.nomad_token)
        return nomad.Nomad(host=self.nomad_host, port=self.nomad_port, verify=False, **kwargs)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _addr_host_port(value: str, default_port: int) -> tuple[str | None, int]:
    """NOMAD_ADDR is a URL, CONSUL_HTTP_ADDR usually host:port; accept both."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    return parts.hostname, parts.port or default_port


def real_cluster(environ: dict[str, str]) -> Cluster:
    """The real-agent cluster described by `environ`; ValueError with the reason if unusable."""
    nomad_addr = environ.get("NOMAD_ADDR", "")
    consul_addr = environ.get("CONSUL_HTTP_ADDR", "")
    if not nomad_addr or not consul_addr:
        raise ValueError(
            f"{REAL_FLAG}=1 needs NOMAD_ADDR and CONSUL_HTTP_ADDR "
            "(run `make dev-up` and eval its exports)"
        )
    nhost, nport = _addr_host_port(nomad_addr, 4646)
    chost, cport = _addr_host_port(consul_addr, 8500)
    for name, host, value in (
        ("NOMAD_ADDR", nhost, nomad_addr),
        ("CONSUL_HTTP_ADDR", chost, consul_addr),
    ):
        if not is_loopback(host):
            raise ValueError(
                f"{REAL_FLAG}=1 refuses {name}={value}: tests only run against a "
                "cluster on this machine (127.0.0.1, ::1 or localhost)"
            )
    dns = environ.get("NOMADGEN_DNS", "127.0.0.1:8600")
    dhost, dport = _addr_host_port(dns, 8600)
    if not is_loopback(dhost):
        raise ValueError(f"{REAL_FLAG}=1 refuses NOMADGEN_DNS={dns}: not a loopback address")
    return Cluster(
        backend="real",
        nomad_addr=f"http://{nhost}:{nport}",
        consul_addr=f"http://{chost}:{cport}",
        dns_host=dhost or "127.0.0.1",
        dns_port=dport,
        nomad_token=environ.get("NOMAD_TOKEN") or None,
        consul_token=environ.get("CONSUL_HTTP_TOKEN") or None,
    )


def clear_cluster_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Remove NOMAD_* / CONSUL_* for this test; return what was there."""
    seen = {k: v for k, v in os.environ.items() if k.startswith(CLEARED_PREFIXES)}
    for key in seen:
        monkeypatch.delenv(key, raising=False)
    return seen


def _real_requested() -> bool:
    return os.environ.get(REAL_FLAG, "").strip().lower() in ("1", "true", "yes")


def pytest_report_header(config) -> str:
    if _real_requested():
        return (
            f"nomadgen cluster backend: real agents ({REAL_FLAG}=1, "
            f"NOMAD_ADDR={os.environ.get('NOMAD_ADDR', '<unset>')}, "
            f"CONSUL_HTTP_ADDR={os.environ.get('CONSUL_HTTP_ADDR', '<unset>')})"
        )
    return f"nomadgen cluster backend: stand-in (set {REAL_FLAG}=1 for real agents)"


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch):
    seen = clear_cluster_env(monkeypatch)
    if _real_requested():
        try:
            real = real_cluster(seen)
        except ValueError as exc:
            pytest.fail(str(exc), pytrace=False)
        print(f"cluster backend: real (nomad {real.nomad_addr}, consul {real.consul_addr})")
        yield real
        return
    standin = StandIn(lifetime=600, time_scale=DEFAULT_TIME_SCALE).start()
    try:
        print(
            f"cluster backend: standin (nomad {standin.nomad_addr}, "
            f"consul {standin.consul_addr}, dns {standin.dns_host}:{standin.dns_port}; "
            f"scheduler {'nomad-sched' if nomadsched.binary() else 'stand-in engine'})"
        )
        yield Cluster(
            backend="standin",
            nomad_addr=standin.nomad_addr,
            consul_addr=standin.consul_addr,
            dns_host=standin.dns_host,
            dns_port=standin.dns_port,
            standin=standin,
            faults=standin.faults,
            zones=standin.zones,
        )
        _no_sched_errors(standin)
    finally:
        standin.stop()


def _no_sched_errors(standin: StandIn) -> None:
    """nomad-sched refusing an evaluation is a stand-in bug: its engine decided instead."""
    errors = standin.nomad.sched_errors
    if errors:
        pytest.fail(
            "nomad-sched failed, the stand-in's engine decided instead:\n" + "\n".join(errors),
            pytrace=False,
        )


@pytest.fixture
def standin_factory(monkeypatch: pytest.MonkeyPatch):
    """`make(**StandIn options)` -> a started StandIn; every one is stopped after the test.
    Always a stand-in (never real agents): for tests of options such as ACLs or zones."""
    clear_cluster_env(monkeypatch)
    made: list[StandIn] = []

    def make(**options) -> StandIn:
        options.setdefault("lifetime", 600)
        options.setdefault("time_scale", DEFAULT_TIME_SCALE)
        standin = StandIn(**options).start()
        made.append(standin)
        return standin

    try:
        yield make
        for standin in made:
            _no_sched_errors(standin)
    finally:
        for standin in made:
            standin.stop()
