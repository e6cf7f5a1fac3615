"""Strict checker for Nomad jobs in the JSON API form (what ``POST /v1/jobs`` takes in ``"Job"``).

Nomad cannot run here, so this stands in for its server-side validation. Two parts:

* schema part (schema.py): the job is walked against Nomad's published OpenAPI spec, made
  strict (unknown keys, types, integer ranges; ``null`` means "absent").
* rule part (rules/, one module per struct): Nomad's own ``Job/TaskGroup/Task/Service/...Validate``
  rules, with Nomad's wording, applied after the defaults ``api.*.Canonicalize`` would fill in.
  It needs no spec.

Problems are flat strings. Rule problems carry Nomad's nesting as a prefix chain
("Task group web validation failed: Task app validation failed: ..."); schema and typing problems
name a JSON path ("Job.TaskGroups[0].Services[1].Name: ...").
"""

from __future__ import annotations

from typing import Any

from . import rules
from .schema import check_schema, check_typed_fields
from .values import type_name
from .versions import newer_fields


def check_job(job: Any, nomad_version: tuple[int, int] | None = None) -> list[str]:
    """Return the problems with a bare Job dict (empty list = Nomad would accept it).
    With `nomad_version`, fields that release does not have are problems too."""
    if not isinstance(job, dict):
        return [f"Job: expected a JSON object, got {type_name(job)}"]
    if set(job) == {"Job"} and isinstance(job["Job"], dict):
        return ['Job: got the request wrapper {"Job": ...}; pass the bare Job object']
    out: list[str] = []
    check_schema(job, out)
    check_typed_fields(job, out)
    rules.run(job, out)
    if nomad_version is not None:
        out.extend(newer_fields(job, nomad_version))
    return out


def nomad_error_text(problems: list[str]) -> str:
    """The plain-text body Nomad sends with HTTP 500 (hashicorp/go-multierror list format)."""
    if not problems:
        return ""
    if len(problems) == 1:
        return f"1 error occurred:\n\t* {problems[0]}\n\n"
    points = "\n\t".join(f"* {p}" for p in problems)
    return f"{len(problems)} errors occurred:\n\t{points}\n\n"
