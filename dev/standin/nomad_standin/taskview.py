"""What a task sees: its environment and its rendered templates (for tests and `/_standin/task`).

The environment follows client/taskenv/env.go: NOMAD_* variables of the allocation, its ports
(network.port_env), the task's `env` (interpolated) and, overriding them, the KEY=VALUE lines of
templates with `env = true` (client/allocrunner/taskrunner/template/template.go).
Templates are rendered with gotmpl.py against the stand-in's Consul and Nomad variables; a
`nomadVar` read goes through the task's workload identity (acl.workload_may_read_var): without
a policy attached to its job it only reads `nomad/jobs/<job>[/<group>[/<task>]]`, else
consul-template gets `403 (Permission denied)` and the template fails.
"""

from __future__ import annotations

from . import acl as acl_mod
from . import consul_template, gotmpl


class Denied(consul_template.Blocked):
    """A template read refused by ACLs; `event` is the task event Nomad shows."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.event = f"Template failed: {text}"


def var_denied_text(path: str, namespace: str) -> str:
    return (
        f"nomad.var.get({path}@{namespace}.global): Unexpected response code: 403 "
        "(Permission denied)"
    )


def var_ref(ref: str, default_ns: str) -> tuple[str, str]:
    """consul-template's `nomadVar "path@namespace.region"` -> (path, namespace)."""
    path, _, rest = ref.partition("@")
    return path, (rest.split(".", 1)[0] or default_ns) if rest else default_ns


def check_var(state, alloc, task: str, path: str, namespace: str | None = None) -> None:
    """Raise Denied unless the task's workload identity may read variable `path`."""
    ns = namespace or alloc.namespace
    if task and not acl_mod.workload_may_read_var(state, alloc, task, path, ns):
        raise Denied(var_denied_text(path, ns))


def fetcher(state, alloc, task: str):
    """gotmpl's data source for one task: Consul, and Nomad variables through its identity."""
    consul = state.consul

    def fetch(fn: str, arg: str):
        if fn in ("nomadVar", "nomadVarExists"):
            path, ns = var_ref(arg, alloc.namespace)
            if fn == "nomadVarExists":
                try:
                    check_var(state, alloc, task, path, ns)
                except Denied:
                    return False
                return (ns, path) in state.variables
            check_var(state, alloc, task, path, ns)
            var = state.variables.get((ns, path))
            if var is None:
                raise consul_template.Blocked(f"nomad.var.block({arg})")
            return dict(var["Items"])
        if consul is None:
            return None
        if fn in ("key", "keyOrDefault", "keyExists"):
            value = consul.kv_get(arg)
            if fn == "keyExists":
                return value is not None
            if value is None and fn == "key":
                raise consul_template.Blocked(f"kv.block({arg})")
            return None if value is None else value.decode("utf-8", "replace")
        if fn == "service":
            name = arg.split("|")[0].split("@")[0].split("~")[0].split("?")[0].split(".")[-1]
            return [
                {
                    "Node": i["node"],
                    "Address": i["address"],
                    "Port": i["port"],
                    "ID": i["id"],
                    "Name": name,
                    "Tags": list(i["tags"] or []),
                    "ServiceMeta": dict(i.get("meta") or {}),
                }
                for i in consul_template._service(arg, "", consul, alloc.node) or []
            ]  # noqa: SLF001
        if fn in ("ls", "safeLs", "tree", "safeTree"):
            with consul._lock:  # noqa: SLF001 - no public KV listing in the state contract
                _, entries = consul._kv.list(arg)  # noqa: SLF001
            prefix = arg.rstrip("/") + "/" if arg else ""
            return [
                {"Key": e["Key"][len(prefix) :], "Value": bytes(e["Value"]).decode()}
                for e in entries
                if fn.endswith("ree") or "/" not in e["Key"][len(prefix) :]
            ]
        raise gotmpl.Unsupported(f"function {fn!r}")

    return fetch


def task_view(state, alloc_id: str, task_name: str) -> dict:
    """{"Env", "Templates": [{"DestPath", "Envvars", "Rendered" | "Error", "Denied"}], ...}."""
    with state.lock:
        a = state.allocs.get(alloc_id)
        if a is None:
            raise KeyError(f"no allocation {alloc_id}")
        group = next((g for g in a.job.get("TaskGroups") or [] if g["Name"] == a.group), {})
        task = next((t for t in group.get("Tasks") or [] if t["Name"] == task_name), None)
        if task is None:
            raise KeyError(f"allocation {alloc_id} has no task {task_name}")
        full = state.runtime_env(a, task)
        env = {k: v for k, v in full.items() if "." not in k}
        env.update(NOMAD_ALLOC_DIR="/alloc", NOMAD_TASK_DIR="/local", NOMAD_SECRETS_DIR="/secrets")
        fetch = fetcher(state, a, task_name)
        rendered: list[dict] = []
        template_env: dict[str, str] = {}
        for tmpl in task.get("Templates") or []:
            entry: dict = {
                "DestPath": tmpl.get("DestPath") or "",
                "Envvars": bool(tmpl.get("Envvars")),
                "Denied": False,
            }
            try:
                # `env` in a template also sees the node's attributes (TaskEnv.All, taskenv/env.go)
                text = gotmpl.Renderer(fetch, {**full, **env}).render(
                    tmpl.get("EmbeddedTmpl") or ""
                )
                entry["Rendered"] = text
                if entry["Envvars"]:
                    template_env.update(gotmpl.env_lines(text))
            except Denied as why:
                entry.update(Error=why.event, Denied=True)
            except consul_template.Blocked as why:
                entry["Error"] = f"Missing: {why}"
            except gotmpl.Unsupported as why:
                entry["Error"] = f"stand-in cannot render this template: {why}"
            rendered.append(entry)
        env.update(template_env)
        run = a.tasks.get(task_name)
        return {
            "AllocID": a.id,
            "AllocName": a.name,
            "JobID": a.job_id,
            "Group": a.group,
            "Task": task_name,
            "Node": a.node["Name"],
            "State": run.state if run else "",
            "Env": dict(sorted(env.items())),
            "Templates": rendered,
        }
