"""hcl_fast.JobWriter, the HCL writer specialised to the jobs render emits, writes exactly the
bytes of the general writer hcl.to_hcl: over every golden case, a broad set of generated
manifests (every kind, stateful sets in each storage mode, zone groups, sidecars, templates,
hostile strings, the render settings that change a job) and thousands of randomly altered jobs,
which it must either write the same or leave to the general writer. Each check has a known-bad
case: a fast path with one field out of order, one that never runs, one that is lenient."""

from __future__ import annotations

import copy
import json
import random
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import nomadgen.render
from nomadgen import hcl_fast
from nomadgen.catalog import Catalog
from nomadgen.cli import app
from nomadgen.hcl import to_hcl
from nomadgen.hcl_fast import JobWriter
from nomadgen.manifest import parse
from nomadgen.model import RenderSettings, Runtime
from nomadgen.render import Shared
from nomadgen.resolve import resolve

CASES = Path(__file__).parent / "cases"
ZONES = ("zone-a", "zone-b", "zone-c")


def rendered(
    doc: dict[str, Any],
    settings: RenderSettings = RenderSettings(),
    zones: tuple[str, ...] = ZONES,
    templates: str | None = None,
) -> Iterator[tuple[dict[str, Any], Shared]]:
    """Each job of the manifest as a render makes it (identical blocks shared across jobs)."""
    plan = resolve(parse(json.dumps(doc), "m.json", "m"), Catalog(templates), zones)
    shared: Shared = {}
    for s in plan.sets:
        if s.job_hosted:
            # looked up on the module: conftest.py proves what each test renders
            yield nomadgen.render.render_job(plan, s, settings, shared).api, shared


def differences(jobs: Iterable[tuple[dict[str, Any], Shared]]) -> tuple[list[str], int]:
    """The IDs of the jobs whose text from one JobWriter for the whole render (as
    pipeline.iter_files uses it) differs from to_hcl of that job alone; and how many jobs the
    fast path wrote (not left to the general writer)."""
    writer = JobWriter()
    bad, fast = [], 0
    for api, shared in jobs:
        writer.share(shared.values())
        before = writer.fallbacks
        if writer.write(api) != to_hcl(api):
            bad.append(api["ID"])
        fast += writer.fallbacks == before
    return bad, fast


HOSTILE_ENV = {
    "TEMPLATE_LIKE": '{{ env "SECRET" }} $${attr.kernel.name} %{ if true }x%{ endif }',
    "ESCAPED": "$$${already} %%{kept} $${x}",
    "QUOTES": 'a "quoted" \\ back\\slash\\',
    "UNICODE": "héllo 東京 🚀 \u202eevil\u202c zero\u200bwidth",
    "CONTROL": "tab\there\rcr\x00nul\x7f",
    "ONE_LINE_BREAK": "line one\nline two",
    "HEREDOC": "line one\nline two\n",
    "INDENTED": "  a\n    b\n",
    "EOT_LINE": "x\nEOT\n EOTX \n",
    "BLANK_LINE": "a\n   \nb\n",
    "EMPTY": "",
    "DOLLAR": "price$ {braces} }}",
}

# (name, manifest, settings, zones, templates folder)
MANIFESTS: list[tuple[str, dict[str, Any], RenderSettings, tuple[str, ...], str | None]] = [
    (
        "dockland",
        json.loads((Path(__file__).parents[1] / "examples" / "dockland.json").read_text()),
        RenderSettings(),
        ZONES,
        None,
    ),
    (
        "every generic service, a node-local sidecar and shared sets",
        {
            "app": {"depends": ["psql", "mysql", "redis", "memcache"]},
            "worker": {"depends": ["psql:app", "app", "memcache"]},
            "cart": {"depends": ["redis"], "per_zone": 2},
            "shop": {"depends": ["cart", "memcache"], "count": 5},
        },
        RenderSettings(),
        ZONES,
        None,
    ),
    (
        "stateful sets on host volumes, two per zone (distinct_hosts)",
        {
            "app": {
                "depends": ["psql", "mysql"],
                "overrides": {"psql": {"per_zone": 2}, "mysql": {"state": {"storage": "csi"}}},
            }
        },
        RenderSettings(storage="host"),
        ZONES,
        None,
    ),
    (
        "stateful sets on CSI volumes, per set, zones as node meta",
        {"app": {"depends": ["psql", "redis"]}, "blog": {"depends": ["mysql"]}},
        RenderSettings(
            zone_attribute="${meta.zone}",
            storage_sets=(("psql:app", "csi"), ("mysql:blog", "host")),
        ),
        ("eu-1", "eu-2"),
        None,
    ),
    (
        "namespace, region, node pools, datacenters, a remote Consul datacenter",
        {
            "app": {"depends": ["psql", "redis"], "node_pool": "web"},
            "api": {"depends": ["app"], "count": 1},
        },
        RenderSettings(
            namespace="team-a",
            region="eu",
            datacenters=("dc1", "dc2"),
            nomad_version=(1, 6),
            node_pool="shared",
            kv_prefix="kv/x",
            consul_datacenter="dc9",
        ),
        ("dc1", "dc2", "dc3"),
        None,
    ),
    (
        "hostile strings everywhere a manifest puts text",
        {
            "api": {
                "depends": ["redis", "psql"],
                "image": "example/api:1",
                "command": "/bin/ap\u00ed {x} $x",
                "args": ["--greeting", 'héllo "wörld" ${NOMAD_PORT_http}', "two\nlines\n", ""],
                "env": {
                    **HOSTILE_ENV,
                    "DB": "${psql.url}?x=1",
                    "CACHE": "redis://${redis.host}:${redis.port}/%{x}",
                },
                "ports": {"http": 8080, "admin": 0},
                "tags": ["traefik.http.routers.x.rule=Host(`a`)", 'q"uote\\d', "東京"],
                "constraints": [
                    {"attribute": "${node.class}", "value": 'web "x" \\ 東京'},
                    {"attribute": "${attr.kernel.name}", "operator": "!=", "value": "windows"},
                    {"attribute": "${meta.rack}", "operator": "regexp", "value": '^r[0-9]+"$'},
                ],
                "check": {"type": "http", "path": "/health?q=${x}&p=%{y}", "interval": 7},
                "wiring": {"redis": {"change_mode": "noop"}},
            },
            "web": {
                "depends": ["api"],
                "check": False,
                "resources": {"cpu": 1, "memory": 4194304},
                "env": {"Z": "${api.url}", "A": "plain"},
            },
        },
        RenderSettings(),
        ZONES,
        None,
    ),
    (
        "user templates with a dependency of their own",
        json.loads((CASES / "user-templates" / "manifest.json").read_text()),
        RenderSettings(),
        ZONES,
        str(CASES / "user-templates" / "templates"),
    ),
    (
        "an external service beside the rest",
        json.loads((CASES / "external" / "manifest.json").read_text()),
        RenderSettings(),
        ZONES,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "doc", "settings", "zones", "templates"), MANIFESTS, ids=[m[0] for m in MANIFESTS]
)
def test_generated_manifests_are_written_by_the_fast_path_byte_for_byte(
    name, doc, settings, zones, templates
):
    jobs = list(rendered(doc, settings, zones, templates))
    assert len(jobs) >= 2
    bad, fast = differences(jobs)
    assert bad == []
    assert fast == len(jobs)  # every job nomadgen renders is a shape the fast path knows


def test_the_generated_manifests_cover_the_shapes_render_emits():
    """So that the manifests above keep meaning what their names say."""
    text = "".join(
        to_hcl(api)
        for _, doc, st, zones, tpl in MANIFESTS
        for api, _ in rendered(doc, st, zones, tpl)
    )
    for shape in (
        'group "psql-zone-a"',  # a stateful set's zone groups
        'group "psql-eu-1"',
        "lifecycle {",  # a node-local sidecar
        'type            = "csi"',
        'type   = "host"',
        "volume_mount {",
        "ephemeral_disk {",
        'operator = "distinct_hosts"',
        'operator  = "set_contains_any"',
        "data = <<-EOT",  # a dependency's template
        'change_mode = "noop"',
        'namespace   = "team-a"',
        'node_pool   = "shared"',
        "kill_timeout",
        'command  = "pg_isready"',  # a script check
        'path     = "/health?q=$${x}&p=%%{y}"',
        "HEREDOC = <<-EOT",  # a multi-line env value
        "INDENTED = <<EOT",
        "\\u202Eevil",  # written escaped
    ):
        assert shape in text, shape


def _case_runs() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "render.hcl").is_file())


@pytest.mark.parametrize("name", _case_runs())
def test_every_golden_case_is_written_by_the_fast_path_byte_for_byte(name, monkeypatch):
    """The CLI's own render (the case's flags): each job the writer writes is to_hcl's text,
    and none is left to the general writer."""
    monkeypatch.delenv("NOMADGEN_ZONES", raising=False)
    seen: list[tuple[str, bool, bool]] = []
    write = JobWriter.write

    def spy(self: JobWriter, job: dict[str, Any]) -> str:
        before = self.fallbacks
        text = write(self, job)
        seen.append((job["ID"], text == to_hcl(job), self.fallbacks == before))
        return text

    monkeypatch.setattr(JobWriter, "write", spy)
    case = CASES / name
    extra = []
    if (case / "args.txt").is_file():
        extra = shlex.split((case / "args.txt").read_text().replace("{case}", str(case)))
    result = CliRunner().invoke(
        app,
        ["render", str(case / "manifest.json"), "--name", name, "--format", "hcl", *extra],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (case / "render.hcl").read_text(encoding="utf-8")
    assert seen and len(seen) == len(re.findall(r"^# --- ", result.stdout, re.M))
    assert [job for job, same, fast in seen if not (same and fast)] == []


def test_a_fast_path_with_a_field_out_of_order_is_caught(monkeypatch):
    check = list(hcl_fast._CHECK)
    i = [f[0] for f in check].index("Interval")
    check[i], check[i + 1] = check[i + 1], check[i]  # timeout before interval
    monkeypatch.setattr(hcl_fast, "_CHECK", tuple(check))
    bad, _ = differences(rendered(MANIFESTS[0][1]))
    assert len(bad) >= 3


def test_a_fast_path_that_never_runs_is_caught(monkeypatch):
    def off(self: JobWriter, job: object) -> list[str]:
        raise hcl_fast._Off

    monkeypatch.setattr(JobWriter, "_job", off)
    jobs = list(rendered(MANIFESTS[0][1]))
    bad, fast = differences(jobs)
    assert bad == []  # the general writer wrote them all: the same bytes...
    assert fast == 0 != len(jobs)  # ...which the count of fast jobs shows


# -- altered jobs: written the same, or left to the general writer -------------------------

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    0,
    1,
    -1,
    True,
    False,
    1.5,
    10**30,
    [],
    {},
    (),
    ("t",),
    [None],
    ["a", None],
    [1, 2],
    ["x\ny"],
    [Runtime("${node.class}"), "b"],
    [{"Name": "x"}],
    {"k": None},
    {"bad key": "v"},
    {"for": "x"},
    {"a": 1},
    {"Nested": {"Deep": 1}},
    {1: "int key"},
    "two\nlines\n",
    "x\ny",
    "  indented\n  text\n",
    "EOT\n",
    "${node.class}",
    "%{ if }",
    Runtime("${attr.kernel.name}"),
    Runtime(""),
    Runtime("a\nb\n"),
    "\u202e\x00",
]


def _positions(obj: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a job."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k))
            _positions(v, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i))
            _positions(v, out)
    return out


def _mutants(jobs: list[dict[str, Any]], n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(n):
        job = copy.deepcopy(rng.choice(jobs))
        for _ in range(rng.choice((1, 1, 2))):
            container, key = rng.choice(_positions(job, []))
            what = rng.random()
            if what < 0.15 and isinstance(container, dict):
                del container[key]
            elif what < 0.3 and isinstance(container, dict):
                container[rng.choice(["Extra", "Status", "Meta", "Kind", "name"])] = rng.choice(
                    ODD_VALUES
                )
            else:
                container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        yield job


def _outcome(write: Any, job: dict[str, Any]) -> str:
    try:
        return write(job)
    except Exception as exc:  # the general writer refuses some: the fast one must too
        return f"{type(exc).__name__}: {exc}"


def altered_differences(jobs: list[dict[str, Any]], n: int, seed: int) -> tuple[list[str], int]:
    """Randomly altered jobs (a value replaced by an odd one, a key removed or added): the
    ones where JobWriter's outcome (text or error) is not to_hcl's, and how many of them the
    fast path wrote itself."""
    bad, fast = [], 0
    for i, job in enumerate(_mutants(jobs, n, seed)):
        writer = JobWriter()
        mine = _outcome(writer.write, job)
        if mine != _outcome(to_hcl, job):
            bad.append(f"mutant {i}: {mine[:200]!r}")
        fast += writer.fallbacks == 0
    return bad, fast


def _sample_jobs() -> list[dict[str, Any]]:
    return [
        api
        for _, doc, st, zones, tpl in (MANIFESTS[1], MANIFESTS[2], MANIFESTS[5])
        for api, _ in rendered(doc, st, zones, tpl)
    ]


def test_altered_jobs_are_written_the_same_or_left_to_the_general_writer():
    bad, fast = altered_differences(_sample_jobs(), 3000, seed=15)
    assert bad == []
    assert 300 < fast < 2700  # both paths ran: many alterations are still a known shape


def test_a_lenient_fast_path_is_caught_by_the_altered_jobs(monkeypatch):
    """A fast path that takes any empty value for an absent block (the general writer refuses
    `0` or `false` where a block belongs) writes jobs the general writer would not."""

    def lenient(v: object, keys: frozenset[str]) -> dict[str, Any] | None:
        return hcl_fast._dict(v, keys) if v else None

    monkeypatch.setattr(hcl_fast, "_block", lenient)
    bad, _ = altered_differences(_sample_jobs(), 3000, seed=15)
    assert bad
