"""How each case's observed.json was made: the cluster as a push of BASE left it (every job live,
owned, healthy; interfaces, push record and external services in KV and the agent), then the
case's edits (a change by hand, a failed deployment, a foreign job ...), and Nomad's dry-run plan
of each desired job against the live one, as Nomad's plan endpoint words it (Diff with the
groups' Updates, Annotations). The test reads only the files; this writes them:

    .venv/bin/python -m tests.diff_cases.make_observed [CASE ...]

Then review the observed.json diff, and rewrite the expectations with NOMADGEN_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nomadgen.diff import credentials_needed
from nomadgen.model import EXTERNAL
from nomadgen.names import external_id, kv_root, push_key
from nomadgen.pipeline import build_resolution
from nomadgen.render import META_MANIFEST, META_SET, interfaces, pretty_json, render
from nomadgen.settings import load_config

HERE = Path(__file__).parent

BASE: dict[str, Any] = {
    "web": {"depends": ["api"], "ports": {"http": 8080}},
    "api": {
        "depends": ["psql", "search", "redis", "legacy"],
        "ports": {"http": 8000},
        "env": {"SEARCH_NODES": "${search.addrs}"},
        "wiring": {"redis": {"change_mode": "noop"}},
    },
    "search": {"image": "example/search:1", "ports": {"http": 9200}, "count": 3},
    "report": {"depends": ["search"], "image": "example/report:1"},
    "legacy": {"external": {"address": "10.0.0.5", "port": 5432}, "protocol": "postgresql"},
}


def built(doc: dict[str, Any], opts: dict[str, Any], case: Path) -> tuple[Any, list[Any], Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        cfg = load_config(
            zones=",".join(opts.get("zones", ["zone-a", "zone-b", "zone-c"])),
            config=str(case / opts["config"]) if "config" in opts else None,
            environment=opts.get("env"),
            env={},
        )
        manifest, plan = build_resolution(str(path), cfg, opts.get("name", "shop"), cfg.zones)
    return plan, render(plan, cfg.render), (cfg, manifest)


def synced(doc: dict[str, Any], opts: dict[str, Any], case: Path) -> dict[str, Any]:
    """What is after a push of `doc`: live jobs (API form kept under "_live" for the edits and
    the plans), KV, external services, credentials; deployments successful, allocations running."""
    plan, jobs, (cfg, manifest) = built(doc, opts, case)
    root = kv_root(cfg.render.kv_prefix, plan.manifest)
    from nomadgen.diff import plan_record

    kv = {
        e.key: {"value": e.value.decode(), "index": 40 + i}
        for i, e in enumerate(interfaces(plan, cfg.render))
    }
    kv[push_key(root, "manifest")] = {"value": manifest.text, "index": 90}
    kv[push_key(root, "plan")] = {
        "value": plan_record(plan, jobs, cfg.render).decode(),
        "index": 91,
    }
    services = {}
    for s in plan.sets:
        if s.kind == EXTERNAL:
            sid = external_id(plan.manifest, s.job_id)
            services[sid] = {
                "ID": sid,
                "Service": s.job_id,
                "Address": s.external[0],
                "Port": s.external[1],
                "Tags": [f"set-{s.job_id}", "external"],
                "Meta": {META_MANIFEST: plan.manifest, META_SET: s.name},
            }
    obs: dict[str, Any] = {
        "manifest": plan.manifest,
        "jobs": {},
        "plans": {},
        "kv": kv,
        "services": services,
        "variables": {path: True for path, _ in credentials_needed(plan)},
        "policies": None,
        "deployments": {},
        "allocations": {},
        "groups": {},
        "passing": {},
        "nodes": [],
        "_live": {},
    }
    for n, j in enumerate(jobs):
        live(obs, j.api, 100 + 10 * n)
    return obs


def live(obs: dict[str, Any], api: dict[str, Any], index: int, healthy: bool = True) -> None:
    """A job as Nomad holds it: stub, latest deployment, allocations."""
    jid = api["ID"]
    obs["_live"][jid] = copy.deepcopy(api)
    obs["jobs"][jid] = {
        "ID": jid,
        "Name": jid,
        "Namespace": api.get("Namespace") or "default",
        "Type": "service",
        "Status": "running",
        "Stop": False,
        "Version": 0,
        "JobModifyIndex": index,
        "Meta": api.get("Meta"),
    }
    groups = {g["Name"]: int(g.get("Count") or 0) for g in api["TaskGroups"]}
    obs["groups"][jid] = groups
    dep = f"{index:08x}-0000-4000-8000-{index:012x}"
    obs["deployments"][jid] = {
        "ID": dep,
        "JobID": jid,
        "JobVersion": 0,
        "JobSpecModifyIndex": index,
        "Status": "successful" if healthy else "running",
        "StatusDescription": "Deployment completed successfully",
    }
    # The n-th allocation of the job on node n % 3 + 1: one node per zone, and zone groups
    # come in the zones' order.
    obs["allocations"][jid] = [
        {
            "ID": f"{index:08x}-{n:04x}-4000-8000-{(index * 100 + n):012x}",
            "Name": f"{jid}.{g}[{k}]",
            "JobID": jid,
            "JobVersion": 0,
            "TaskGroup": g,
            "DeploymentID": dep,
            "NodeName": f"node-{n % 3 + 1}",
            "DesiredStatus": "run",
            "ClientStatus": "running",
        }
        for n, (g, k) in enumerate((g, k) for g, count in groups.items() for k in range(count))
    ]


def by_hand(obs: dict[str, Any], jid: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """A change made outside nomadgen: a new job version, no deployment of nomadgen's."""
    api = obs["_live"][jid]
    edit(api)
    stub = obs["jobs"][jid]
    stub["Version"] += 1
    stub["JobModifyIndex"] += 5
    obs["groups"][jid] = {g["Name"]: int(g.get("Count") or 0) for g in api["TaskGroups"]}


def _s(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))


def _fields(old: dict[str, Any], new: dict[str, Any], skip: set[str]) -> list[dict[str, Any]]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k in skip or old.get(k) == new.get(k):
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            for kk in sorted(set(a) | set(b)):
                if a.get(kk) != b.get(kk):
                    out.append(_field(f"{k}[{kk}]", a.get(kk), b.get(kk)))
        else:
            out.append(_field(k, a, b))
    return out


def _field(name: str, a: Any, b: Any) -> dict[str, Any]:
    t = "Added" if a is None else "Deleted" if b is None else "Edited"
    return {
        "Type": t,
        "Name": name,
        "Old": "" if a is None else _s(a),
        "New": "" if b is None else _s(b),
        "Annotations": None,
    }


def nomad_plan(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Nomad's dry run of `new` against the live `old`: task changes replace allocations
    (create/destroy update), other group changes are in place, a count change creates or
    destroys the difference."""
    groups, annotations = [], {}
    for g in new["TaskGroups"]:
        og = next((x for x in (old or {}).get("TaskGroups") or () if x["Name"] == g["Name"]), None)
        n = int(g.get("Count") or 0)
        if og is None:
            groups.append(
                {
                    "Type": "Added",
                    "Name": g["Name"],
                    "Fields": [],
                    "Objects": [],
                    "Tasks": [],
                    "Updates": {"create": n},
                }
            )
            annotations[g["Name"]] = {
                "Place": n,
                "Ignore": 0,
                "Stop": 0,
                "InPlaceUpdate": 0,
                "DestructiveUpdate": 0,
            }
            continue
        o = int(og.get("Count") or 0)
        tasks = []
        for t in g["Tasks"]:
            ot = next((x for x in og["Tasks"] if x["Name"] == t["Name"]), {})
            if t != ot:
                tasks.append(
                    {
                        "Type": "Edited",
                        "Name": t["Name"],
                        "Annotations": ["forces create/destroy update"],
                        "Fields": _fields(ot, t, set()),
                        "Objects": [],
                    }
                )
        fields = _fields(og, g, {"Tasks"})
        kept = min(o, n)
        how = (
            "create/destroy update"
            if tasks
            else "in-place update"
            if fields and [f for f in fields if f["Name"] != "Count"]
            else "ignore"
        )
        updates = {how: kept} if kept else {}
        if n > o:
            updates["create"] = n - o
        if n < o:
            updates["destroy"] = o - n
        edited = bool(tasks or fields)
        groups.append(
            {
                "Type": "Edited" if edited else "None",
                "Name": g["Name"],
                "Fields": fields,
                "Objects": [],
                "Tasks": tasks,
                "Updates": updates,
            }
        )
        annotations[g["Name"]] = {
            "Place": max(0, n - o),
            "Stop": max(0, o - n),
            "Ignore": kept if how == "ignore" else 0,
            "InPlaceUpdate": kept if how == "in-place update" else 0,
            "DestructiveUpdate": kept if how == "create/destroy update" else 0,
        }
    for og in (old or {}).get("TaskGroups") or ():
        if any(g["Name"] == og["Name"] for g in new["TaskGroups"]):
            continue
        # A group the new version drops: its allocations stop (nomad/structs/diff.go lists it
        # as Deleted; scheduler/annotate.go counts them as destroy).
        o = int(og.get("Count") or 0)
        groups.append(
            {
                "Type": "Deleted",
                "Name": og["Name"],
                "Fields": [],
                "Objects": [],
                "Tasks": [],
                "Updates": {"destroy": o},
            }
        )
        annotations[og["Name"]] = {
            "Place": 0,
            "Ignore": 0,
            "Stop": o,
            "InPlaceUpdate": 0,
            "DestructiveUpdate": 0,
        }
    top = (
        _fields(old or {}, new, {"TaskGroups", "JobModifyIndex", "Version", "Status", "Stop"})
        if old
        else []
    )
    kind = (
        "Added"
        if old is None
        else "Edited"
        if top or any(g["Type"] != "None" for g in groups)
        else "None"
    )
    return {
        "Diff": {"Type": kind, "ID": new["ID"], "Fields": top, "Objects": [], "TaskGroups": groups},
        "Annotations": {"DesiredTGUpdates": annotations},
        "FailedTGAllocs": None,
        "JobModifyIndex": 0,
    }


def finish(
    obs: dict[str, Any], desired: dict[str, Any], opts: dict[str, Any], case: Path
) -> dict[str, Any]:
    """Nomad's plans of the desired jobs against what is live (owned ones and new ones)."""
    (case / "manifest.json").write_text(json.dumps(desired, indent=2) + "\n")
    if opts:
        (case / "case.json").write_text(json.dumps(opts, indent=2, sort_keys=True) + "\n")
    plan, jobs, _ = built(desired, opts, case)
    for j in jobs:
        stub = obs["jobs"].get(j.id)
        if stub is None or (stub.get("Meta") or {}).get(META_MANIFEST) == plan.manifest:
            obs["plans"][j.id] = nomad_plan(obs["_live"].get(j.id) if stub else None, j.api)
    obs.pop("_live")
    return obs


def without(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in names}


def edited(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    cur = doc
    for p in path[:-1]:
        cur = cur.setdefault(p, {})
    cur[path[-1]] = value
    return doc


def case_drift(case: Path) -> dict[str, Any]:
    """web's zone-a group scaled to 0 by hand (nomad job scale web web-zone-a 0): the
    desired 1 is a change."""
    obs = synced(BASE, {}, case)

    def scale(api: dict[str, Any]) -> None:
        api["TaskGroups"][0]["Count"] = 0

    by_hand(obs, "web", scale)
    obs["allocations"]["web"] = [
        a for a in obs["allocations"]["web"] if a.get("TaskGroup") != "web-zone-a"
    ]
    return finish(obs, BASE, {}, case)


def case_unchanged_unhealthy(case: Path) -> dict[str, Any]:
    """Nothing to register, but api's deployment failed and report's allocations wait in a
    blocked evaluation (deployment running, none placed): plan says so, submit judges both."""
    obs = synced(BASE, {}, case)
    dep = obs["deployments"]["api"]
    dep["Status"], dep["StatusDescription"] = "failed", "Failed due to unhealthy allocations"
    obs["allocations"]["api"][0]["ClientStatus"] = "failed"
    obs["deployments"]["report"]["Status"] = "running"
    obs["deployments"]["report"]["StatusDescription"] = "Deployment is running"
    obs["allocations"]["report"] = []
    return finish(obs, BASE, {}, case)


def case_prune(case: Path) -> dict[str, Any]:
    """report and the external old-ldap dropped from the manifest, with --prune; beside them a
    job nobody manages, one owned by another manifest, and the instances Nomad registered with
    the agent: none of those is ever touched."""
    base = {
        **BASE,
        "old-ldap": {"external": {"address": "10.0.0.9", "port": 389}, "protocol": "tcp"},
    }
    obs = synced(base, {}, case)
    foreign = copy.deepcopy(obs["_live"]["search"])
    foreign["ID"] = foreign["Name"] = "billing"
    foreign["Meta"] = None
    live(obs, foreign, 500)
    other = copy.deepcopy(obs["_live"]["search"])
    other["ID"] = other["Name"] = "blog"
    other["Meta"] = {META_MANIFEST: "blog", META_SET: "blog"}
    live(obs, other, 510)
    obs["services"]["_nomad-task-0b1c2d3e-web-web-http"] = {
        "ID": "_nomad-task-0b1c2d3e-web-web-http",
        "Service": "web",
        "Address": "10.0.1.1",
        "Port": 23456,
        "Tags": ["zone-a"],
        "Meta": {"external-source": "nomad"},
    }
    return finish(obs, without(BASE, "report"), {"prune": True}, case)


def case_reload_provider_image(case: Path) -> dict[str, Any]:
    """psql:api's image bumped: its job is replaced (rolling update) and api, which reads its
    instance, restarts (change_mode restart, the default)."""
    obs = synced(BASE, {}, case)
    return finish(
        obs, edited(BASE, ("api", "overrides", "psql", "image"), "postgres:17-alpine"), {}, case
    )


def case_reload_provider_scale(case: Path) -> dict[str, Any]:
    """search scaled 3 -> 4: its zone-a group grows in place, no instance is replaced, but the
    list of all instances changes, so api (reads ${search.addrs}) restarts; report reads its zone's instance with the lowest index, which stays."""
    obs = synced(BASE, {}, case)
    return finish(obs, edited(BASE, ("search", "count"), 4), {}, case)


def case_reload_provider_regroup(case: Path) -> dict[str, Any]:
    """search scaled 3 -> 2, fewer instances than zones: its zone groups are replaced by one
    group (distinct_property and a spread), so every instance is new and every dependent that
    reads one reloads."""
    obs = synced(BASE, {}, case)
    return finish(obs, edited(BASE, ("search", "count"), 2), {}, case)


def case_reload_smaller_than_zones(case: Path) -> dict[str, Any]:
    """ping has fewer instances than zones (one group) and scales 1 -> 2: the zone that gains
    it moves the dependent instance there from the fallback to its own zone's. pinger has one
    instance per zone, so it restarts; probe (2 instances) only if Nomad places the new ping in
    one of its zones, which plan cannot know."""
    doc = {
        **BASE,
        "ping": {"count": 1},
        "pinger": {"depends": ["ping"]},
        "probe": {"count": 2, "depends": ["ping"]},
    }
    obs = synced(doc, {}, case)
    return finish(obs, edited(doc, ("ping", "count"), 2), {}, case)


def case_reload_new_consumer(case: Path) -> dict[str, Any]:
    """A new set admin depending on api: admin is created, nothing else reloads (no template
    reads interface documents)."""
    obs = synced(BASE, {}, case)
    return finish(obs, {**BASE, "admin": {"depends": ["api"]}}, {}, case)


def case_reload_removed_unrelated(case: Path) -> dict[str, Any]:
    """report removed from the manifest (no --prune): it stays, marked stale; nothing reloads."""
    obs = synced(BASE, {}, case)
    return finish(obs, without(BASE, "report"), {}, case)


def case_reload_tag_change(case: Path) -> dict[str, Any]:
    """web gets a tag: an in-place update; web's instances and its readers stay as they are."""
    obs = synced(BASE, {}, case)
    return finish(obs, edited(BASE, ("web", "tags"), ["public"]), {}, case)


def case_reload_noop(case: Path) -> dict[str, Any]:
    """redis:api's image bumped: replaced; api reads it with change_mode noop: not reloaded."""
    obs = synced(BASE, {}, case)
    return finish(
        obs, edited(BASE, ("api", "overrides", "redis", "image"), "redis:7.4-alpine"), {}, case
    )


def case_reload_external_moved(case: Path) -> dict[str, Any]:
    """The external legacy moved to another address: registered again; api, which reads it,
    restarts."""
    obs = synced(BASE, {}, case)
    return finish(obs, edited(BASE, ("legacy", "external", "address"), "10.0.0.6"), {}, case)


def case_namespaces(case: Path) -> dict[str, Any]:
    """prod beside dev in one Nomad namespace (told apart by scope): planning prod with a new
    api image sees dev's jobs and keys as someone else's, never stale, never in the way."""
    (case / "nomadgen.toml").write_text(
        "# prod beside dev in one Nomad namespace, told apart by scope\n[env.dev]\n\n[env.prod]\n"
    )
    opts = {"config": "nomadgen.toml", "env": "prod"}
    obs = synced(BASE, {**opts, "env": "dev"}, case)
    prod = synced(BASE, opts, case)
    for jid, stub in prod["jobs"].items():  # prod's jobs after dev's in the one job list
        obs["jobs"][jid] = stub
        obs["_live"][jid] = prod["_live"][jid]
        for k in ("deployments", "allocations", "groups"):
            obs[k][jid] = prod[k][jid]
    obs["manifest"] = prod["manifest"]
    obs["kv"] = prod["kv"]  # the tree read is prod's own root: dev's keys are not under it
    obs["services"].update(prod["services"])
    obs["variables"] = prod["variables"]
    return finish(obs, edited(BASE, ("api", "image"), "example/api:2"), opts, case)


def case_jobs_in_the_way(case: Path) -> dict[str, Any]:
    """A job named like one of the manifest's, not nomadgen's: refused, nothing planned."""
    obs = synced(without(BASE, "report"), {}, case)
    foreign = copy.deepcopy(obs["_live"]["search"])
    foreign["ID"] = foreign["Name"] = "report"
    foreign["Meta"] = {"team": "data"}
    live(obs, foreign, 600)
    return finish(obs, BASE, {}, case)


def _namespaced(case: Path, **tomls: str) -> None:
    for name, ns in tomls.items():
        (case / f"{name}.toml").write_text(f'namespace = "{ns}"\n')


def _unrecorded(obs: dict[str, Any]) -> None:
    """The KV records as a nomadgen that did not record the namespace wrote them."""
    for entry in obs["kv"].values():
        try:
            doc = json.loads(entry["value"])
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.pop("namespace", None) is not None:
            entry["value"] = pretty_json(doc) + "\n"


def case_namespace_other(case: Path) -> dict[str, Any]:
    """shop deployed from Nomad namespace dev; planned again from qa (NOMAD_NAMESPACE=qa): qa
    sees none of dev's jobs, but the same KV root and Consul names. Refused: exit 10."""
    _namespaced(case, dev="dev", nomadgen="qa")
    obs = synced(BASE, {"config": "dev.toml"}, case)
    obs["jobs"], obs["_live"] = {}, {}
    for k in ("deployments", "allocations", "groups"):
        obs[k] = {}
    return finish(obs, BASE, {"config": "nomadgen.toml"}, case)


def case_namespace_unrecorded(case: Path) -> dict[str, Any]:
    """shop in namespace dev, pushed by a nomadgen that did not record namespaces: its records
    are taken as dev's (its jobs are here), so it converges; the documents gain the namespace."""
    _namespaced(case, nomadgen="dev")
    obs = synced(BASE, {"config": "nomadgen.toml"}, case)
    _unrecorded(obs)
    return finish(obs, BASE, {"config": "nomadgen.toml"}, case)


def case_namespace_unrecorded_elsewhere(case: Path) -> dict[str, Any]:
    """The same unrecorded records, planned from qa, where shop has no job: they are taken as
    namespace default's, and refused as such."""
    _namespaced(case, dev="dev", nomadgen="qa")
    obs = synced(BASE, {"config": "dev.toml"}, case)
    _unrecorded(obs)
    obs["jobs"], obs["_live"] = {}, {}
    for k in ("deployments", "allocations", "groups"):
        obs[k] = {}
    return finish(obs, BASE, {"config": "nomadgen.toml"}, case)


def case_service_claimed(case: Path) -> dict[str, Any]:
    """shop's first push, while manifest blog publishes search (from namespace qa) and the
    external legacy (from default): one Consul catalog serves every namespace, so shop may not
    register them too. Refused: exit 10."""
    obs = synced(BASE, {}, case)
    obs["jobs"], obs["_live"], obs["kv"], obs["services"] = {}, {}, {}, {}
    for k in ("deployments", "allocations", "groups"):
        obs[k] = {}
    obs["claims"] = {
        f"nomadgen/blog/interfaces/{svc}": {"owner": "blog", "service": svc, "namespace": ns}
        for svc, ns in (("search", "qa"), ("legacy", ""))
    }
    return finish(obs, BASE, {}, case)


CASES = {
    name[5:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("case_")
}


def main(argv: list[str]) -> None:
    for name in argv or sorted(CASES):
        case = HERE / name
        case.mkdir(exist_ok=True)
        doc = CASES[name](case)
        (case / "observed.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print("wrote", case / "observed.json")


if __name__ == "__main__":
    main(sys.argv[1:])
