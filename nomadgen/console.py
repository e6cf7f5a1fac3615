"""Plain-text and JSON views of the library's results, shared by the CLI commands."""

from __future__ import annotations

from collections import Counter

from .model import Plan


def plan_json(plan: Plan) -> dict:
    return {
        "manifest": plan.manifest,
        "zones": list(plan.zones),
        "layers": [list(layer) for layer in plan.layers],
        "sets": [
            {
                "set": s.name,
                "job": s.job_id if not s.host else s.host.replace(":", "-"),
                "service": s.job_id,
                "type": s.type,
                "declared": s.declared,
                "scheduling": s.scheduling,
                "count": s.count,
                "host": s.host,
                "depends": list(s.depends),
                "users": list(s.users),
                "instances": [
                    {"zone": i.zone, "index": i.index} for i in plan.instances if i.set == s.name
                ],
            }
            for s in plan.sets
        ],
    }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def plan_table(plan: Plan) -> str:
    per_set: dict[str, Counter] = {}
    for i in plan.instances:
        per_set.setdefault(i.set, Counter())[i.zone] += 1
    rows = [["SET", "SCHEDULING", "INSTANCES"] + [z.upper() for z in plan.zones] + ["USED BY", "DEPENDS ON"]]
    for s in plan.sets:
        c = per_set.get(s.name, Counter())
        sched = s.scheduling + (f" (in {s.host})" if s.host else "")
        rows.append([s.name, sched, str(s.count)] + [str(c.get(z, 0)) for z in plan.zones]
                    + [", ".join(s.users) or "-", ", ".join(s.depends) or "-"])
    order = " -> ".join("{" + ", ".join(layer) + "}" for layer in plan.layers)
    return (f"manifest {plan.manifest}: {len(plan.sets)} sets, {len(plan.instances)} instances "
            f"in {len(plan.zones)} zones\n\n" + table(rows) + f"\n\nsubmit order: {order}")
