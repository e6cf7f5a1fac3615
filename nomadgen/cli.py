"""The command line: each command declares its options and calls library code. Errors are caught
in one place (`_guarded`); heavy modules are imported inside the commands that use them, so
`nomadgen render` never loads the HTTP clients."""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from .errors import EXIT_INTERNAL, EXIT_PLAN_ERROR, NomadgenError

app = typer.Typer(
    name="nomadgen",
    help="Resolve a manifest of services into Nomad jobs and publish their interfaces in Consul.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold tokens
    context_settings={"help_option_names": ["-h", "--help"]},
)
interface_app = typer.Typer(help="Read published interfaces.", no_args_is_help=True)
app.add_typer(interface_app, name="interface")

_state = {"debug": False}


class Format(str, Enum):
    hcl = "hcl"
    json = "json"


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"


ManifestArg = Annotated[str, typer.Argument(help="The manifest (JSON), e.g. examples/dockland.json.")]
ZonesOpt = Annotated[Optional[str], typer.Option(
    "--zones", help="Comma-separated zones [env NOMADGEN_ZONES; default: zone-a,zone-b,zone-c].")]
TemplatesOpt = Annotated[Optional[str], typer.Option(
    "--templates", help="Folder of <service>.toml templates; yours win over the packaged ones.")]
ConfigOpt = Annotated[Optional[str], typer.Option(
    "--config", help="Config file [default: ./nomadgen.toml if present].")]
NameOpt = Annotated[Optional[str], typer.Option(
    "--name", help="Manifest name (owner of the jobs) [default: the file name].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _err(line: str) -> None:
    typer.echo(line, err=True)


def _guarded(error_code: int | None = None) -> Callable:
    """The one error boundary: a NomadgenError is a user-facing message and an exit code;
    anything else is a bug, shown with its traceback only under --debug."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except NomadgenError as exc:
                lines = exc.lines()
                _err("error: " + lines[0])
                for line in lines[1:]:
                    _err(line)
                raise typer.Exit(error_code or exc.exit_code) from None
            except KeyboardInterrupt:
                _err("interrupted")
                raise typer.Exit(130) from None
            except Exception as exc:  # noqa: BLE001 - the boundary for bugs
                if _state["debug"]:
                    raise
                _err(f"internal error: {type(exc).__name__}: {exc}")
                _err("  hint: this is a bug in nomadgen; run again with --debug for the traceback")
                raise typer.Exit(error_code or EXIT_INTERNAL) from None

        return inner

    return wrap


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False):
    _state["debug"] = debug


def _config(zones=None, templates=None, config=None):
    from .settings import load_config

    return load_config(zones=zones, templates=templates, config=config)


@app.command()
@_guarded()
def render(
    manifest: ManifestArg,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="hcl for people, json for the API.")] = Format.hcl,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write one file per job here.")] = None,
    job: Annotated[Optional[str], typer.Option("--job", help="Print only this job.")] = None,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Render the Nomad jobs (and interface documents) for a manifest."""
    from .pipeline import build, job_files

    cfg = _config(zones, templates, config)
    result = build(manifest, cfg, name)
    jobs = result.jobs
    if job is not None:
        jobs = tuple(j for j in jobs if j.id == job)
        if not jobs:
            raise NomadgenError(f"no job {job!r} in this manifest",
                                hint="jobs: " + ", ".join(j.id for j in result.jobs))
    files = job_files(jobs, fmt.value)
    if out is None:
        if fmt is Format.json and job is None:
            typer.echo(json.dumps({j.id: {"Job": j.api} for j in jobs}, indent=2, sort_keys=True,
                                  ensure_ascii=False))
        elif job is not None:
            typer.echo(next(iter(files.values())), nl=False)
        else:
            typer.echo("\n".join(f"# --- {fname}\n{text}" for fname, text in files.items()), nl=False)
        return
    from .files import write_tree

    entries = dict(files)
    if job is None:
        for kv in result.interfaces:
            entries["interfaces/" + kv.key.rsplit("/", 1)[1] + ".json"] = kv.value.decode()
    write_tree(out, entries)
    _err(f"wrote {len(files)} job(s) and {len(entries) - len(files)} interface(s) to {out}")


@app.command()
@_guarded()
def resolve(
    manifest: ManifestArg,
    as_json: JsonOpt = False,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Show the sets a manifest resolves to, their instances per zone and who uses each."""
    from .console import plan_json, plan_table
    from .pipeline import build_plan

    _, plan = build_plan(manifest, _config(zones, templates, config), name)
    typer.echo(json.dumps(plan_json(plan), indent=2) if as_json else plan_table(plan))


@app.command()
@_guarded()
def graph(
    manifest: ManifestArg,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.dot,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write graph.dot and graph.mmd here.")] = None,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Write the dependency graph as Graphviz DOT or Mermaid."""
    from .graph import to_dot, to_mermaid
    from .pipeline import build_plan

    _, plan = build_plan(manifest, _config(zones, templates, config), name)
    if out is not None:
        from .files import write_tree

        write_tree(out, {"graph.dot": to_dot(plan), "graph.mmd": to_mermaid(plan)})
        _err(f"wrote {out / 'graph.dot'} and {out / 'graph.mmd'}")
        return
    typer.echo(to_dot(plan) if fmt is GraphFormat.dot else to_mermaid(plan), nl=False)


@app.command()
@_guarded()
def templates(templates: TemplatesOpt = None) -> None:
    """List the generic services a manifest can depend on."""
    from .catalog import Catalog

    cat = Catalog(templates)
    for n in cat.names():
        t = cat.get(n)
        typer.echo(f"{n:<12} {t.scheduling:<10} {t.run.image:<24} {t.description}")


@app.command()
@_guarded()
def schema() -> None:
    """Print the manifest's JSON Schema (for editors)."""
    typer.echo((Path(__file__).parent / "manifest.schema.json").read_text(encoding="utf-8"), nl=False)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
