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


def test_schema_agrees_with_the_loader_on_every_config_in_the_tests_and_readme():
    """Every nomadgen.toml the golden cases and the README use is valid by the schema, except
    env-bad-values, whose wrong types and unknown key the schema refuses as the loader does."""
    root = Path(__file__).resolve().parent
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for path in sorted(root.glob("*cases/*/nomadgen.toml")):
        errors = list(validator.iter_errors(tomllib.loads(path.read_text())))
        if path.parent.name == "env-bad-values":
            assert sorted(e.message for e in errors) == [
                "'lots' is not of type 'integer'",
                "'two' is not of type 'integer'",
                "Additional properties are not allowed ('imgae' was unexpected)",
            ]
        else:
            assert errors == [], path
    readme = (root.parent / "README.md").read_text()
    section = readme[readme.index("## Environments: dev, stage and prod") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    jsonschema.validate(tomllib.loads(block[: block.index("```")]), SCHEMA)
