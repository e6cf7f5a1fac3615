"""Hostile input: never exit 70, never a traceback, bounded output, documented limits.
(The manifest cases with golden messages are in tests/cases/: too-large-numbers, newline-names,
lone-surrogate, huge-integer, deep-nesting, many-problems, bad-template, bad-template-limits.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nomadgen import cli, manifest
from nomadgen.cli import app
from nomadgen.errors import ConfigError
from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples/dockland.json")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("NOMAD", "CONSUL")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def run(*args, **kw):
    res = CliRunner().invoke(app, list(args), **kw)
    assert "Traceback" not in res.output
    return res


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "m.json"
    os.mkfifo(fifo)
    res = run("render", str(fifo))
    assert res.exit_code == 3 and "not a regular file" in res.stderr


def test_a_device_is_refused():
    res = run("render", "/dev/zero")
    assert res.exit_code == 3 and "not a regular file" in res.stderr


def test_a_manifest_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text('{"app": {}}' + " " * 200)
    res = run("render", str(big))
    assert res.exit_code == 3 and "more than the limit of 100" in res.stderr


def test_a_folder_is_not_a_manifest(tmp_path):
    res = run("render", str(tmp_path))
    assert res.exit_code == 3 and "folder" in res.stderr


def test_non_utf8_manifest_names_the_line(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_bytes(b'{\n"app": {"env": {"A": "\xff"}}}')
    res = run("render", str(bad))
    assert res.exit_code == 3 and "not UTF-8 text (byte 0xff on line 2)" in res.stderr


def test_many_duplicate_keys_are_found_in_one_scan(tmp_path, monkeypatch):
    """Each duplicate used to rescan the whole text (80 KB: minutes)."""
    calls = []
    real = manifest.locate
    monkeypatch.setattr(manifest, "locate", lambda *a, **k: calls.append(1) or real(*a, **k))
    text = "{" + ",".join(f'"s{i % 400}": {{}}' for i in range(2000)) + "}"
    with pytest.raises(manifest.ManifestError) as exc:
        manifest.parse(text, "m.json", "m")
    assert len(exc.value.problems) == 1600
    assert len(calls) <= 2


def test_error_output_is_bounded(tmp_path):
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"A" * 1_000_000: {}, **{f"x{i}": {"bad": 1} for i in range(5000)}}))
    res = run("render", str(m))
    assert res.exit_code == 3
    assert len(res.stderr) < 20_000
    assert "and 4,981 more problems" in res.stderr
    assert "(1,000,002 characters)" in res.stderr


def test_a_trailing_newline_is_not_a_name(tmp_path):
    res = run("render", EXAMPLE, "--name", "dockland\n")
    assert res.exit_code == 3 and "manifest name 'dockland\\n' is not a DNS label" in res.stderr
    (tmp_path / "nomadgen.toml").write_text('zones = ["zone-a\\n", "zone-b"]\n')
    res = run("render", EXAMPLE)
    assert res.exit_code == 6 and "invalid zone name 'zone-a\\n' (from config)" in res.stderr


@pytest.mark.parametrize(
    "toml,fragment",
    [
        ("templates = 5", "templates must be a string, not 5"),
        ('zone_attribute = ["${node.datacenter}"]', "zone_attribute must be a string"),
        ("zones = [1, 2]", "zones must be a list of strings"),
        ('kv_prefix = "nomadgen\\n"', "invalid KV prefix"),
        ('zone_attribute = "${meta.zone}\\n"', "invalid zone attribute"),
        ("region = 1" + "0" * 5000, "fix the value"),
        ("namespace = {a = 1}", "namespace must be a string"),
    ],
)
def test_config_file_types_are_checked(tmp_path, toml, fragment):
    (tmp_path / "nomadgen.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(env={})
    assert fragment in str(exc.value)
    res = run("render", EXAMPLE)
    assert res.exit_code == 6 and fragment in res.stderr


def test_non_utf8_config_is_a_config_error(tmp_path):
    (tmp_path / "nomadgen.toml").write_bytes(b'zones = ["\xe9"]\n')
    res = run("render", EXAMPLE)
    assert res.exit_code == 6 and "not UTF-8" in res.stderr


@pytest.mark.parametrize(
    "token,fragment",
    [
        ("abc\ndef", "line break"),
        ("s3cr3t\u20ac", "outside Latin-1"),
        ("abc\x01", "control characters"),
    ],
)
def test_tokens_that_cannot_be_a_header_are_config_errors(token, fragment):
    for make, var in ((nomad_endpoint, "NOMAD_TOKEN"), (consul_endpoint, "CONSUL_HTTP_TOKEN")):
        with pytest.raises(ConfigError, match=fragment) as exc:
            make(env={var: token})
        assert token not in str(exc.value)  # the token is never echoed


def test_token_file_must_be_utf8_and_regular(tmp_path):
    tok = tmp_path / "t"
    tok.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        nomad_endpoint(env={"NOMAD_TOKEN_FILE": str(tok)})
    with pytest.raises(ConfigError, match="not a regular file"):
        nomad_endpoint(env={"NOMAD_TOKEN_FILE": "/dev/zero"})


@pytest.mark.parametrize(
    "value,verify",
    [
        ("", True),
        ("t", True),
        ("1", True),
        ("TRUE", True),
        ("True", True),
        ("false", False),
        ("0", False),
        ("F", False),
        ("FALSE", False),
    ],
)
def test_consul_ssl_verify_parses_like_go(value, verify):
    assert (consul_endpoint(env={"CONSUL_HTTP_SSL_VERIFY": value}).verify is not False) is verify


@pytest.mark.parametrize("var", ["CONSUL_HTTP_SSL_VERIFY", "CONSUL_HTTP_SSL", "NOMAD_SKIP_VERIFY"])
@pytest.mark.parametrize("value", [" true", "maybe", "yes", "tRuE", "no "])
def test_unparsable_booleans_are_config_errors(var, value):
    make = nomad_endpoint if var.startswith("NOMAD") else consul_endpoint
    with pytest.raises(ConfigError, match=f"{var}=.* is not a boolean"):
        make(env={var: value})


def test_unparsable_ssl_verify_stops_the_command_before_any_request():
    res = run(
        "interface",
        "get",
        "psql:app",
        env={"CONSUL_HTTP_SSL_VERIFY": "maybe", "CONSUL_HTTP_ADDR": "https://127.0.0.1:1"},
    )
    assert res.exit_code == 6 and "CONSUL_HTTP_SSL_VERIFY='maybe' is not a boolean" in res.stderr


def test_debug_keeps_the_plan_exit_code(monkeypatch):
    import nomadgen.settings

    def boom(**kw):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(nomadgen.settings, "load_config", boom)
    res = CliRunner().invoke(app, ["--debug", "plan", EXAMPLE])
    cli._state["debug"] = False
    assert res.exit_code == 255 and "kaboom" in res.stderr


@pytest.mark.parametrize(
    "var,value,fragment",
    [
        ("NOMAD_TOKEN", "abc\ndef", "line break"),
        ("CONSUL_HTTP_TOKEN", "abc\ndef", "line break"),
        ("NOMAD_TOKEN", "s3cr3t\u20ac", "outside Latin-1"),
    ],
)
def test_a_bad_token_is_said_before_any_request(var, value, fragment):
    """It was "unreachable, is nomad running there?" (exit 7): the command now names what is
    wrong with the token (never the token) and contacts nothing (the address is a closed
    port: reaching for it would be exit 7 / 255 with "cannot reach")."""
    env = {"NOMAD_ADDR": "http://127.0.0.1:9", "CONSUL_HTTP_ADDR": "127.0.0.1:9", var: value}
    for args, code in ((["plan", EXAMPLE], 255), (["submit", EXAMPLE], 6), (["status", "x"], 6)):
        res = run(*args, env=env)
        assert res.exit_code == code, (args, res.output)
        assert fragment in res.stderr and "cannot reach" not in res.stderr, res.stderr
        assert value not in res.output
