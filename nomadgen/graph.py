"""The resolved dependency graph as Graphviz DOT and as Mermaid: sets are nodes, an arrow points
from a dependent to what it uses; node-local sets sit inside their host's box."""

from __future__ import annotations

from .model import Resolution


def _id(name: str) -> str:
    return "n_" + name.replace(":", "__").replace("-", "_")


def _label(plan: Resolution, name: str) -> str:
    s = plan.get(name)
    kind = "declared" if s.declared else s.kind
    return f"{name}\\n{kind} x{s.instance_count}"


def to_dot(plan: Resolution) -> str:
    out = [
        f'digraph "{plan.manifest}" {{',
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
    ]
    for s in plan.sets:
        if s.embedded:
            out.append(f"  subgraph cluster_{_id(s.name)} {{")
            out.append(f'    label="{s.job_id} (one group: same node)"; style=dashed;')
            for n in (s.name, *s.embedded):
                out.append(f'    {_id(n)} [label="{_label(plan, n)}"];')
            out.append("  }")
        elif not s.host:
            shape = "" if s.declared else ", shape=cylinder"
            out.append(f'  {_id(s.name)} [label="{_label(plan, s.name)}"{shape}];')
    for s in plan.sets:
        for d in s.depends:
            out.append(f"  {_id(s.name)} -> {_id(d)};")
    out.append("}")
    return "\n".join(out) + "\n"


def to_mermaid(plan: Resolution) -> str:
    out = ["flowchart LR"]
    for s in plan.sets:
        label = _label(plan, s.name).replace("\\n", "<br/>")
        if s.embedded:
            out.append(f'  subgraph {_id(s.name)}_group["{s.job_id} (same node)"]')
            out.append(f'    {_id(s.name)}["{label}"]')
            for e in s.embedded:
                el = _label(plan, e).replace("\\n", "<br/>")
                out.append(f'    {_id(e)}["{el}"]')
            out.append("  end")
        elif not s.host:
            out.append(
                f'  {_id(s.name)}{"[" if s.declared else "[("}"{label}"{"]" if s.declared else ")]"}'
            )
    for s in plan.sets:
        for d in s.depends:
            out.append(f"  {_id(s.name)} --> {_id(d)}")
    return "\n".join(out) + "\n"
