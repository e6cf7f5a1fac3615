"""Nomad namespaces and the variable path rules, for the stand-in.

Follows Nomad v1.10:
- command/agent/namespace_endpoint.go: GET /v1/namespaces, GET/PUT/POST/DELETE
  /v1/namespace/:name ("Namespace not found" 404, "Namespace name does not match request path").
- nomad/namespace_endpoint.go: upsert/delete need a management token; "default" cannot be
  deleted; a namespace with live jobs, allocations or variables cannot be deleted.
- nomad/structs/structs.go (Namespace.Validate): names match ^[a-zA-Z0-9-]{1,128}$.
- nomad/job_endpoint_validators.go: a job in a namespace that does not exist is refused at
  admission: HTTP 500, go-multierror text `job "x" is in nonexistent namespace "y"`.
- nomad/structs/variables.go (ValidatePath): the reserved `nomad/` tree.
- Variables are NOT checked against the namespace table: Nomad CE writes a variable into a
  namespace that does not exist (hashicorp/nomad#15379, nomad/state/state_store_variables.go).
"""

from __future__ import annotations

import re

VALID_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")
VALID_VAR_PATH = re.compile(r"^[a-zA-Z0-9\-_~/]{1,128}$")


def namespace_record(name: str, description: str = "", meta=None, index: int = 1) -> dict:
    return {
        "Name": name,
        "Description": description,
        "Quota": "",
        "Meta": meta or None,
        "Capabilities": None,
        "NodePoolConfiguration": None,
        "VaultConfiguration": None,
        "ConsulConfiguration": None,
        "CreateIndex": index,
        "ModifyIndex": index,
    }


def default_namespaces() -> dict[str, dict]:
    return {"default": namespace_record("default", "Default shared namespace")}


def var_path_error(path: str) -> str:
    """ "" if `path` is a valid variable path, else Nomad's error text (ValidatePath)."""
    if not path:
        return "variable requires path"
    if not VALID_VAR_PATH.match(path):
        return f'invalid path "{path}"'
    parts = path.split("/")
    if parts[0] != "nomad":
        return ""
    if len(parts) == 1:
        return (
            '"nomad" is a reserved top-level directory path, but you may write variables '
            'to "nomad/jobs", "nomad/job-templates", or below'
        )
    if parts[1] == "jobs":
        return ""
    if parts[1] == "job-templates" and len(parts) == 3:
        return ""
    if parts[1] == "job-templates":
        return (
            '"nomad/job-templates" is a reserved directory path, but you may write '
            "variables at the level below it, for example, "
            '"nomad/job-templates/template-name"'
        )
    return (
        'only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths '
        'under the top-level "nomad" directory'
    )


def upsert(state, data: dict, path_name: str | None) -> None:
    """PUT /v1/namespace[/:name]. Raises NomadError like the agent and the server do."""
    from .nomad import NomadError, multierror

    name = data.get("Name") or ""
    if path_name is not None and name != path_name:
        raise NomadError(400, "Namespace name does not match request path")
    problems = []
    if not VALID_NAME.match(name):
        problems.append(f'invalid name "{name}". Must match regex ^[a-zA-Z0-9-]{{1,128}}$')
    description = data.get("Description") or ""
    if len(description) > 256:
        problems.append("description longer than 256")
    if problems:
        raise NomadError(500, f'Invalid namespace "{name}": ' + multierror(*problems))
    with state.lock:
        index = state.bump()
        old = state.namespaces.get(name)
        rec = namespace_record(name, description, data.get("Meta"), index)
        if old is not None:
            rec["CreateIndex"] = old["CreateIndex"]
        state.namespaces[name] = rec


def delete(state, name: str) -> None:
    from .nomad import NomadError, multierror

    if name == "default":
        raise NomadError(500, "can not delete default namespace")
    with state.lock:
        if name not in state.namespaces:
            return  # Nomad skips namespaces that do not exist
        problems = []
        if any(k[0] == name and not rec.job.get("Stop") for k, rec in state.jobs.items()):
            problems.append(f'namespace "{name}" has non-terminal jobs in regions: [global]')
        if any(a.namespace == name and not a.terminal for a in state.allocs.values()):
            problems.append(f'namespace "{name}" has non-terminal allocations in regions: [global]')
        if any(k[0] == name for k in state.variables):
            problems.append(
                f'namespace "{name}" has variables associated with it in regions: [global]'
            )
        if problems:
            raise NomadError(500, multierror(*problems))
        del state.namespaces[name]
        state.bump()


def job_namespace_error(state, job: dict) -> str:
    """Admission check (job_endpoint_validators.go): "" when the job's namespace exists."""
    ns = job.get("Namespace") or "default"
    if ns in state.namespaces:
        return ""
    return f'job "{job.get("ID")}" is in nonexistent namespace "{ns}"'
