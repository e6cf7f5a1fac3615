"""Manifest loading: the seed's format, its slips, and one clear message per problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from nomad_jobcheck.jobspec import shared_dir

from nomadgen.errors import ManifestError
from nomadgen.manifest import DEFAULT_IMAGE, parse

ROOT = Path(__file__).resolve().parents[1]
SEED = shared_dir() / "seed" / "000_edd4c70cb77f2012.txt"
SCHEMA = json.loads((ROOT / "nomadgen" / "manifest.schema.json").read_text())


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as e:
        parse(text, "m.json", "m")
    return e.value.lines()


def test_seed_text_fails_at_the_missing_comma():
    if not SEED.is_file():
        pytest.skip(
            f"the seed is not at {SEED} (set NOMADGEN_SHARED); the golden case covers a copy"
        )
    block = re.search(r"## MANIFEST\n\n(.*?)\n\n## Processing", SEED.read_text(), re.S).group(1)
    text = "\n".join(line[4:] for line in block.splitlines()) + "\n"
    lines = problems(text)
    assert lines[0] == "m.json:16:7: Expecting ',' delimiter"
    # The corrected text is the golden example.
    fixed = text.replace('"psql"\n      "memcache"', '"psql",\n      "memcache"')
    assert json.loads(fixed) == json.loads((ROOT / "examples/dockland.json").read_text())


def test_seed_manifest_alone_gets_runnable_defaults():
    m = parse((ROOT / "examples/dockland.json").read_text(), "d.json", "d")
    app = m.service("app")
    assert app.run.image == DEFAULT_IMAGE and app.run.ports[0].label == "http"
    assert app.depends == ("psql", "memcache")


def test_duplicate_key_points_at_the_second_one():
    lines = problems('{\n  "a": {},\n  "a": {"depends": []}\n}')
    assert lines[1] == "  m.json:3:3: a: duplicate key (JSON keeps only the last one)"


def test_nested_duplicate_key():
    lines = problems('{"a": {"env": {"X": "1", "X": "2"}}}')
    assert "a.env.X: duplicate key" in "\n".join(lines)


def test_all_problems_reported_in_file_order():
    text = '{\n "a": {"imge": "x"},\n "b": {"depends": ["PSQL"]},\n "c": {"count": 0}\n}'
    lines = [x for x in problems(text) if not x.strip().startswith("hint")]
    assert lines[0] == "m.json: 3 problems in the manifest"
    assert [x.split(":")[1] for x in lines[1:]] == ["2", "3", "4"]
    assert "did you mean 'image'?" in "\n".join(problems(text))


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"a": {"args": ["%{ if x }"]}}, "evaluates as a template directive"),
        ({"a": {"env": {"1X": "v"}}}, "invalid environment variable name"),
        ({"a": {"env": {"X": 1}}}, "value must be a string"),
        ({"a": {"ports": {"HTTP": 80}}}, "invalid port label"),
        ({"a": {"check": {"type": "grpc"}}}, "unknown check type"),
        ({"a": {"check": {"type": "http", "path": "health"}}}, "path starting with /"),
        ({"a": {"count": 2, "per_zone": 2}}, "cannot both be set"),
        ({"a": {"depends": ["psql", "psql"]}}, "listed twice"),
        ({"a": {"depends": ["psql:"]}}, "invalid dependency"),
        ({"a.b": {}}, "invalid service name"),
        ({"a": []}, "must be a JSON object"),
        ({}, "declares no services"),
        ({"a": {"image": "bad image"}}, "container image"),
        (
            {"a": {"external": {"address": "db.example.com", "port": 5432}, "image": "x:1"}},
            "takes only",
        ),
        ({"a": {"external": {"address": "bad host", "port": 5432}}}, "host name or IP"),
        ({"a": {"external": {"address": "db", "port": 0}}}, "port number"),
    ],
)
def test_invalid_fields(body, fragment):
    assert fragment in "\n".join(problems(json.dumps(body)))


def test_top_level_must_be_an_object():
    assert "must be a JSON object" in "\n".join(problems("[1, 2]"))


def test_schema_accepts_the_examples_and_golden_cases():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    v = jsonschema.Draft202012Validator(SCHEMA)
    good = [ROOT / "examples/dockland.json"] + [
        p / "manifest.json"
        for p in (ROOT / "tests/cases").iterdir()
        if (p / "resolve.json").is_file()
    ]
    for path in good:
        assert list(v.iter_errors(json.loads(path.read_text()))) == [], path


@pytest.mark.parametrize(
    "doc",
    [
        {"app": {"depnds": ["psql"]}},
        {"Bad_Name": {}},
        {"app": {"count": 2, "per_zone": 1}},
        {"app": {"depends": ["a:b:c:d"]}},
        {"app": {"args": ["%{ x }"]}},
        {"db": {"external": {"address": "db.example.com", "port": 5432}, "image": "x:1"}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(doc):
    v = jsonschema.Draft202012Validator(SCHEMA)
    assert list(v.iter_errors(doc))
    with pytest.raises(ManifestError):
        parse(json.dumps(doc), "m.json", "m")
