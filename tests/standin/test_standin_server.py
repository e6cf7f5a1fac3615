"""The stand-in's HTTP servers behave like Go's at the socket: replies are not held back by
Nagle's algorithm, and one StandIn runs one set of servers."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from nomad_standin.server import LOOPBACK, StandIn, StandinHTTPServer


def _nodelay_of_accepted(server: ThreadingHTTPServer) -> int:
    """TCP_NODELAY on the server's side of a connection a client just made."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server.RequestHandlerClass = Handler
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        host, port = server.server_address[:2]
        assert requests.get(f"http://{host}:{port}/", timeout=10).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)
    return seen[0]


def test_replies_are_sent_without_waiting_for_the_clients_ack() -> None:
    # Go turns Nagle off on every TCP connection; a Python server leaves it on, and a reply
    # written as headers, then body, waits for the client's delayed ACK (40 ms on Linux).
    assert _nodelay_of_accepted(StandinHTTPServer((LOOPBACK, 0), BaseHTTPRequestHandler)) == 1


def test_known_bad_a_plain_python_server_leaves_nagle_on() -> None:
    assert _nodelay_of_accepted(ThreadingHTTPServer((LOOPBACK, 0), BaseHTTPRequestHandler)) == 0


def test_both_services_of_a_running_standin_answer_without_nagle() -> None:
    with StandIn(lifetime=60) as s:
        for addr in (s.nomad_addr, s.consul_addr):
            with requests.Session() as http:
                path = "/v1/status/leader"
                assert http.get(addr + path, timeout=10).status_code == 200
                # the connection the session keeps is the one the server accepted
                servers = s._servers  # noqa: SLF001
                accepted = [c for srv in servers for c in list(srv._open)]  # noqa: SLF001
                assert accepted
                assert all(
                    c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                    for c in accepted
                    if c.fileno() != -1
                )


def test_a_standin_is_started_once() -> None:
    s = StandIn(lifetime=60).start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            s.start()
        with pytest.raises(RuntimeError, match="already started"):
            s.__enter__()
    finally:
        s.stop()
