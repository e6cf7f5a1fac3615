"""The JSON Schema of nomadgen.toml stays in step with what the loader accepts."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from nomadgen.cli import app
from nomadgen.environments import ENV_KEYS
from nomadgen.envplan import SET_FIELDS
from nomadgen.names import KV_PREFIX_RE, ZONE_ATTR_RE
from nomadgen.settings import CONFIG_KEYS

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "nomadgen/config.schema.json").read_text()
)
GOOD = """
zones = ["zone-a", "zone-b"]
[env.prod]
namespace = "prod"
[env.prod.overrides."psql:app"]
image = "postgres:16.4-alpine"
resources = { memory = 2048 }
"""


def test_schema_knows_every_key_the_loader_knows():
    assert set(SCHEMA["properties"]) == CONFIG_KEYS
    assert set(SCHEMA["$defs"]["env"]["properties"]) == ENV_KEYS
    assert set(SCHEMA["$defs"]["override"]["properties"]) == SET_FIELDS


def test_schema_accepts_a_good_config_and_refuses_a_bad_one():
    jsonschema.validate(tomllib.loads(GOOD), SCHEMA)
    bad = tomllib.loads(GOOD.replace("namespace", "namespce"))
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(bad))
    wrong = tomllib.loads(GOOD.replace("{ memory = 2048 }", '{ memory = "lots" }'))
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(wrong))


def test_schema_command_prints_it():
    res = CliRunner().invoke(app, ["schema", "--config"])
    assert res.exit_code == 0 and json.loads(res.stdout)["title"] == "nomadgen.toml"


# What the schema says of each golden case the loader refuses for its config file. A new
# bad-config case must be added here, so the schema's verdict on it is stated, not assumed.
SCHEMA_REFUSES = {
    "env-bad-values": [
        "'lots' is not of type 'integer'",
        "'two' is not of type 'integer'",
        "Additional properties are not allowed ('imgae' was unexpected)",
    ],
    "config-bad-types": [
        "5 is not of type 'string'",
        "['${node.datacenter}'] is not of type 'string'",
    ],
    "config-kv-prefix-newline": ["'nomadgen\\n' does not match"],
    "config-zone-attribute-newline": ["'${meta.zone}\\n' does not match"],
}
# Refused for something other than the file's values: an unknown --env, bytes that are not text.
NOT_THE_SCHEMAS = {"env-unknown", "config-not-utf8"}


def test_schema_agrees_with_the_loader_on_every_config_in_the_tests_and_readme():
    """Every nomadgen.toml the golden cases and the README use is valid by the schema, except
    the cases the loader refuses, whose wrong values the schema refuses too."""
    root = Path(__file__).resolve().parent
    validator = jsonschema.Draft202012Validator(SCHEMA)
    seen = set()
    for path in sorted(root.glob("*cases/*/nomadgen.toml")):
        name = path.parent.name
        code = path.parent / "exit_code"
        refused = code.exists() and code.read_text().strip() == "6"
        assert refused == (name in SCHEMA_REFUSES or name in NOT_THE_SCHEMAS), name
        if name in NOT_THE_SCHEMAS:
            continue
        seen.add(name)
        errors = sorted(e.message for e in validator.iter_errors(tomllib.loads(path.read_text())))
        want = SCHEMA_REFUSES.get(name, [])
        assert len(errors) == len(want), (name, errors)
        for got, expected in zip(errors, want, strict=True):
            assert got.startswith(expected), (name, got)
    assert set(SCHEMA_REFUSES) <= seen
    readme = (root.parent / "README.md").read_text()
    section = readme[readme.index("## Environments: dev, stage and prod") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    jsonschema.validate(tomllib.loads(block[: block.index("```")]), SCHEMA)


KV_PREFIXES = [
    "nomadgen",
    "a/b_c-d",
    "x" * 128,
    "",
    "x" * 129,
    "a//b",
    "/a",
    "a/",
    "a b",
    "nomadgen\n",
    "ä",
]
ZONE_ATTRIBUTES = [
    "${node.datacenter}",
    "${meta.zone}",
    "${attr.unique.hostname}",
    "${node.pool}",
    "${meta.zone}\n",
    "${meta.}",
    "${node.name}",
    "meta.zone",
    "${meta.zone} ",
    "${meta.z\u00f6ne}",
]


def test_schema_patterns_accept_what_the_loader_accepts():
    """An editor validating nomadgen.toml by the schema flags the same KV prefixes and zone
    attributes the loader refuses (a trailing newline included: Python's `$` would let it by)."""
    props = SCHEMA["properties"]
    for values, key, rule in (
        (KV_PREFIXES, "kv_prefix", KV_PREFIX_RE),
        (ZONE_ATTRIBUTES, "zone_attribute", ZONE_ATTR_RE),
    ):
        for where in (props[key], SCHEMA["$defs"]["env"]["properties"][key]):
            for value in values:
                schema_ok = jsonschema.Draft202012Validator(where).is_valid(value)
                assert schema_ok == bool(rule.match(value)), (key, value)
        # known-bad: the plain `$` anchor a schema author would write lets the newline by
        loose = dict(props[key], pattern=props[key]["pattern"].replace("(?![\\s\\S])", "$"))
        assert jsonschema.Draft202012Validator(loose).is_valid(
            values[values.index("nomadgen\n" if key == "kv_prefix" else "${meta.zone}\n")]
        )
