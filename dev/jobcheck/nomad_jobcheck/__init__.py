"""nomad_jobcheck: Nomad's job validation rules, checked in Python (dev tool, not shipped).

    check_job(job, nomad_version)   every problem, in Nomad's words; [] when valid
    nomad_error_text(problems)      the text Nomad's API answers for them
    jobspec                         Nomad 1.5.8's own parser and validator (../shared/tools)

Modules: check.py (the entry), schema.py (the OpenAPI walk and typed fields), rules/ (Nomad's
Validate rules, one module per struct), versions.py (fields per Nomad release), values.py and
gosyntax.py (helpers), jobspec.py.

It imports nothing of nomadgen (tests/standin/test_standin_layers.py): it checks what nomadgen renders,
so it must not share nomadgen's ideas of a valid job.
"""

from .check import check_job, nomad_error_text
from .schema import openapi_path, reset_cache, schema_available
from .versions import FIELD_SINCE, OLDEST_NOMAD, newer_fields

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
