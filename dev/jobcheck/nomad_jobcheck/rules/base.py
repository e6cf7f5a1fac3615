"""What every rules module shares: the job's facts and the problem list with Nomad's nesting.

Nomad's Validate methods wrap their children's errors ("Task group web validation failed: Task
app validation failed: ..."): `push`/`pop` keep that chain, `add` writes a problem under it.
"""

from __future__ import annotations

from ..values import str_at


class Rules:
    """Nomad's server-side validation (structs *.Validate + the job endpoint's validators)."""

    def __init__(self, job: dict, out: list[str]):
        self.job = job
        self.out = out
        self.prefix: list[str] = []
        jtype = job.get("Type")
        self.jtype = jtype if isinstance(jtype, str) else "service"
        job_id = str_at(job, "ID")
        name = job.get("Name")
        self.name = name if isinstance(name, str) else job_id

    # -- output helpers
    def add(self, msg: str) -> None:
        self.out.append("".join(self.prefix) + msg)

    def push(self, prefix: str) -> None:
        self.prefix.append(prefix)

    def pop(self) -> None:
        self.prefix.pop()

    def add_all(self, prefix: str, errors: list[str]) -> None:
        for err in errors:
            self.add(prefix + err)
