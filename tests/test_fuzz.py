"""Property-based fuzzing (hypothesis; seeded and bounded, so a run is repeatable and short):
generated manifests, nomadgen.toml files and command lines never end in an internal error
(exit 70) or a traceback, never leave a partial `--out` tree, and every job they render says the
same in HCL as in JSON."""

from __future__ import annotations

import json
import os
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nomadgen import cli
from nomadgen.cli import app
from tests.hcl_parity import hcl_to_job
from tests.test_hcl import canon_configs, normalise


def fuzz(n: int):
    return settings(
        derandomize=True,
        deadline=None,
        database=None,
        max_examples=n,
        suppress_health_check=list(HealthCheck),
    )


USER_ERRORS = {0, 1, 2, 3, 4, 5, 6}  # 1: e.g. --out refused; 2: usage

NAMES = st.sampled_from(
    [
        "app",
        "web",
        "api",
        "worker",
        "db",
        "psql",
        "memcache",
        "redis",
        "mysql",
        "a-b",
        "b-c",
        "x" * 63,
        "x" * 64,
        "App",
        "a_b",
        "a:b",
        "app\n",
        "",
        "-a",
        "psql:app",
        "9z",
    ]
)
# Hostile text that still round-trips through python-hcl2 (see tests/hcl_parity.py).
PIECES = st.sampled_from(
    [
        "plain",
        "${x}",
        "$${y}",
        "%{ if }",
        "%%{z}",
        "{{ .Secret }}",
        '"q"',
        "\\",
        "\n",
        "\t",
        "é",
        "☃",
        "\u0000",
        " ",
        "/health",
        "${NOMAD_PORT_http}",
        "$",
        "{",
        "}",
        "#",
        "//",
        "EOT",
    ]
)
TEXT = st.lists(PIECES, max_size=4).map("".join)
SCALAR = st.one_of(
    TEXT,
    st.integers(min_value=-3, max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)


def field(name: str):
    known = {
        "depends": st.lists(st.one_of(NAMES, TEXT), max_size=3),
        "image": st.one_of(st.sampled_from(["busybox:1.36", "postgres:16", "x y", ""]), VALUE),
        "command": st.one_of(TEXT, VALUE),
        "args": st.one_of(st.lists(TEXT, max_size=3), VALUE),
        "ports": st.one_of(
            st.dictionaries(
                st.sampled_from(["http", "db", "HTTP", "a b"]), st.integers(-1, 70000), max_size=2
            ),
            VALUE,
        ),
        "env": st.one_of(
            st.dictionaries(st.sampled_from(["A", "B_1", "1X", "a-b"]), TEXT, max_size=3), VALUE
        ),
        "resources": st.one_of(
            st.fixed_dictionaries(
                {}, optional={"cpu": st.integers(-1, 2**64), "memory": st.integers(-1, 2**64)}
            ),
            VALUE,
        ),
        "count": st.one_of(st.integers(-1, 2**40), VALUE),
        "per_zone": st.one_of(st.integers(-1, 200), VALUE),
        "check": st.one_of(
            st.just(False),
            st.fixed_dictionaries(
                {},
                optional={
                    "type": st.sampled_from(["http", "tcp", "grpc"]),
                    "path": TEXT,
                    "interval": st.integers(-1, 10**13),
                    "timeout": st.integers(-1, 100),
                },
            ),
            VALUE,
        ),
        "protocol": st.one_of(st.sampled_from(["http", "grpc", "tcp"]), VALUE),
        "external": st.one_of(
            st.fixed_dictionaries(
                {
                    "address": st.sampled_from(["10.0.0.1", "db.example.com", "bad host"]),
                    "port": st.integers(0, 70000),
                }
            ),
            VALUE,
        ),
    }
    return known.get(name, VALUE)


SERVICE = st.lists(
    st.sampled_from(
        [
            "depends",
            "image",
            "command",
            "args",
            "ports",
            "env",
            "resources",
            "count",
            "per_zone",
            "check",
            "protocol",
            "external",
            "depnds",
        ]
    ),
    max_size=4,
    unique=True,
).flatmap(lambda keys: st.fixed_dictionaries({k: field(k) for k in keys}))
# Mostly valid services with hostile text where text is allowed: these render, and their HCL
# must say what their JSON says.
SAFE_TEXT = st.lists(
    st.sampled_from(
        [
            "plain",
            "$${y}",
            "{{ .Secret }}",
            '"q"',
            "\\",
            "\n",
            "\t",
            "é",
            "☃",
            " ",
            "#",
            "//",
            "EOT",
            "$",
            "}",
            "%%",
        ]
    ),
    max_size=4,
).map("".join)
GOOD_SERVICE = st.fixed_dictionaries(
    {},
    optional={
        "depends": st.lists(
            st.sampled_from(["psql", "memcache", "redis", "mysql", "web"]), max_size=3, unique=True
        ),
        "image": st.sampled_from(["busybox:1.36", "nginx:1.27", "registry.example.com/a/b:1"]),
        "command": SAFE_TEXT,
        "args": st.lists(SAFE_TEXT, max_size=3),
        "env": st.dictionaries(st.sampled_from(["A", "B_1", "URL", "_X"]), SAFE_TEXT, max_size=3),
        "resources": st.fixed_dictionaries(
            {}, optional={"cpu": st.integers(1, 500), "memory": st.integers(1, 512)}
        ),
        "count": st.integers(1, 4),
        "check": st.one_of(
            st.just(False),
            st.fixed_dictionaries(
                {"type": st.just("http")},
                optional={"path": SAFE_TEXT.map(lambda t: "/" + t), "interval": st.integers(1, 60)},
            ),
        ),
    },
)
MANIFEST = st.one_of(
    st.dictionaries(
        st.sampled_from(["app", "web", "api", "worker"]), GOOD_SERVICE, min_size=1, max_size=3
    ),
    st.dictionaries(NAMES, SERVICE, min_size=1, max_size=4),
    st.dictionaries(NAMES, VALUE, max_size=2),
    VALUE,
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("NOMAD", "CONSUL")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    cli._state["debug"] = False
    assert res.exit_code in USER_ERRORS, (args, res.exit_code, res.output[-2000:])
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output[-2000:]
    return res


def _texts(hcl: str) -> dict[str, str]:
    return dict(re.findall(r"# --- (\S+)\.nomad\.hcl\n(.*?)(?=\n# --- |\Z)", hcl, re.S))


@fuzz(60)
@given(doc=MANIFEST)
def test_generated_manifests(doc, tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    path = d / "m.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    res = invoke("render", path, "-f", "json", "--name", "fz")
    hcl = invoke("render", path, "--name", "fz")
    assert hcl.exit_code == res.exit_code
    out = d / "out"
    written = invoke("render", path, "--name", "fz", "--out", out)
    if res.exit_code != 0:
        assert written.exit_code != 0 and not out.exists()  # nothing, not a partial tree
        return
    assert written.exit_code == 0 and any(out.iterdir())
    jobs = json.loads(res.stdout)
    texts = _texts(hcl.stdout)
    assert sorted(texts) == sorted(jobs)
    for job_id, body in jobs.items():
        assert canon_configs(hcl_to_job(texts[job_id])) == normalise(body["Job"]), job_id


CONFIG_VALUE = st.one_of(
    st.text(string.ascii_letters + "${}.-_/ \n", max_size=12).map(json.dumps),
    st.integers(-2, 10**6).map(str),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.lists(st.text("abz-", min_size=0, max_size=5).map(json.dumps), max_size=3).map(
        lambda xs: "[" + ", ".join(xs) + "]"
    ),
    st.just("{a = 1}"),
    st.just('"\\ud800"'),
    st.just("1" + "0" * 5000),
    st.just("[[1]]"),
)
CONFIG_KEY = st.sampled_from(
    [
        "zones",
        "zone_attribute",
        "namespace",
        "region",
        "kv_prefix",
        "templates",
        "consul_domain",
        "datacenters",
        "storage",
        "zonez",
    ]
)


@fuzz(60)
@given(
    lines=st.lists(st.tuples(CONFIG_KEY, CONFIG_VALUE), max_size=4, unique_by=lambda t: t[0]),
    raw=st.binary(max_size=8),
)
def test_generated_configs(lines, raw, tmp_path_factory):
    d = tmp_path_factory.mktemp("c")
    (d / "nomadgen.toml").write_bytes("".join(f"{k} = {v}\n" for k, v in lines).encode() + raw)
    manifest = d / "m.json"
    manifest.write_text('{"app": {"depends": ["psql"]}}')
    invoke("resolve", manifest, "--config", d / "nomadgen.toml")


ARG = st.one_of(
    st.sampled_from(
        [
            "--zones",
            "--format",
            "-f",
            "--job",
            "--out",
            "--name",
            "--templates",
            "--config",
            "--json",
            "--force",
            "-h",
            "hcl",
            "json",
            "mermaid",
            "dot",
            "a,b",
            ",,",
            "zone-a\n",
            "x" * 300,
            "/dev/zero",
            "/",
            ".",
            "",
            "psql-app",
            "--debug",
        ]
    ),
    st.text(max_size=10),
)


@fuzz(80)
@given(
    cmd=st.sampled_from(
        ["render", "resolve", "graph", "templates", "schema", "status", "destroy", "interface"]
    ),
    args=st.lists(ARG, max_size=5),
)
def test_generated_command_lines(cmd, args):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "dockland.json")
    if cmd in ("status", "destroy", "interface"):
        # cluster commands: only their argument and option parsing, never a cluster
        os.environ["NOMAD_ADDR"] = os.environ["CONSUL_HTTP_ADDR"] = "http://127.0.0.1:9"
        try:
            res = CliRunner().invoke(app, [cmd, *args])
        finally:
            del os.environ["NOMAD_ADDR"], os.environ["CONSUL_HTTP_ADDR"]
        cli._state["debug"] = False
        assert res.exit_code in USER_ERRORS | {7, 8, 10, 13}, (args, res.output[-2000:])
        assert "Traceback" not in res.output and "internal error" not in res.output
        return
    invoke(cmd, *([example] if cmd not in ("templates", "schema") else []), *args)


def test_the_harness_catches_an_internal_error(monkeypatch, tmp_path):
    import nomadgen.pipeline

    monkeypatch.setattr(nomadgen.pipeline, "build_resolution", lambda *a, **k: 1 / 0)
    path = tmp_path / "m.json"
    path.write_text('{"app": {}}')
    with pytest.raises(AssertionError):
        invoke("render", path)
