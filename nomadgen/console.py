"""Plain-text and JSON views of the library's results, shared by the CLI commands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .model import Resolution
from .preflight import Shortfall, problems

if TYPE_CHECKING:
    from .converge import ChangeSet, Report, Step
    from .data import DataStatement
    from .operations import SetStatus


def plan_json(plan: Resolution) -> dict[str, Any]:
    return {
        "manifest": plan.manifest,
        "zones": list(plan.zones),
        "layers": [list(layer) for layer in plan.layers],
        "sets": [
            {
                "set": s.name,
                "job": plan.job_of(s.name),
                "service": s.job_id,
                "type": s.type,
                "declared": s.declared,
                "scheduling": s.kind,
                "count": s.instance_count,
                "host": s.host,
                "depends": list(s.depends),
                "users": list(s.users),
                "instances": [
                    {"zone": i.zone, "index": i.ordinal} for i in plan.instances if i.set == s.name
                ],
            }
            for s in plan.sets
        ],
    }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def plan_table(plan: Resolution) -> str:
    per_set: dict[str, Counter[str]] = {}
    for i in plan.instances:
        per_set.setdefault(i.set, Counter())[i.zone] += 1
    rows = [
        ["SET", "SCHEDULING", "INSTANCES"]
        + [z.upper() for z in plan.zones]
        + ["USED BY", "DEPENDS ON"]
    ]
    for s in plan.sets:
        c = per_set.get(s.name, Counter())
        sched = (
            f"external {s.external[0]}:{s.external[1]}"
            if s.external
            else s.kind + (f" (in {s.host})" if s.host else "")
        )
        rows.append(
            [s.name, sched, str(s.instance_count)]
            + [str(c.get(z, 0)) for z in plan.zones]
            + [", ".join(s.users) or "-", ", ".join(s.depends) or "-"]
        )
    order = " -> ".join("{" + ", ".join(layer) + "}" for layer in plan.layers)
    return (
        f"manifest {plan.manifest}: {len(plan.sets)} sets, {len(plan.instances)} instances "
        f"in {len(plan.zones)} zones\n\n" + table(rows) + f"\n\nsubmit order: {order}"
    )


def changeset_text(cs: ChangeSet, zones_source: str = "", verbose: bool = False) -> str:
    from .converge import Action, diff_summary, group_replacement, placement_failures

    sign = {
        Action.CREATE: "+",
        Action.UPDATE: "~",
        Action.UNCHANGED: "=",
        Action.STOP: "-",
        Action.STALE: "!",
    }
    out = [
        f"Plan for manifest {cs.manifest}: zones {', '.join(cs.plan.zones)}"
        + (f" (from the {zones_source})" if zones_source else ""),
        "",
    ]
    for j in cs.jobs:
        note = {
            Action.STALE: "owned, no longer declared; submit --prune stops it",
            Action.STOP: "owned, no longer declared: will be stopped",
        }.get(j.action, j.action)
        out.append(
            f"{sign[j.action]} job {j.id} ({note}, layer {j.layer + 1})"
            if j.action not in (Action.STOP, Action.STALE)
            else f"{sign[j.action]} job {j.id} ({note})"
        )
        for line in diff_summary(j.dry_run, verbose):
            out.append("    " + line)
        if note := group_replacement(j):
            out.append("    ! " + note)
        for line in placement_failures(j.dry_run):
            out.append("    ! " + line)
        if j.health:  # unchanged but not healthy: submit judges every set and fails on it
            out.append(f"    ! {j.health} (submit judges it too: it fails unless this recovers)")
    kv = Counter(k.action for k in cs.kv)
    out.append("")
    out.append(
        f"interfaces: {kv.get(Action.PUT, 0)} to write, {kv.get(Action.DELETE, 0)} to delete, "
        f"{kv.get(Action.UNCHANGED, 0)} unchanged"
    )
    for k in cs.kv:
        if k.action != Action.UNCHANGED:
            out.append(
                f"  {'+' if k.action == Action.PUT and not k.modify_index else '~' if k.action == Action.PUT else '-'} {k.key}"
            )
    for path, items in cs.credentials:
        out.append(
            f"credentials: will generate {', '.join(items)} at {path} (Nomad Variables; never shown)"
        )
    for pc in cs.policies:
        if pc.action != Action.UNCHANGED:
            verb = "will write" if pc.action == Action.PUT else "will delete"
            out.append(
                f"acl policy {pc.name}: {verb}"
                + (f" ({pc.who} reads {', '.join(pc.paths)})" if pc.paths else "")
            )
    for sc in cs.services:
        if sc.action != Action.UNCHANGED:
            out.append(
                f"external service {sc.name}: {sc.action}"
                + (f" {sc.address}:{sc.port}" if sc.address else "")
            )
    if cs.reloads:
        out.append("reloads (the changed sets and what depends on them):")
        for r in cs.reloads:
            out.append(f"  {r.set} in job {r.job}: {r.how}, because {', '.join(r.because)} changed")
    else:
        out.append("reloads: none")
    out.append("")
    out.append("changes: yes" if cs.changed else "no changes")
    return "\n".join(out)


def progress_printer(enabled: bool = True, as_json: bool = False) -> Callable[[Step], None]:
    """Steps as they happen, on stderr: aligned lines, or one JSON object per line (--json;
    stdout keeps the one final document)."""
    import json
    import sys
    import time

    t0 = time.monotonic()

    def show(step: Step) -> None:
        if not enabled:
            return
        if as_json:
            print(
                json.dumps({"t": round(time.monotonic() - t0, 3), **step._asdict()}),
                file=sys.stderr,
                flush=True,
            )
            return
        mark = "ok" if step.ok else "FAILED"
        detail = f": {step.detail}" if step.detail else ""
        print(
            f"[{time.monotonic() - t0:6.1f}s] {mark:<6} {step.what} {step.target}{detail}",
            file=sys.stderr,
            flush=True,
        )

    return show


def report_text(report: Report, cs: ChangeSet) -> str:
    from .converge import Action

    registered = [s.target for s in report.steps if s.what == "register"]
    out = [
        f"submitted manifest {report.manifest} in {report.seconds:.1f}s: "
        f"{len(registered)} job(s) registered, {report.transactions} KV transaction(s), "
        f"{report.writes} write(s)"
    ]
    unchanged = [j.id for j in cs.jobs if j.action == Action.UNCHANGED]
    if unchanged:
        out.append(f"unchanged (not registered again): {', '.join(unchanged)}")
    stale = [j.id for j in cs.jobs if j.action == Action.STALE]
    if stale:
        out.append(f"stale, owned but no longer declared (use --prune): {', '.join(stale)}")
    if not report.waited:
        out.append("health is not known yet: --no-wait was given; `nomadgen status` shows it")
    if report.reloads:
        out.append("reloaded:")
        for r in report.reloads:
            out.append(f"  {r.set} ({r.job}): {r.how}")
    else:
        out.append("reloaded: nothing")
    return "\n".join(out)


def status_text(manifest: str, rows: Sequence[SetStatus]) -> str:
    table_rows = [
        ["SET", "JOB", "STATE", "HEALTH", "PLACEMENT (zone/node)", "HEALTHY", "INTERFACE", "DRIFT"]
    ]
    for r in rows:
        where = ", ".join(
            f"{z}/{n}" + ("" if st == "running" else f" ({st})") for z, n, st in r.placements
        )
        table_rows.append(
            [
                r.set,
                r.job,
                r.state,
                r.health or "-",
                where or "-",
                f"{r.healthy}/{r.expected}",
                "published" if r.interface else "missing",
                r.drift,
            ]
        )
    lines = [
        f"  {d.name} on {d.node} ({d.storage}): {d.outcome}"
        + (" (recorded by submit)" if getattr(d, "acknowledged", False) else "")
        + f", {d.how}"
        for r in rows
        for d in getattr(r, "data", ())
    ]
    waits = [f"  {r.set}: {w}" for r in rows for w in getattr(r, "waiting", ())]
    # IDs in their short form, as the nomad CLI shows them (--json has them in full).
    ids = [
        f"  {r.set}: "
        + (f"deployment {r.deployment[:8]}" if r.deployment else "no deployment")
        + (", allocations " + " ".join(a[:8] for a in r.allocations) if r.allocations else "")
        for r in rows
        if r.job
    ]
    bad = [f"  {r.set}: {r.health}: {r.why}" for r in rows if r.health not in ("healthy", "")]
    bad += [
        f"  {r.set}: {r.drift}"
        for r in rows
        if r.drift != "in sync" and not r.drift.startswith("not checked")
    ]
    return (
        f"manifest {manifest}\n\n"
        + table(table_rows)
        + ("\n\ndeployments and allocations:\n" + "\n".join(ids) if ids else "")
        + ("\n\ndata of stateful instances:\n" + "\n".join(lines) if lines else "")
        + ("\n\nwaiting:\n" + "\n".join(waits) if waits else "")
        + ("\n\nnot converged (exit 17):\n" + "\n".join(bad) if bad else "")
    )


def data_text(statements: Sequence[DataStatement]) -> str:
    """Plan's lines about stateful sets' data (empty when no stateful set changes)."""
    if not statements:
        return ""
    lines = ["", "", "Data of stateful sets:"]
    for d in statements:
        mark = {"kept": "kept", "lost": "LOST", "new": "new"}.get(d.outcome, d.outcome)
        lines.append(f"  {d.set} ({d.storage}): {mark}, {d.instances} instance(s): {d.how}")
    if any(d.outcome == "lost" for d in statements):
        lines.append("  submit refuses this without --allow-data-loss")
    return "\n".join(lines) + "\n"


def preflight_text(shortfalls: Sequence[Shortfall]) -> str:
    """Plan's lines about what of the whole manifest does not fit the cluster."""
    if not shortfalls:
        return ""
    lines = ["", "", "Does not fit the cluster (submit stops here, exit 15):"]
    for p in problems(shortfalls):
        lines += ["  ! " + p.message, "    hint: " + p.hint]
    return "\n".join(lines) + "\n"
