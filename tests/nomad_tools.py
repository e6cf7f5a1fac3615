"""Test helper: prove rendered jobs with Nomad 1.5.8's own code (dev/jobcheck/nomad_jobcheck/jobspec.py).

    requires_nomad                 skip marker (with the reason) where the binary is absent
    nomad_parse / nomad_decode / nomad_canonicalize / nomad_validate
    json_diff(a, b)                ["Job.TaskGroups[0].Count: 3 != 2", ...]
    dropped_keys(sent, decoded)    JSON paths Nomad's api.Job did not keep
    prove(hcl, job)                every problem of one job: parse, decode, canonicalize, validate
    assert_proven(pairs)           prove many jobs (concurrently), fail listing every problem
    RenderedJobs                   records every job nomadgen renders while active (conftest.py
                                   proves those of every test this way)

What `prove` requires, for a job rendered both as HCL and as JSON:
  1. Nomad's HCL2 parser reads the HCL; after Canonicalize it equals Canonicalize of the JSON,
     field by field (so the file a user reviews is exactly what submit sends);
  2. decoding the JSON into api.Job drops no key (a dropped key is a typo Nomad ignores);
  3. the server's Job.Validate() (and admission checks) accept it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from nomad_jobcheck import OLDEST_NOMAD, newer_fields
from nomad_jobcheck import jobspec as nomad_jobspec
from nomad_jobcheck.jobspec import JobspecError, binary, missing_reason

__all__ = [
    "JobspecError",
    "RenderedJobs",
    "assert_proven",
    "binary",
    "dropped_keys",
    "json_diff",
    "nomad_canonicalize",
    "nomad_decode",
    "nomad_parse",
    "nomad_validate",
    "prove",
    "requires_nomad",
    "split_hcl",
]

requires_nomad = pytest.mark.skipif(binary() is None, reason=missing_reason())

nomad_parse = nomad_jobspec.parse
nomad_decode = nomad_jobspec.decode
nomad_canonicalize = nomad_jobspec.canonicalize
nomad_validate = nomad_jobspec.validate


def _bare(job: dict) -> dict:
    return job["Job"] if set(job) == {"Job"} else job


def json_diff(a: Any, b: Any, path: str = "Job") -> list[str]:
    """Every difference between two JSON values, as `path: a != b` (or a missing key)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            here = f"{path}.{k}"
            if k not in b:
                out.append(f"{here}: only on the left ({a[k]!r})")
            elif k not in a:
                out.append(f"{here}: only on the right ({b[k]!r})")
            else:
                out.extend(json_diff(a[k], b[k], here))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=False))
            for d in json_diff(x, y, f"{path}[{i}]")
        ]
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items != {len(b)} items")
        return out
    if a != b or isinstance(a, bool) != isinstance(b, bool):
        return [f"{path}: {a!r} != {b!r}"]
    return []


def dropped_keys(sent: Any, decoded: Any, path: str = "Job") -> list[str]:
    """Paths of values in `sent` that api.Job did not keep (unknown or misspelt keys, values
    of the wrong shape). Null means absent in Nomad's API, so a null sent is not checked."""
    if isinstance(sent, dict):
        if not isinstance(decoded, dict):
            return [f"{path}: sent an object, Nomad kept {decoded!r}"]
        out = []
        for k, v in sent.items():
            if v is None:
                continue
            if k not in decoded:
                out.append(f"{path}.{k}: dropped by Nomad's decoder (unknown key)")
            else:
                out.extend(dropped_keys(v, decoded[k], f"{path}.{k}"))
        return out
    if isinstance(sent, list):
        if not isinstance(decoded, list) or len(decoded) != len(sent):
            return [f"{path}: sent {len(sent)} items, Nomad kept {decoded!r}"]
        return [
            d
            for i, (x, y) in enumerate(zip(sent, decoded, strict=True))
            for d in dropped_keys(x, y, f"{path}[{i}]")
        ]
    if sent != decoded or isinstance(sent, bool) != isinstance(decoded, bool):
        return [f"{path}: sent {sent!r}, Nomad kept {decoded!r}"]
    return []


def prove(hcl: str | None, job: dict) -> list[str]:
    """Every problem Nomad's code finds with one job (see the module text); [] when proven."""
    job = _bare(job)
    problems: list[str] = []
    try:
        problems += dropped_keys(job, nomad_decode(job))
        from_json = nomad_canonicalize(job)
    except JobspecError as e:
        return [f"JSON: {e}"]
    if hcl is not None:
        try:
            from_hcl = nomad_parse(hcl, canonicalize=True)
        except JobspecError as e:
            problems.append(f"HCL does not parse: {e}")
        else:
            problems += [
                f"HCL != JSON after Canonicalize: {d}" for d in json_diff(from_hcl, from_json)
            ]
    ok, message = nomad_validate(job)
    if not ok:
        problems.append(f"Nomad rejects it: {message}")
    return problems


# One proof per distinct (HCL, JSON): rendering tests render the same jobs again and again.
_PROVEN: dict[str, list[str]] = {}


def _key(hcl: str | None, job: dict) -> str:
    blob = json.dumps([hcl, job], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def _prove_cached(item: tuple[str, str | None, dict]) -> tuple[str, list[str]]:
    name, hcl, job = item
    key = _key(hcl, job)
    if key not in _PROVEN:
        _PROVEN[key] = prove(hcl, job)
    return name, _PROVEN[key]


def assert_proven(items: Iterable[tuple[str, str | None, dict]]) -> None:
    """items: (name, HCL text or None, job). Fails listing every problem of every job."""
    if binary() is None:
        pytest.skip(missing_reason())
    items = list(items)
    assert items, "nothing to prove"
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_prove_cached, items))
    failures = [f"{name}: {p}" for name, problems in results for p in problems]
    assert not failures, "Nomad's own code disagrees:\n" + "\n".join(failures)


def split_hcl(text: str) -> dict[str, str]:
    """`nomadgen render -f hcl` output (several jobs) -> {job id: its file's text}."""
    return dict(re.findall(r"# --- (\S+)\.nomad\.hcl\n(.*?)(?=\n# --- |\Z)", text, re.S))


class RenderedJobs:
    """Records every job nomadgen renders while active: render.render_job is the one function
    each render path calls (render.render, pipeline.build and pipeline.iter_files, which CLI
    render, plan and submit use), so it is wrapped where those modules look it up. Recording
    only keeps a reference (no garbage: tests/test_memory.py counts it); `items()` feeds
    assert_proven, one entry per distinct job. Rendered jobs are read-only (render.py).

    A job with fields newer than Nomad 1.5 (only a target's `NodePool` can be rendered) is
    proven without them: 1.5.8's parser rejects them and jobcheck checks them against the
    target (tests/test_versions.py)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import nomadgen.pipeline
        import nomadgen.render

        self.jobs: list[Any] = []
        real = nomadgen.render.render_job

        def recording(*args: Any, **kwargs: Any) -> Any:
            job = real(*args, **kwargs)
            self.jobs.append(job)
            return job

        for module in (nomadgen.render, nomadgen.pipeline):
            monkeypatch.setattr(module, "render_job", recording)

    def items(self) -> list[tuple[str, str | None, dict]]:
        from nomadgen.hcl import to_hcl

        out: dict[str, tuple[str, str | None, dict]] = {}
        for job in self.jobs:
            newer = newer_fields(job.api, OLDEST_NOMAD)
            top = {p.split(":", 1)[0].removeprefix("Job.") for p in newer}
            # nested: no render path writes one yet; prove it some other way when one does
            assert not any("." in k or "[" in k for k in top), f"{job.id}: {newer}"
            api = {k: v for k, v in job.api.items() if k not in top}
            hcl = to_hcl(api)
            out.setdefault(_key(hcl, api), (job.id, hcl, api))
        return list(out.values())
