"""TLS is verified by default: the stand-in's Nomad API served over HTTPS with a throw-away CA."""

from __future__ import annotations

import ssl
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from nomad_standin.nomad import make_handler
from typer.testing import CliRunner

from nomadgen.cli import app

SEED = str(Path(__file__).resolve().parents[1] / "examples" / "dockland.json")


@pytest.fixture
def https_nomad(standin_factory, tmp_path):
    s = standin_factory()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(s.nomad))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield s, f"https://127.0.0.1:{server.server_address[1]}", str(ca_file)
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_certificate_is_refused_with_a_hint(https_nomad):
    s, addr, _ = https_nomad
    res = CliRunner().invoke(
        app, ["plan", SEED], env={"NOMAD_ADDR": addr, "CONSUL_HTTP_ADDR": s.consul_addr}
    )
    assert res.exit_code == 255
    assert "TLS certificate was not accepted: set NOMAD_CACERT" in res.stderr
    assert "Traceback" not in res.output


def test_the_right_ca_is_accepted(https_nomad):
    s, addr, ca = https_nomad
    env = {"NOMAD_ADDR": addr, "NOMAD_CACERT": ca, "CONSUL_HTTP_ADDR": s.consul_addr}
    res = CliRunner().invoke(app, ["plan", SEED, "--json"], env=env)
    assert res.exit_code == 1, res.output  # changes to make: it talked to Nomad over TLS
    res = CliRunner().invoke(
        app,
        ["plan", SEED, "--nomad-ca-cert", ca],
        env={"NOMAD_ADDR": addr, "CONSUL_HTTP_ADDR": s.consul_addr},
    )
    assert res.exit_code == 1, res.output


def test_skip_verify_is_explicit_and_warned(https_nomad):
    s, addr, _ = https_nomad
    env = {"NOMAD_ADDR": addr, "NOMAD_SKIP_VERIFY": "true", "CONSUL_HTTP_ADDR": s.consul_addr}
    res = CliRunner().invoke(app, ["plan", SEED], env=env)
    assert res.exit_code == 1, res.output
    # Once, in nomadgen's words (urllib3 would warn on every request).
    assert res.stderr.count("warning: TLS certificates of Nomad at https://") == 1
    assert "InsecureRequestWarning" not in res.stderr


def test_missing_ca_file_is_a_config_error(https_nomad):
    s, addr, _ = https_nomad
    res = CliRunner().invoke(
        app, ["plan", SEED], env={"NOMAD_ADDR": addr, "NOMAD_CACERT": "/no/ca.pem"}
    )
    assert res.exit_code == 255 and "Nomad CA certificate not found: /no/ca.pem" in res.stderr


@pytest.fixture
def https_consul(standin_factory, tmp_path):
    try:  # the stand-in as a package (nomad_standin), or where it lived before (dev.standin)
        from nomad_standin.consul import make_handler as consul_handler
    except ImportError:
        from dev.standin.consul import make_handler as consul_handler

    s = standin_factory()
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    server = ThreadingHTTPServer(("127.0.0.1", 0), consul_handler(s.consul))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield s, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_interface_get_warns_once_when_consul_tls_is_not_verified(https_consul):
    s, addr = https_consul
    env = {"CONSUL_HTTP_ADDR": addr, "CONSUL_HTTP_SSL": "true", "CONSUL_HTTP_SSL_VERIFY": "false"}
    res = CliRunner().invoke(
        app, ["interface", "get", "psql:app", "--manifest", "dockland"], env=env
    )
    # It reached Consul over TLS and found nothing published (exit 1 for the command).
    assert res.exit_code == 1 and "no interface published for psql:app" in res.stderr, res.output
    assert res.stderr.count("warning: TLS certificates of Consul at https://") == 1
    assert "InsecureRequestWarning" not in res.stderr
    verified = CliRunner().invoke(
        app,
        ["interface", "get", "psql:app", "--manifest", "dockland"],
        env={**env, "CONSUL_HTTP_SSL_VERIFY": "true"},
    )
    assert verified.exit_code == 7 and "warning: TLS" not in verified.stderr


def test_discovery_over_http_warns_once_when_consul_tls_is_not_verified(
    https_consul, monkeypatch, capsys
):
    from nomadgen.discovery import lookup
    from nomadgen.errors import NomadgenError

    s, addr = https_consul
    for k, v in {
        "CONSUL_HTTP_ADDR": addr,
        "CONSUL_HTTP_SSL": "true",
        "CONSUL_HTTP_SSL_VERIFY": "false",
    }.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(NomadgenError) as err:
        lookup("psql:app", via="http", manifest="dockland")
    assert err.value.exit_code == 12  # reached Consul over TLS; the interface is missing
    assert capsys.readouterr().err.count("warning: TLS certificates of Consul at https://") == 1
