"""The console entry point (`nomadgen`), and the offline commands' bodies.

Importing Typer is most of an offline command's start-up. So `render`, `resolve` and `graph`
with plain arguments run here without it: each token is an option this command takes
(`--opt VALUE`, a flag) or the one manifest. Anything else (help, --version, `--opt=VALUE`,
a short option cluster, an unknown or repeated option, a bad choice, a value that looks like an
option, a terminal whose encoding is not UTF-8) goes to the Typer app in cli.py, which parses
the same arguments the same way and owns every help text and usage error. The bodies below
are what both paths run; tests/test_entry.py runs both on the same arguments."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Config

Echo = Callable[..., None]  # typer.echo's (message, nl=True, err=False)

# The options each fast command takes, as Typer declares them in cli.py:
# option -> (parameter, kind); kind: "value", "flag", "many" (repeatable), or a set of choices.
_ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "--env": ("env", "value"),
    "--var-file": ("var_file", "many"),
    "--set": ("set_values", "many"),
}
_SOURCES: dict[str, tuple[str, Any]] = {
    "--zones": ("zones", "value"),
    "--templates": ("templates", "value"),
    "--config": ("config", "value"),
    "--name": ("name", "value"),
}
_RENDER_FORMAT = ("fmt", frozenset({"hcl", "json"}))
_GRAPH_FORMAT = ("fmt", frozenset({"dot", "mermaid"}))
OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "render": {
        "--format": _RENDER_FORMAT,
        "-f": _RENDER_FORMAT,
        "--out": ("out", "value"),
        "-o": ("out", "value"),
        "--force": ("force", "flag"),
        "--job": ("job", "value"),
        **_SOURCES,
        **_ENVIRONMENT,
    },
    "resolve": {"--json": ("as_json", "flag"), **_SOURCES, **_ENVIRONMENT},
    "graph": {
        "--format": _GRAPH_FORMAT,
        "-f": _GRAPH_FORMAT,
        "--out": ("out", "value"),
        "-o": ("out", "value"),
        **_SOURCES,
        **_ENVIRONMENT,
    },
}


def parse(argv: list[str]) -> tuple[str, bool, str, dict[str, Any]] | None:
    """(command, --debug, manifest, options) for plain arguments of a fast command, else None
    (then Typer parses them)."""
    debug = bool(argv) and argv[0] == "--debug"
    rest = argv[1:] if debug else argv
    if not rest or rest[0] not in OPTIONS:
        return None
    command, table = rest[0], OPTIONS[rest[0]]
    values: dict[str, Any] = {}
    manifests = []
    i = 1
    while i < len(rest):
        token = rest[i]
        i += 1
        if not token.startswith("-"):
            manifests.append(token)
            continue
        if token not in table:
            return None
        param, kind = table[token]
        if kind == "flag":
            if param in values:
                return None
            values[param] = True
            continue
        if i == len(rest) or not rest[i] or rest[i].startswith("-"):
            return None
        value = rest[i]
        i += 1
        if kind == "many":
            values.setdefault(param, []).append(value)
        elif param in values or (kind != "value" and value not in kind):
            return None
        else:
            values[param] = value
    if len(manifests) != 1 or not manifests[0]:
        return None
    return command, debug, manifests[0], values


def _utf8(stream: object) -> bool:
    import codecs

    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    except LookupError:
        return False


_ANSI = None


def echo(message: str, nl: bool = True, err: bool = False) -> None:
    """What typer.echo does with text on a UTF-8 stream: colour codes removed when the stream is
    not a terminal, then written and flushed."""
    global _ANSI
    out = message + "\n" if nl else message
    file = sys.stderr if err else sys.stdout
    if not out:
        file.flush()
        return
    if "\033" in out and not file.isatty():
        if _ANSI is None:
            import re

            _ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")  # click's strip_ansi
        out = _ANSI.sub("", out)
    file.write(out)
    file.flush()


def failure(exc: BaseException, debug: bool, error_code: int | None, echo: Echo) -> int:
    """The one error boundary's report (cli._guarded): a NomadgenError is a user-facing message
    and its exit code; anything else is a bug, shown with its traceback only under --debug."""
    from .errors import EXIT_INTERNAL, NomadgenError

    if isinstance(exc, NomadgenError):
        lines = exc.lines()
        echo("error: " + lines[0], err=True)
        for line in lines[1:]:
            echo(line, err=True)
        return error_code or exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        echo("interrupted", err=True)
        return 130
    if debug:  # the traceback, and still the documented exit code
        import traceback

        echo("".join(traceback.format_exception(exc)).rstrip("\n"), err=True)
    else:
        echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        echo(
            "  hint: this is a bug in nomadgen; run again with --debug for the traceback", err=True
        )
    return error_code or EXIT_INTERNAL


def config(options: dict[str, Any], environment: dict[str, Any]) -> Config:
    from .settings import load_config

    return load_config(
        zones=options.get("zones"),
        templates=options.get("templates"),
        config=options.get("config"),
        environment=environment.get("env"),
        var_files=tuple(environment.get("var_file") or ()),
        sets=tuple(environment.get("set_values") or ()),
    )


def render(
    echo: Echo,
    cfg: Config,
    manifest: str,
    fmt: str = "hcl",
    out: Path | None = None,
    force: bool = False,
    job: str | None = None,
    name: str | None = None,
) -> None:
    import json

    from .errors import NomadgenError
    from .pipeline import build, build_resolution, interface_files, iter_files, no_gc, render_files

    if out is None and job is None and fmt == "json":
        result = build(manifest, cfg, name)  # one JSON object holding every job
        echo(
            json.dumps(
                {j.id: {"Job": j.api} for j in result.jobs},
                indent=2,
                sort_keys=True,
                ensure_ascii=False,
            )
        )
        return
    with no_gc():
        _, plan = build_resolution(manifest, cfg, name)
    jobs = [s.job_id for s in plan.sets if s.job_hosted and (job is None or s.job_id == job)]
    if job is not None and not jobs:
        raise NomadgenError(
            f"no job {job!r} in this manifest",
            hint="jobs: " + ", ".join(s.job_id for s in plan.sets if s.job_hosted),
        )
    if out is None:
        files = render_files(plan, cfg.render, fmt, only=job)
        if job is not None:
            echo(next(iter(files.values())), nl=False)
        else:
            echo("\n".join(f"# --- {fname}\n{text}" for fname, text in files.items()), nl=False)
        return
    import itertools

    from .files import write_tree

    # Each file goes to its temporary name as it is rendered: the peak is one job, not the tree.
    entries = iter_files(plan, cfg.render, fmt, only=job)
    n_ifaces = 0 if job is not None else len(plan.sets)
    if n_ifaces:
        entries = itertools.chain(entries, interface_files(plan, cfg.render))
    stale = write_tree(out, entries, force=force)
    echo(
        f"wrote {len(jobs)} job(s) and {n_ifaces} interface(s) to {out}"
        + (f"; removed {len(stale)} file(s) of jobs no longer rendered" if stale else ""),
        err=True,
    )


def resolve(
    echo: Echo, cfg: Config, manifest: str, as_json: bool = False, name: str | None = None
) -> None:
    import json

    from .console import plan_json, plan_table
    from .pipeline import build_resolution

    _, plan = build_resolution(manifest, cfg, name)
    echo(json.dumps(plan_json(plan), indent=2) if as_json else plan_table(plan))


def graph(
    echo: Echo,
    cfg: Config,
    manifest: str,
    fmt: str = "dot",
    out: Path | None = None,
    name: str | None = None,
) -> None:
    from .graph import to_dot, to_mermaid
    from .pipeline import build_resolution

    _, plan = build_resolution(manifest, cfg, name)
    if out is not None:
        from .files import write_tree

        write_tree(out, {"graph.dot": to_dot(plan), "graph.mmd": to_mermaid(plan)}, kind="graph")
        echo(f"wrote {out / 'graph.dot'} and {out / 'graph.mmd'}", err=True)
        return
    echo(to_dot(plan) if fmt == "dot" else to_mermaid(plan), nl=False)


def run(argv: list[str]) -> int | None:
    """Run a fast command; its exit code, or None when Typer must parse these arguments."""
    parsed = parse(argv)
    if parsed is None or not (_utf8(sys.stdout) and _utf8(sys.stderr)):
        return None
    command, debug, manifest, options = parsed
    environment: dict[str, Any] = {
        k: options.pop(k) for k in ("env", "var_file", "set_values") if k in options
    }
    if "out" in options:
        options["out"] = Path(options["out"])
    try:
        cfg = config(options, environment)
        for k in ("zones", "templates", "config"):
            options.pop(k, None)
        if command == "render":
            render(echo, cfg, manifest, **options)
        elif command == "resolve":
            resolve(echo, cfg, manifest, **options)
        else:
            graph(echo, cfg, manifest, **options)
    except (Exception, KeyboardInterrupt) as exc:
        return failure(exc, debug, None, echo)
    return 0


def main() -> None:
    # A short run that builds large acyclic structures: the cyclic collector would only rescan
    # the growing heap (super-linear on big manifests).
    import gc

    gc.disable()
    code = run(sys.argv[1:])
    if code is None:
        gc.enable()  # cli.main decides for itself
        from .cli import main as typer_main

        typer_main()
        return
    sys.exit(code)
