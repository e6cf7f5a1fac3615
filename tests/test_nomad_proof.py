"""Rendered jobs proven with Nomad 1.5.8's own parser, decoder, Canonicalize and Validate
(tests/nomad_tools.py). Skips with the reason where ../shared/tools/nomad-jobspec is absent."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from nomad_jobcheck.jobspec import shared_dir

from nomadgen.hcl import escape_string, to_hcl
from nomadgen.model import Runtime
from tests.hcl_parity import hcl_to_job
from tests.nomad_tools import (
    RenderedJobs,
    assert_proven,
    dropped_keys,
    json_diff,
    nomad_canonicalize,
    nomad_decode,
    nomad_parse,
    prove,
    requires_nomad,
    split_hcl,
)

CASES = Path(__file__).parent / "cases"
ROOT = Path(__file__).resolve().parents[1]
RENDERED = sorted(p.name for p in CASES.iterdir() if (p / "render.json").is_file())


def case_jobs(name: str) -> list[tuple[str, str, dict]]:
    jobs = json.loads((CASES / name / "render.json").read_text())
    texts = split_hcl((CASES / name / "render.hcl").read_text())
    assert sorted(texts) == sorted(jobs)
    return [(f"{name}/{jid}", texts[jid], body) for jid, body in jobs.items()]


@requires_nomad
@pytest.mark.parametrize("name", RENDERED)
def test_golden_case_is_proven_by_nomad(name):
    """Every golden job (hostile values included): HCL == JSON after Canonicalize, no key
    dropped, valid. test_cases keeps these files equal to what nomadgen renders now."""
    assert_proven(case_jobs(name))


def test_the_hostile_case_is_among_them():
    assert "nasty-values" in RENDERED


# --- the proof can fail -------------------------------------------------------------------------


def _one(name: str = "seed-example") -> tuple[str, dict]:
    _, hcl, job = case_jobs(name)[0]
    return hcl, job["Job"]


@requires_nomad
def test_proof_reports_the_path_of_an_hcl_json_difference():
    hcl, job = _one()
    assert prove(hcl, job) == []
    assert "count = 1" in hcl  # app's zone-a group
    problems = prove(hcl.replace("count = 1", "count = 2", 1), job)
    assert problems == ["HCL != JSON after Canonicalize: Job.TaskGroups[0].Count: 2 != 1"]


@requires_nomad
def test_proof_reports_keys_nomad_drops():
    hcl, job = _one()
    bad = copy.deepcopy(job)
    bad["TaskGroups"][0]["Tasks"][0]["Resouces"] = {"CPU": 1}  # typo: Nomad ignores it
    bad["Datacentres"] = ["x"]
    problems = prove(None, bad)
    assert "Job.Datacentres: dropped by Nomad's decoder (unknown key)" in problems
    assert (
        "Job.TaskGroups[0].Tasks[0].Resouces: dropped by Nomad's decoder (unknown key)" in problems
    )


@requires_nomad
def test_proof_reports_nomads_validation_message():
    hcl, job = _one()
    bad = dict(job, Priority=0)
    (problem,) = prove(None, bad)
    assert problem.startswith("Nomad rejects it: ") and "job priority must be between" in problem


@requires_nomad
def test_proof_reports_hcl_nomad_cannot_parse():
    hcl, job = _one()
    assert "count = 1" in hcl
    (problem,) = prove(hcl.replace("count = 1", "count = var.x", 1), job)
    assert problem.startswith("HCL does not parse: ") and 'attribute named "x"' in problem


def test_json_diff_names_paths():
    a = {"A": [1, {"B": "x"}], "C": True, "D": 1}
    b = {"A": [1, {"B": "y"}, 3], "C": 1}
    assert json_diff(a, b) == [
        "Job.A[1].B: 'x' != 'y'",
        "Job.A: 2 items != 3 items",
        "Job.C: True != 1",
        "Job.D: only on the left (1)",
    ]
    assert json_diff(a, a) == []


def test_dropped_keys_ignores_nulls_and_sees_changed_values():
    assert dropped_keys({"A": None, "B": 1}, {"B": 1}) == []
    assert dropped_keys({"B": [1, 2]}, {"B": [1]}) == ["Job.B: sent 2 items, Nomad kept [1]"]
    assert dropped_keys({"B": True}, {"B": 1}) == ["Job.B: sent True, Nomad kept 1"]


# --- hostile values through the writer, read by Nomad's own parser -----------------------------

HOSTILE = [
    "${foo}",
    "%{ if true }x%{ endif }",
    "$${already}",
    "%%{already}",
    "trailing $",
    "trailing %",
    "$$$${x}",
    "${foo",
    "%{",
    'say "quotes"',
    "C:\\path\\",
    "back\\slash\\n",
    "line1\nline2\r\n",
    "tab\there",
    "{{ .Address }}",
    "zürich 東京",
    "emoji 😀 👨\u200d👩",
    "bell\x07 esc\x1b del\x7f",
    "bidi \u202e override",
    "zero\u200bwidth",
    "line\u2028sep",
    " ",
    "${a} ${b} %{c}",
    "$ {not} % {not}",
    '${file("/etc/passwd")}',
    "${var.x}",
    '${upper("x")}',
    "${node.datacenter}",
    "$${node.datacenter}",
    "${NOMAD_PORT_http}",
    "${meta.zone}}",
    "EOT\nEOT\n",
    "  indented\n",
    "multi\nline\n",
]


@requires_nomad
def test_hostile_values_read_back_exactly_in_nomads_parser():
    values = {f"v{i}": v for i, v in enumerate(HOSTILE)}
    job = {
        "ID": "hostile",
        "Datacenters": ["dc1"],
        "Meta": values,
        "TaskGroups": [
            {
                "Name": "g",
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Env": values,
                        "Config": {"image": "x", "args": HOSTILE},
                        "Templates": [
                            {"EmbeddedTmpl": v, "DestPath": f"local/{i}"}
                            for i, v in enumerate(HOSTILE)
                        ],
                    }
                ],
            }
        ],
    }
    back = nomad_parse(to_hcl(job))
    assert back["Meta"] == values
    task = back["TaskGroups"][0]["Tasks"][0]
    assert task["Env"] == values
    assert task["Config"]["args"] == HOSTILE
    assert [t["EmbeddedTmpl"] for t in task["Templates"]] == HOSTILE
    assert nomad_decode(job)["Meta"] == values


# --- Nomad's own example jobs through the writer ------------------------------------------------

EXAMPLES = shared_dir() / "nomad" / "examples"
needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(),
    reason=f"Nomad's example jobs are not at {EXAMPLES} (set NOMADGEN_SHARED)",
)


def _examples(pattern: str) -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob(pattern)) if EXAMPLES.is_dir() else []


def test_every_example_job_is_taken():
    """Each example job file of ../shared/nomad/examples is in the round trips below (the
    one other file is a plan response, which holds no job)."""
    if not EXAMPLES.is_dir():
        pytest.skip(f"Nomad's example jobs are not at {EXAMPLES} (set NOMADGEN_SHARED)")
    assert _examples("*.nomad.hcl") == ["example-short.nomad.hcl", "example.nomad.hcl"]
    jobs = [n for n in _examples("*.json") if n != "plan-response.json"]
    assert jobs == sorted(JSON_EXAMPLES)
    plan = json.loads((EXAMPLES / "plan-response.json").read_text())
    assert "Job" not in plan and "TaskGroups" not in plan


JSON_EXAMPLES = ["example-short.json", "json-jobs-doc-example.json", "job-read-response.json"]


@requires_nomad
@needs_examples
@pytest.mark.parametrize("name", _examples("*.nomad.hcl"))
def test_nomad_hcl_examples_round_trip_through_the_writer(name):
    job = nomad_parse((EXAMPLES / name).read_text())
    assert json_diff(nomad_parse(to_hcl(job)), job) == []


@requires_nomad
@needs_examples
@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_nomad_json_examples_round_trip_through_the_writer(name):
    """What Nomad 1.5.8 keeps of the job (fields added later, like NodePool, are dropped by its
    decoder and rejected by its parser), written as HCL, reads back the same after Canonicalize,
    server-set fields (indexes, status) aside."""
    data = json.loads((EXAMPLES / name).read_text())
    job = nomad_decode(data.get("Job", data))
    server_set = {
        "Status",
        "StatusDescription",
        "Stable",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
    }
    expected = {k: v for k, v in nomad_canonicalize(job).items() if k not in server_set}
    back = {
        k: v for k, v in nomad_parse(to_hcl(job), canonicalize=True).items() if k not in server_set
    }
    assert json_diff(back, expected) == []


# --- idiomatic forms: each proven to read back as exactly the JSON value ------------------------

REFS = [
    "${node.datacenter}",
    "${node.unique.name}",
    "${attr.kernel.name}",
    "${meta.zone}",
    "${meta.rack_1}",
    "${device.model}",
    "${NOMAD_PORT_http}",
    "${NOMAD_HOST_PORT_db}",
    "${NOMAD_IP_memcache_app}",
    "${NOMAD_ALLOC_ID}",
]
# Every printable ASCII character just before and just after a reference.
CONTEXTS = (
    [(c, "") for c in map(chr, range(0x20, 0x7F))]
    + [("", c) for c in map(chr, range(0x20, 0x7F))]
    + [("", "  }"), ("a ", " b"), ("$$", ""), ("", "")]
)


def _runtime_values() -> dict[str, Runtime]:
    vals = [Runtime(pre + ref + post) for ref in REFS for pre, post in CONTEXTS]
    vals.append(Runtime("${NOMAD_IP_x}:${NOMAD_PORT_x}/${meta.zone}${node.class}"))
    return {f"k{i}": v for i, v in enumerate(vals)}


@requires_nomad
def test_runtime_references_are_written_as_nomad_users_write_them_and_read_back_exactly():
    values = _runtime_values()
    job = {"ID": "refs", "Meta": values}
    text = to_hcl(job)
    assert '"${node.datacenter}"' in text and '"${NOMAD_PORT_http}"' in text
    assert '"${NOMAD_IP_x}:${NOMAD_PORT_x}/${meta.zone}${node.class}"' in text
    assert nomad_parse(text)["Meta"] == values


@requires_nomad
def test_runtime_references_in_placement_fields_are_written_plainly():
    job = {
        "ID": "p",
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Constraints": [
                    {"LTarget": "${meta.zone}", "Operand": "=", "RTarget": "${node.class}"}
                ],
                "Spreads": [{"Attribute": "${attr.platform.aws.placement.availability-zone}"}],
                "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x"}}],
            }
        ],
    }
    text = to_hcl(job)
    assert 'attribute = "${meta.zone}"' in text and 'value     = "${node.class}"' in text
    # hyphenated: Nomad 1.10 would read `-` as a subtraction, so it stays escaped
    assert 'attribute = "$${attr.platform.aws.placement.availability-zone}"' in text
    back = nomad_parse(text)["TaskGroups"][0]
    assert back["Constraints"][0]["LTarget"] == "${meta.zone}"
    assert back["Spreads"][0]["Attribute"] == "${attr.platform.aws.placement.availability-zone}"


def test_manifest_values_stay_escaped():
    """The same text as a plain str (as every manifest value is) never has a live `${`."""
    for value in _runtime_values().values():
        literal = escape_string(str(value))
        assert re.search(r"(?<!\$)\$\{", literal.replace("$${", "")) is None, literal


@requires_nomad
def test_the_context_rules_are_needed():
    """What a writer without RUNTIME_REF's rules would get wrong, shown by Nomad's parser."""
    job = {"ID": "bad", "Meta": {"brace": "${node.class}}", "dollar": "$${node.class}"}}
    naive = to_hcl(job).replace("$${", "${")  # every reference written live
    back = nomad_parse(naive)["Meta"]
    assert back["brace"] != "${node.class}}"  # 1.5.8 doubles a brace that follows
    assert back["dollar"] != "$${node.class}"  # `$${` is the escape
    assert nomad_parse(to_hcl(job))["Meta"] == job["Meta"]


HEREDOCS = {
    "flush": ('{{ with service "db" }}\n  {{ .Address }}\n{{ end }}\n', "<<-EOT"),
    "blank lines": ("a\n\n  b\n\nc\n", "<<-EOT"),
    "all indented": ("  a\n    b\n", "<<EOT"),
    "backslash and quotes": ('say "hi" \\n C:\\path\\\n$${x} %{ y }\n', "<<-EOT"),
    "live-looking": ("${var.x}\n%{ if true }x%{ endif }\n${node.datacenter}\n", "<<-EOT"),
    "marker inside": ("EOT\n  EOT\nEOTX\n", "<<-EOTXX"),
    "unicode": ("zürich\n東京 😀\n", "<<-EOT"),
}
QUOTED = {  # multi-line, but a heredoc could not carry them exactly
    "no final newline": "a\nb",
    "whitespace-only line": "a\n   \nb\n",
    "tab": "a\n\tb\n",
    "cr": "a\r\nb\r\n",
    "invisible": "a\u202e\nb\n",
    "one line": "a\n",
}


@requires_nomad
def test_multiline_strings_are_heredocs_that_nomad_reads_exactly():
    values = {**{k: v for k, (v, _) in HEREDOCS.items()}, **QUOTED}
    job = {
        "ID": "h",
        "TaskGroups": [
            {
                "Name": "g",
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Config": {"image": "x"},
                        "Env": {
                            k.replace(" ", "_").replace("-", "_"): v for k, v in values.items()
                        },
                        "Templates": [
                            {"EmbeddedTmpl": v, "DestPath": f"local/{i}"}
                            for i, v in enumerate(values.values())
                        ],
                    }
                ],
            }
        ],
    }
    text = to_hcl(job)
    for name, (_value, head) in HEREDOCS.items():
        assert f"= {head}\n" in text, name
    for name, value in QUOTED.items():
        assert f"= {escape_string(value)}\n" in text, name
    task = nomad_parse(text)["TaskGroups"][0]["Tasks"][0]
    assert [t["EmbeddedTmpl"] for t in task["Templates"]] == list(values.values())
    assert task["Env"] == job["TaskGroups"][0]["Tasks"][0]["Env"]
    # and python-hcl2 (the parity helper) reads them the same
    assert hcl_to_job(text)["TaskGroups"][0]["Tasks"][0]["Env"] == task["Env"]


@requires_nomad
def test_a_one_line_template_body_is_a_heredoc_too():
    body = '{{ with nomadVar "nomad/jobs/x" }}PASSWORD={{ .password | toJSON }}{{ end }}\n'
    job = {
        "ID": "t",
        "TaskGroups": [
            {
                "Name": "g",
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Config": {"image": "x"},
                        "Env": {"ONE": "line\n"},
                        "Templates": [{"EmbeddedTmpl": body, "DestPath": "secrets/x.env"}],
                    }
                ],
            }
        ],
    }
    text = to_hcl(job)
    assert f"data = <<-EOT\n          {body}        EOT\n" in text
    assert 'ONE = "line\\n"' in text  # other one-line values stay quoted
    task = nomad_parse(text)["TaskGroups"][0]["Tasks"][0]
    assert task["Templates"][0]["EmbeddedTmpl"] == body and task["Env"] == {"ONE": "line\n"}


# --- every job a test renders is proven (conftest.py) ------------------------------------------


def _priority_zero(monkeypatch):
    """render_job that renders a job Nomad rejects (priority 0), wrapped under a fresh recorder."""
    import nomadgen.pipeline
    import nomadgen.render

    real = nomadgen.render.render_job

    def bad(*args, **kwargs):
        job = real(*args, **kwargs)
        return job._replace(api={**job.api, "Priority": 0})

    for module in (nomadgen.render, nomadgen.pipeline):
        monkeypatch.setattr(module, "render_job", bad)
    return RenderedJobs(monkeypatch)


def _dockland():
    from nomadgen.pipeline import build_resolution
    from nomadgen.settings import load_config

    cfg = load_config(env={})
    return build_resolution(str(ROOT / "examples/dockland.json"), cfg, name="dockland")[1], cfg


@requires_nomad
@pytest.mark.parametrize("fmt", ["json", "hcl"])
def test_the_recorder_sees_every_render_path_and_its_proof_fails_a_bad_job(fmt):
    """render.render and the CLI's render (pipeline.iter_files) are both recorded, each job
    once; a job Nomad rejects fails the proof with Nomad's message."""
    from typer.testing import CliRunner

    import nomadgen.render
    from nomadgen.cli import app

    plan, cfg = _dockland()
    with pytest.MonkeyPatch.context() as mp:
        rec = _priority_zero(mp)
        assert all(j.api["Priority"] == 0 for j in nomadgen.render.render(plan, cfg.render))
        res = CliRunner().invoke(app, ["render", str(ROOT / "examples/dockland.json"), "-f", fmt])
        assert res.exit_code == 0, res.output
    assert len(rec.jobs) == 10  # five jobs, rendered twice
    items = rec.items()
    assert sorted(name for name, _, _ in items) == [
        "app",
        "blog",
        "psql-app",
        "psql-blog",
        "worker",
    ]
    with pytest.raises(AssertionError, match="job priority must be between"):
        assert_proven(items)


@requires_nomad
def test_the_bench_manifest_is_proven():
    """dev/bench.py's generator (test_memory renders hundreds of its jobs, unproven there):
    its services' dependencies repeat every 60 (i % 4, i % 3, i % 5), so 60 cover each shape."""
    import nomadgen.render
    from dev.bench import manifest
    from nomadgen.catalog import Catalog
    from nomadgen.manifest import parse
    from nomadgen.resolve import resolve

    zones = ("zone-a", "zone-b", "zone-c")
    plan = resolve(parse(json.dumps(manifest(60)), "m.json", "m"), Catalog(), zones)
    jobs = nomadgen.render.render(plan)
    assert len(jobs) > 60  # with the dedicated sets' jobs
    assert_proven((j.id, to_hcl(j.api), j.api) for j in jobs)


@requires_nomad
def test_every_test_records_what_it_renders(_rendered_jobs_are_proven_by_nomad):
    """The autouse fixture of conftest.py is on for ordinary tests: what this test renders is
    proven when it ends."""
    import nomadgen.render

    plan, cfg = _dockland()
    jobs = nomadgen.render.render(plan, cfg.render)
    assert [j.api for j in _rendered_jobs_are_proven_by_nomad.jobs] == [j.api for j in jobs]


def test_no_test_holds_its_own_reference_to_render_job():
    """The recorder replaces render_job on nomadgen.render and nomadgen.pipeline; a test
    module that imported the function itself would render past it, unproven."""
    pattern = re.compile(r"from nomadgen\.(render|pipeline) import[^\n]*\brender_job\b")
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests").rglob("*.py"))
        if p != Path(__file__) and pattern.search(p.read_text(encoding="utf-8"))  # quotes it
    ]
    assert offenders == []


def test_the_guard_above_finds_an_import_by_name():
    pattern = re.compile(r"from nomadgen\.(render|pipeline) import[^\n]*\brender_job\b")
    assert pattern.search("from nomadgen.render import Shared, render_job\n")
    assert not pattern.search("import nomadgen.render\nnomadgen.render.render_job(plan)\n")


@requires_nomad
def test_a_newer_target_is_proven_on_its_1_5_part():
    from nomadgen.model import Job

    with pytest.MonkeyPatch.context() as mp:
        rec = RenderedJobs(mp)
    _, hcl, job = case_jobs("seed-example")[0]
    job = job["Job"]
    rec.jobs.append(Job(id="x", set="x", api={**job, "NodePool": "edge"}, spec_hash=""))
    ((_, hcl_back, api),) = rec.items()
    assert api == job and hcl_back == to_hcl(job)
    group = {**job["TaskGroups"][0], "Disconnect": {"LostAfter": 1}}  # 1.8, nested
    rec.jobs[:] = [Job(id="x", set="x", api={**job, "TaskGroups": [group]}, spec_hash="")]
    with pytest.raises(AssertionError, match="Disconnect: needs Nomad 1.8"):
        rec.items()
