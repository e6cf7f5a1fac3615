"""Rendering keeps nothing alive past the job it belongs to.

The CLI runs the pure core with the cyclic collector off (start-up and linear scale), so any
reference cycle made while rendering stays in memory until exit: at 50k services that was 2.3 GB.
These tests count what the collector finds after a render with the collector off: it must not
grow with the manifest (not a timing test: object counts are exact)."""

from __future__ import annotations

import gc
import json

import pytest

from dev.bench import manifest
from nomadgen.pipeline import build, build_resolution, render_files
from nomadgen.render import pretty_json
from nomadgen.settings import load_config

# Hundreds of jobs of dev/bench's generator per test; its shapes repeat every 60 services and
# test_nomad_proof.py::test_the_bench_manifest_is_proven proves them.
pytestmark = pytest.mark.unproven("dev/bench manifests: proven in test_nomad_proof.py")


def _garbage_after(fn) -> int:
    gc.collect()
    gc.disable()
    try:
        fn()
        return gc.collect()
    finally:
        gc.enable()


def _manifest_file(tmp_path, n: int) -> str:
    path = tmp_path / f"m{n}.json"
    path.write_text(json.dumps(manifest(n)))
    return str(path)


@pytest.mark.parametrize("fmt", ["json", "hcl"])
def test_render_leaves_no_cyclic_garbage_that_grows_with_the_manifest(tmp_path, fmt):
    cfg = load_config(env={})
    counts = {}
    for n in (100, 200):
        path = _manifest_file(tmp_path, n)

        def run(path=path, n=n):
            _, plan = build_resolution(path, cfg, name="m")
            files = render_files(plan, cfg.render, fmt)
            assert len(files) > n // 2

        counts[n] = _garbage_after(run)
    assert counts[200] <= counts[100], counts
    assert counts[200] < 50, counts


def test_build_and_interfaces_leave_no_cyclic_garbage(tmp_path):
    cfg = load_config(env={})
    counts = {
        n: _garbage_after(lambda n=n: build(_manifest_file(tmp_path, n), cfg, name="m"))
        for n in (100, 200)
    }
    assert counts[200] <= counts[100] and counts[200] < 50, counts


def test_the_check_catches_a_self_referencing_encoder():
    """Known-bad: the old closure-based encoder (a nested function calling itself) leaks one
    cycle per call, and the measurement above sees it."""

    def leaky(obj):
        out = []

        def enc(o):
            out.append(json.dumps(o) if not isinstance(o, dict) else "")
            if isinstance(o, dict):
                for v in o.values():
                    enc(v)

        enc(obj)
        return "".join(out)

    assert _garbage_after(lambda: [leaky({"a": {"b": 1}}) for _ in range(100)]) >= 100
    assert _garbage_after(lambda: [pretty_json({"a": {"b": 1}}) for _ in range(100)]) == 0


def test_hcl_of_blocks_shared_across_jobs_is_the_same_as_written_alone(tmp_path):
    """render_files writes a block that many jobs share once and reuses its lines; every file
    must still be exactly what to_hcl writes for that job on its own."""
    from nomadgen.hcl import to_hcl
    from nomadgen.render import render

    cfg = load_config(env={})
    _, plan = build_resolution(_manifest_file(tmp_path, 60), cfg, name="m")
    files = render_files(plan, cfg.render, "hcl")
    alone = {j.id + ".nomad.hcl": to_hcl(j.api) for j in render(plan, cfg.render)}
    assert files == alone
    assert len(files) > 30
