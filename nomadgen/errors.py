"""Every error nomadgen raises on purpose, and the exit code each one ends the CLI with.

    NomadgenError               subject, details, location, hint
    ├── ManifestError           3   the manifest file: not found, syntax, invalid fields
    ├── TemplateError           3   a service template (packaged or from --templates)
    ├── ResolutionError         4   unknown set, cycle, name collision, more than the cluster offers
    ├── RenderError             5   a value Nomad cannot take
    ├── ConfigError             6   addresses, tokens, certificates, zones
    └── BackendError            7   talking to Nomad or Consul
        ├── Unavailable         7   connection refused, timeout, TLS failure, 5xx
        ├── PermissionDenied    8   403 / ACL token refused
        ├── Rejected            9   the server refused the request (its message verbatim)
        ├── Conflict           10   check-and-set lost, or the job is not ours
        ├── NotHealthy         11   a deployment failed, or a check did not pass in time
        ├── Locked             13   another nomadgen run holds the manifest's lock
        └── Unplaceable        15   the preflight, or Nomad, cannot place a job: the reasons
    DataLoss                   14   submit: the change would lose a stateful set's data
    NothingOwned               16   destroy: the manifest owns nothing on the cluster
    InterfaceMissing           12   nomadgen.discovery: no such interface or no healthy instance

`nomadgen plan` ends with 255 on any error, like `nomad job plan` (0 no change, 1 changes).
`nomadgen status` ends with 17 when a set is degraded, pending, drifted or missing.
Third-party exceptions never leave nomadgen.backends: they are translated there with `raise ... from`.
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_PLAN_ERROR = 255
EXIT_INTERNAL = 70
EXIT_NOT_CONVERGED = 17  # status: a set is degraded, pending, drifted or missing
MAX_PROBLEMS_SHOWN = 20  # then "and N more problems": error output stays bounded
MAX_LINE = 500  # characters of one printed line


class Problem(NamedTuple):
    """One thing wrong, where it is, and what to do about it."""

    message: str
    location: str = ""  # "file:line:col" or "file: key.path"
    hint: str = ""

    def render(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class NomadgenError(Exception):
    exit_code = 1
    kind = "error"

    def __init__(
        self,
        subject: str,
        problems: list[Problem] | tuple[Problem, ...] = (),
        *,
        hint: str = "",
        location: str = "",
    ) -> None:
        super().__init__(subject)
        self.subject = subject
        self.problems = tuple(problems)
        self.hint = hint
        self.location = location

    def lines(self) -> list[str]:
        """The message as printed: subject, one block per problem, a closing hint."""
        head = f"{self.location}: {self.subject}" if self.location else self.subject
        out = [head]
        for p in self.problems[:MAX_PROBLEMS_SHOWN]:
            out.extend("  " + line for line in p.render().splitlines())
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        if more > 0:
            out.append(f"  and {more:,} more problem{'s' if more > 1 else ''}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return [line if len(line) <= MAX_LINE else line[:MAX_LINE] + " ..." for line in out]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class ManifestError(NomadgenError):
    exit_code = 3
    kind = "manifest"


class TemplateError(NomadgenError):
    exit_code = 3
    kind = "template"


class ResolutionError(NomadgenError):
    exit_code = 4
    kind = "resolution"


class RenderError(NomadgenError):
    exit_code = 5
    kind = "render"


class ConfigError(NomadgenError):
    exit_code = 6
    kind = "config"


class BackendError(NomadgenError):
    exit_code = 7
    kind = "backend"


class Unavailable(BackendError):
    exit_code = 7
    kind = "unavailable"


class PermissionDenied(BackendError):
    exit_code = 8
    kind = "permission"


class Rejected(BackendError):
    exit_code = 9
    kind = "rejected"


class Conflict(BackendError):
    exit_code = 10
    kind = "conflict"


class NotHealthy(BackendError):
    exit_code = 11
    kind = "not-healthy"


class Locked(BackendError):
    exit_code = 13
    kind = "locked"


class DataLoss(NomadgenError):
    """submit: the change would replace a stateful set's instances without their data."""

    exit_code = 14


class NothingOwned(NomadgenError):
    """destroy: no job, service, key, policy or credential of the manifest is on the cluster."""

    exit_code = 16
    kind = "nothing-owned"


class Unplaceable(BackendError):
    exit_code = 15
    kind = "unplaceable"


EXIT_CODES = {
    "ok": EXIT_OK,
    "plan: changes present": EXIT_CHANGES,
    "usage (bad flag or argument)": EXIT_USAGE,
    "manifest or template invalid": ManifestError.exit_code,
    "resolution failed": ResolutionError.exit_code,
    "render failed": RenderError.exit_code,
    "configuration invalid": ConfigError.exit_code,
    "Nomad/Consul unavailable": Unavailable.exit_code,
    "permission denied": PermissionDenied.exit_code,
    "request rejected by the server": Rejected.exit_code,
    "conflict (check-and-set lost, not ours)": Conflict.exit_code,
    "not healthy (deployment failed, or not healthy in time)": NotHealthy.exit_code,
    "submit: the manifest does not fit (preflight), or Nomad cannot place a job": Unplaceable.exit_code,
    "discovery: the interface is missing": 12,
    "another nomadgen run holds the manifest's lock": Locked.exit_code,
    "submit: the change would lose a stateful set's data (--allow-data-loss)": DataLoss.exit_code,
    "destroy: the manifest owns nothing on the cluster": NothingOwned.exit_code,
    "status: a set is degraded, pending, drifted or missing": EXIT_NOT_CONVERGED,
    "internal error (a bug: please report)": EXIT_INTERNAL,
    "plan: any error": EXIT_PLAN_ERROR,
}
