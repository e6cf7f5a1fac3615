"""Connection settings: one precedence (flag > env > default), TLS on by default, tokens hidden."""

from __future__ import annotations

import pytest

from nomadgen.cli import app
from nomadgen.errors import ConfigError
from nomadgen.settings import consul_endpoint, dns_server, load_config, nomad_endpoint


def test_defaults_verify_tls_and_point_at_the_local_agent():
    n = nomad_endpoint(env={})
    c = consul_endpoint(env={})
    assert (n.address, n.verify, n.token, n.namespace) == (
        "http://127.0.0.1:4646",
        True,
        "",
        "default",
    )
    assert (c.address, c.verify, c.token) == ("http://127.0.0.1:8500", True, "")
    assert dns_server(env={}) == ("127.0.0.1", 8600)


def test_flag_beats_env_beats_default(tmp_path):
    env = {
        "NOMAD_ADDR": "https://nomad.example:4646",
        "NOMAD_TOKEN": "from-env",
        "CONSUL_HTTP_ADDR": "consul.example:8501",
        "CONSUL_HTTP_SSL": "true",
    }
    assert nomad_endpoint(env=env).address == "https://nomad.example:4646"
    assert nomad_endpoint(env=env).token == "from-env"
    assert nomad_endpoint(address="http://other:1", env=env).address == "http://other:1"
    tok = tmp_path / "t"
    tok.write_text("from-file\n")
    assert nomad_endpoint(token_file=str(tok), env=env).token == "from-file"
    assert consul_endpoint(env=env).address == "https://consul.example:8501"
    assert consul_endpoint(env={"CONSUL_HTTP_TOKEN_FILE": str(tok)}).token == "from-file"


def test_tokens_never_in_repr_or_str():
    n = nomad_endpoint(env={"NOMAD_TOKEN": "s3cr3t-token"})
    assert "s3cr3t-token" not in repr(n) and "s3cr3t-token" not in str(n)
    assert "s3cr3t-token" not in repr((n, [n]))
    assert n.token == "s3cr3t-token"


def test_skip_verify_only_when_asked():
    assert nomad_endpoint(env={"NOMAD_SKIP_VERIFY": "1"}).verify is False
    assert nomad_endpoint(env={"NOMAD_SKIP_VERIFY": "0"}).verify is True
    assert consul_endpoint(env={"CONSUL_HTTP_SSL_VERIFY": "false"}).verify is False


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"address": "ftp://x:1"}, "invalid Nomad address"),
        ({"address": "http://:99"}, "invalid Nomad address"),
        ({"token_file": "/no/such/token"}, "cannot read the nomad token file"),
        ({"ca_cert": "/no/ca.pem"}, "Nomad CA certificate not found"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        nomad_endpoint(env={}, **kwargs)


def test_client_cert_needs_its_key(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="needs its key"):
        nomad_endpoint(client_cert=str(cert), env={})


def test_render_settings_validated():
    with pytest.raises(ConfigError, match="invalid zone attribute"):
        load_config(zone_attribute="${NOMAD_META_zone}", env={})
    with pytest.raises(ConfigError, match="invalid KV prefix"):
        load_config(kv_prefix="/bad//prefix", env={})
    assert (
        load_config(zone_attribute="${meta.zone}", env={}).render.zone_attribute == "${meta.zone}"
    )


def test_tracebacks_never_show_locals():
    # Typer's pretty tracebacks would print every local, tokens included.
    assert app.pretty_exceptions_show_locals is False
