"""The rule part: Nomad's server-side validation (structs *.Validate and the job endpoint's
validators), one module per struct: job -> group -> network, service, volume, task; the
placement and policy blocks they share; base.Rules carries the job's facts and the problems."""

from __future__ import annotations

from .base import Rules
from .job import check_job


def run(job: dict, out: list[str]) -> None:
    """Append the rule problems of `job` to `out`, in Nomad's order and wording."""
    check_job(Rules(job, out))
