"""nomad_jobcheck: Nomad's job validation rules, checked in Python (dev tool, not shipped).

    check_job(job, nomad_version)   every problem, in Nomad's words; [] when valid
    nomad_error_text(problems)      the text Nomad's API answers for them
    jobspec                         Nomad 1.5.8's own parser and validator (../shared/tools)

It imports nothing of nomadgen (tests/standin/test_standin_layers.py): it checks what nomadgen renders,
so it must not share nomadgen's ideas of a valid job.
"""

from .check import (
    FIELD_SINCE,
    OLDEST_NOMAD,
    check_job,
    newer_fields,
    nomad_error_text,
    openapi_path,
    reset_cache,
    schema_available,
)

__all__ = [
    "FIELD_SINCE",
    "OLDEST_NOMAD",
    "check_job",
    "newer_fields",
    "nomad_error_text",
    "openapi_path",
    "reset_cache",
    "schema_available",
]
