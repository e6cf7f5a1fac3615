"""`StandIn`: a Nomad + Consul + Consul-DNS stand-in cluster on 127.0.0.1, in one process.

    with StandIn(zones=("zone-a", "zone-b", "zone-c")) as cluster:
        nomad.Nomad(host="127.0.0.1", port=cluster.nomad_port)

Everything binds to loopback only, runs on daemon threads and stops by itself after `lifetime`
seconds, so a forgotten stand-in never outlives the test run that made it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from typing import Self

from . import consul as consul_mod
from . import taskview
from .faults import Faults
from .nomad import NomadError, NomadState, make_handler

log = logging.getLogger("standin")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


LOOPBACK = "127.0.0.1"


class StandinHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that can abort a connection (RST) for an injected "reset" fault."""

    daemon_threads = True
    allow_reuse_address = True
    # Go's net.Listen asks for the kernel's somaxconn (net/sock_linux.go maxListenerBacklog);
    # socketserver's default of 5 makes a burst of 16 concurrent connections on a busy machine
    # lose SYNs, and the client's SYN retries (1 s, 2 s, 4 s ...) exceed its request timeout.
    request_queue_size = 4096

    def __init__(self, *args, **kwargs) -> None:
        self._reset: set[int] = set()
        self._open: set[socket.socket] = set()
        self._reset_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def get_request(self):
        request, addr = super().get_request()
        # Go's net package turns Nagle off on every TCP connection (net/tcpsock_posix.go
        # newTCPConn: setNoDelay(fd, true)). With it on, a reply written as headers then body
        # waits for the client's delayed ACK: 40 ms on every request the real servers lack.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._reset_lock:
            self._open.add(request)
        return request, addr

    def close_connections(self) -> None:
        """End idle keep-alive connections so no handler thread outlives the stand-in."""
        with self._reset_lock:
            open_now = list(self._open)
        for request in open_now:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def mark_reset(self, sock: socket.socket) -> None:
        with self._reset_lock:
            self._reset.add(id(sock))

    def shutdown_request(self, request) -> None:
        with self._reset_lock:
            abort = id(request) in self._reset
            self._reset.discard(id(request))
            self._open.discard(request)
        if abort:
            # No shutdown(SHUT_WR): with SO_LINGER 0 the close below sends RST, not FIN.
            request.close()
            return
        super().shutdown_request(request)


class StandIn:
    """A local cluster: Nomad HTTP API, Consul HTTP API and Consul DNS on ephemeral ports."""

    def __init__(
        self,
        *,
        zones=("zone-a", "zone-b", "zone-c"),
        nodes_per_zone: int = 1,
        seed: int = 0,
        nomad_acl_token: str | None = None,
        consul_acl_tokens: set[str] | None = None,
        start_delay: float = 0.0,
        lifetime: float = 900.0,
        time_scale: float = 1.0,
        nomad_port: int = 0,
        consul_port: int = 0,
        dns_port: int = 0,
        tick: float = 0.02,
        eval_delay: float = 0.05,
    ) -> None:
        self.zones = tuple(zones)
        self.lifetime = lifetime
        self.nomad_acl_token = nomad_acl_token
        self._ports = (nomad_port, consul_port, dns_port)
        self._tick = tick
        self.faults = Faults(seed)
        self.consul = consul_mod.ConsulState(acl_tokens=set(consul_acl_tokens or ()) or None)
        self.nomad = NomadState(
            consul=self.consul,
            zones=self.zones,
            nodes_per_zone=nodes_per_zone,
            seed=seed,
            start_delay=start_delay,
            time_scale=time_scale,
            eval_delay=eval_delay,
        )
        self.dns = None
        self._servers: list[StandinHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._timer: threading.Timer | None = None
        self.nomad_addr = self.consul_addr = ""
        self.nomad_port = self.consul_port = 0
        self.dns_host = LOOPBACK
        self.dns_port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StandIn:
        if self._servers:  # a second set of servers, workers and tickers would run unseen
            raise RuntimeError("this stand-in is already started")
        nomad_port, consul_port, dns_port = self._ports
        nomad_handler = make_handler(
            self.nomad, hook=self.faults.hook, acl_token=self.nomad_acl_token, control=self._control
        )
        consul_handler = consul_mod.make_handler(self.consul, hook=self.faults.hook)
        nomad_srv = StandinHTTPServer((LOOPBACK, nomad_port), nomad_handler)
        consul_srv = StandinHTTPServer((LOOPBACK, consul_port), consul_handler)
        self._servers = [nomad_srv, consul_srv]
        for srv, name in ((nomad_srv, "nomad"), (consul_srv, "consul")):
            t = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"standin-{name}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)
        self.nomad_port = nomad_srv.server_address[1]
        self.consul_port = consul_srv.server_address[1]
        self.nomad_addr = f"http://{LOOPBACK}:{self.nomad_port}"
        self.consul_addr = f"http://{LOOPBACK}:{self.consul_port}"
        from . import dns as dns_mod  # late: everything else works without dnspython

        self.dns = dns_mod.DNSServer(self.consul, host=LOOPBACK, port=dns_port).start()
        self.dns_host, self.dns_port = self.dns.host, self.dns.port
        self._threads.extend(self.nomad.start_workers(self._stopped))
        ticker = threading.Thread(target=self._run_ticker, name="standin-ticker", daemon=True)
        ticker.start()
        self._threads.append(ticker)
        if self.lifetime:
            self._timer = threading.Timer(self.lifetime, self._expire)
            self._timer.daemon = True
            self._timer.start()
        log.info(
            "stand-in up: nomad %s consul %s dns %s:%s",
            self.nomad_addr,
            self.consul_addr,
            self.dns_host,
            self.dns_port,
        )
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
        # Shut everything down in parallel: each waits up to one poll interval.
        stops = [srv.shutdown for srv in self._servers] + ([self.dns.stop] if self.dns else [])
        closers = [threading.Thread(target=fn, daemon=True) for fn in stops]
        for t in closers:
            t.start()
        for t in closers:
            t.join(timeout=2)
        for srv in self._servers:
            srv.server_close()
            srv.close_connections()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)

    @property
    def running(self) -> bool:
        return bool(self._servers) and not self._stopped.is_set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _expire(self) -> None:
        log.warning("stand-in lifetime (%ss) is over: stopping", self.lifetime)
        threading.Thread(target=self.stop, daemon=True).start()

    def _run_ticker(self) -> None:
        while not self._stopped.wait(self._tick):
            try:
                self.nomad.tick()
            except Exception:  # a bug in the clients' simulation must not kill the ticker
                log.exception("stand-in tick failed")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers for tests ---------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment a client of this cluster would use."""
        return {
            "NOMAD_ADDR": self.nomad_addr,
            "CONSUL_HTTP_ADDR": f"{LOOPBACK}:{self.consul_port}",
            "NOMADGEN_DNS": f"{self.dns_host}:{self.dns_port}",
        }

    def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.02):
        """Poll `predicate()` until it returns something truthy; that value, else TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    # -- network, task view, ACL helpers (dev/standin/nomad_standin/network.py, taskview.py, acl.py) -------
    def reach(self, address: str, source: tuple[str, str] | None = None):
        """The running task `address` ("host:port") reaches — an Endpoint (alloc_id, task,
        label, job_id, group, node, port) — or None. `source` = (alloc ID, task name) it is
        dialled from (for 127.0.0.1 inside a task); None = from another machine. A name is
        resolved through the stand-in's Consul DNS (A records); it reaches only if every
        address it resolves to does (the first endpoint is returned)."""
        host, _, port = address.rpartition(":")
        if host and host != "localhost" and not _is_ip(host.strip("[]")):
            hits = [self.nomad.network.reach(f"{ip}:{port}", source) for ip in self.resolve(host)]
            return hits[0] if hits and all(hits) else None
        return self.nomad.network.reach(address, source)

    def resolve(self, name: str) -> list[str]:
        """A records of `name` from the stand-in's Consul DNS ([] if none)."""
        import dns.exception
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.dns_host]
        resolver.port = self.dns_port
        try:
            return sorted(r.address for r in resolver.resolve(name, "A", lifetime=5))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout as exc:
            raise TimeoutError(f"stand-in DNS did not answer for {name}") from exc

    def add_external(self, address: str, name: str) -> None:
        """Declare a listener outside Nomad (an external service), so reach() finds it."""
        self.nomad.network.add_external(address, name)

    def network_map(self) -> list[dict]:
        """Every published port: node, host_ip, host_port -> alloc_id, netns, port, label."""
        with self.nomad.lock:
            return [asdict(m) for m in self.nomad.network.mappings()]

    def task_view(self, alloc_id: str, task: str) -> dict:
        """The task's environment and rendered templates (see dev/standin/nomad_standin/taskview.py)."""
        return taskview.task_view(self.nomad, alloc_id, task)

    def nomad_token(
        self, policies=(), *, rules: dict[str, str] | None = None, name: str = ""
    ) -> str:
        """A Nomad token (secret) with these policies; `rules` {name: HCL} creates them first.
        Needs ACLs on (`nomad_acl_token=`)."""
        for pname, text in (rules or {}).items():
            self.nomad.acl.apply_policy(pname, text)
        names = list(policies) + [p for p in (rules or {}) if p not in policies]
        return self.nomad.acl.create_token(policies=names, name=name)["SecretID"]

    def consul_token(self, rules: str) -> str:
        """A Consul token (secret) with these rules. Needs ACLs on (`consul_acl_tokens=`)."""
        return self.consul.acl.add_token(rules)

    # -- /_standin/ control API (for a stand-in running in another process) --------------------
    def _control(self, handler, method: str, path: str, query: dict, body: bytes):
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            return 400, {"error": f"bad JSON: {exc}"}
        parts = [p for p in path.split("/") if p][1:]
        try:
            if parts == ["faults"] and method == "POST":
                rule = self.faults.add(**data)
                return 200, {"ok": True, "rule": rule.to_dict()}
            if parts == ["faults"] and method == "DELETE":
                self.faults.clear()
                return 200, {"ok": True}
            if parts == ["faults"] and method == "GET":
                return 200, {
                    "rules": [r.to_dict() for r in self.faults.rules],
                    "latency": self.faults.latency,
                }
            if parts == ["latency"] and method in ("POST", "PUT"):
                for service, seconds in data.items():
                    self.faults.latency[service] = float(seconds)
                return 200, {"ok": True, "latency": self.faults.latency}
            if parts == ["calls"] and method == "GET":
                return 200, {
                    "calls": dict(self.faults.calls),
                    "log": [list(x) for x in self.faults.log],
                }
            if parts == ["calls"] and method == "DELETE":
                self.faults.reset_calls()
                return 200, {"ok": True}
            if len(parts) == 2 and parts[0] == "never_healthy" and method in ("POST", "PUT"):
                self.nomad.never_healthy(parts[1], on=bool(data.get("on", True)))
                return 200, {"ok": True}
            if len(parts) == 2 and parts[0] in ("drop_node", "restore_node") and method == "POST":
                getattr(self.nomad, parts[0])(parts[1])
                return 200, {"ok": True}
            if parts == ["reach"] and method == "GET":
                source = (query["alloc"], query["task"]) if query.get("alloc") else None
                hit = self.reach(query["address"], source)
                return 200, {"reaches": asdict(hit) if hit else None}
            if parts == ["network"] and method == "GET":
                return 200, {"mappings": self.network_map()}
            if len(parts) == 3 and parts[0] == "task" and method == "GET":
                return 200, self.task_view(parts[1], parts[2])
            if parts == ["nomad_policy"] and method in ("POST", "PUT"):
                policy = self.nomad.acl.apply_policy(
                    data["name"],
                    data["rules"],
                    description=data.get("description", ""),
                    job_acl=data.get("job_acl"),
                )
                return 200, {"ok": True, "policy": policy}
            if parts == ["nomad_token"] and method in ("POST", "PUT"):
                return 200, {
                    "secret": self.nomad_token(
                        data.get("policies", ()), rules=data.get("rules"), name=data.get("name", "")
                    )
                }
            if parts == ["consul_token"] and method in ("POST", "PUT"):
                return 200, {"secret": self.consul_token(data["rules"])}
            if len(parts) == 2 and parts[0] == "drain_node" and method == "POST":
                self.nomad.drain_node(parts[1])
                return 200, {"ok": True}
            if len(parts) == 2 and parts[0] == "host_volume" and method == "POST":
                self.nomad.add_host_volume(parts[1], data["name"], data.get("path", ""))
                return 200, {"ok": True}
            if parts == ["csi_volume"] and method in ("PUT", "POST"):
                self.nomad.create_csi_volume(data["id"])
                return 200, {"ok": True}
            if len(parts) == 2 and parts[0] == "data" and method in ("PUT", "POST"):
                self.nomad.data_write(parts[1], data.get("key", "marker"), str(data["value"]))
                return 200, {"ok": True}
            if len(parts) == 2 and parts[0] == "data" and method == "GET":
                return 200, self.nomad.data_read(parts[1])
            if parts == ["info"] and method == "GET":
                return 200, {
                    "env": self.env(),
                    "zones": list(self.zones),
                    "nodes": [
                        {
                            "Name": n["Name"],
                            "ID": n["ID"],
                            "Status": n["Status"],
                            "Address": n["Address"],
                            "Datacenter": n["Datacenter"],
                        }
                        for n in self.nomad.nodes
                    ],
                }
        except (TypeError, ValueError, KeyError, NomadError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": f"unknown control endpoint {method} {path}"}
