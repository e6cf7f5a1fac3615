"""The command line: each command declares its options and calls library code. Errors are caught
in one place (`_guarded`); heavy modules are imported inside the commands that use them, so
`nomadgen render` never loads the HTTP clients."""

from __future__ import annotations

import functools
import gc
import inspect
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer

from .errors import EXIT_PLAN_ERROR, NomadgenError

if TYPE_CHECKING:
    from .backends import ConsulBackend, NomadBackend
    from .converge import Step
    from .settings import Config

_F = TypeVar("_F", bound=Callable[..., Any])

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

_state: dict[str, Any] = {"debug": False}


class Format(str, Enum):
    hcl = "hcl"
    json = "json"


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"


ManifestArg = Annotated[
    str, typer.Argument(help="The manifest (JSON), e.g. examples/dockland.json.")
]
ZonesOpt = Annotated[
    str | None,
    typer.Option(
        "--zones", help="Comma-separated zones (env NOMADGEN_ZONES; default: zone-a,zone-b,zone-c)."
    ),
]
TemplatesOpt = Annotated[
    str | None,
    typer.Option(
        "--templates", help="Folder of <service>.toml templates; yours win over the packaged ones."
    ),
]
ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="Config file (default: ./nomadgen.toml if present).")
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Manifest name (owner of the jobs) (default: the file name)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _err(line: str) -> None:
    typer.echo(line, err=True)


def _guarded(error_code: int | None = None) -> Callable[[_F], _F]:
    """The one error boundary: a NomadgenError is a user-facing message and an exit code;
    anything else is a bug, shown with its traceback only under --debug."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except (Exception, KeyboardInterrupt) as exc:
                from .entry import failure

                raise typer.Exit(failure(exc, _state["debug"], error_code, typer.echo)) from None

        return inner  # type: ignore[return-value]

    return wrap


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"nomadgen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print nomadgen's version and exit.",
        ),
    ] = False,
) -> None:
    _state["debug"] = debug


EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Environment from nomadgen.toml's [env.NAME] (env NOMADGEN_ENV).",
        rich_help_panel="Environment",
    ),
]
VarFileOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--var-file",
        help='Per-set values, JSON or TOML: {"psql:app": {"image": ...}} (repeatable).',
        rich_help_panel="Environment",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="One value: SET.FIELD=VALUE, e.g. psql:app.resources.memory=2048 (repeatable).",
        rich_help_panel="Environment",
    ),
]
_ENVIRONMENT = {"env": (EnvOpt, None), "var_file": (VarFileOpt, None), "set_values": (SetOpt, None)}


def _with_environment(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --env, --var-file and --set to a command (declared once, here); the config loaders
    below read them."""
    sig = inspect.signature(fn, eval_str=True)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, (ann, default) in _ENVIRONMENT.items()
    ]

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        _state["environment"] = {name: kwargs.pop(name, None) for name in _ENVIRONMENT}
        return fn(*args, **kwargs)

    inner.__signature__ = sig.replace(parameters=list(sig.parameters.values()) + extra)  # type: ignore[attr-defined]
    return inner


def _env_args() -> dict[str, Any]:
    e = _state.get("environment") or {}
    return {
        "environment": e.get("env"),
        "var_files": tuple(e.get("var_file") or ()),
        "sets": tuple(e.get("set_values") or ()),
    }


def _config(
    zones: str | None = None, templates: str | None = None, config: str | None = None
) -> Config:
    from .settings import load_config

    return load_config(zones=zones, templates=templates, config=config, **_env_args())


@app.command()
@_guarded()
@_with_environment
def render(
    manifest: ManifestArg,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="hcl for people, json for the API.")
    ] = Format.hcl,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write one file per job here.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --out: write into a folder that holds other files."),
    ] = False,
    job: Annotated[str | None, typer.Option("--job", help="Print only this job.")] = None,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Render the Nomad jobs (and interface documents) for a manifest."""
    from . import entry  # the body, shared with the fast path there

    cfg = _config(zones, templates, config)
    entry.render(typer.echo, cfg, manifest, fmt.value, out, force, job, name)


@app.command()
@_guarded()
@_with_environment
def resolve(
    manifest: ManifestArg,
    as_json: JsonOpt = False,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Show the sets a manifest resolves to, their instances per zone and who uses each."""
    from . import entry

    entry.resolve(typer.echo, _config(zones, templates, config), manifest, as_json, name)


@app.command()
@_guarded()
@_with_environment
def graph(
    manifest: ManifestArg,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.dot,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write graph.dot and graph.mmd here.")
    ] = None,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Write the dependency graph as Graphviz DOT or Mermaid."""
    from . import entry

    entry.graph(typer.echo, _config(zones, templates, config), manifest, fmt.value, out, name)


@app.command()
@_guarded()
def diff(
    manifest: ManifestArg,
    envs: Annotated[
        list[str],
        typer.Option("--env", help="Two environments to compare: --env stage --env prod."),
    ],
    as_json: JsonOpt = False,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Per set, what differs between two environments' rendered jobs (offline).
    Exit 0: the same, 1: they differ."""
    from .envplan import compare
    from .pipeline import build_resolution
    from .settings import load_config

    if len(envs) != 2:
        _err("error: diff compares exactly two environments: --env stage --env prod")
        raise typer.Exit(2)
    sides = []
    for e in envs:
        cfg = load_config(templates=templates, config=config, environment=e)
        sides.append((build_resolution(manifest, cfg, name)[1], cfg.render))
    out = compare(sides[0], sides[1])
    if as_json:
        typer.echo(json.dumps({"environments": envs, "sets": out}, indent=2, sort_keys=True))
    else:
        a, b = envs
        if not out:
            typer.echo(f"{a} and {b} render the same sets")
        for set_name, fields in out.items():
            typer.echo(f"{set_name}:")
            for field, (x, y) in fields.items():
                typer.echo(f"  {field}: {a} {json.dumps(x)}  ->  {b} {json.dumps(y)}")
    raise typer.Exit(1 if out else 0)


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
def schema(
    config: Annotated[
        bool, typer.Option("--config", help="The schema of nomadgen.toml instead.")
    ] = False,
) -> None:
    """Print the manifest's JSON Schema (for editors); --config: nomadgen.toml's."""
    which = "config.schema.json" if config else "manifest.schema.json"
    typer.echo((Path(__file__).parent / which).read_text(encoding="utf-8"), nl=False)


# --- Commands that talk to a cluster ----------------------------------------------------------

NomadAddr = Annotated[
    str | None,
    typer.Option(
        "--nomad-addr",
        help="(env NOMAD_ADDR; default http://127.0.0.1:4646)",
        rich_help_panel="Nomad",
    ),
]
NomadTokenFile = Annotated[
    str | None,
    typer.Option(
        "--nomad-token-file",
        help="Read the ACL token from this file (env NOMAD_TOKEN, NOMAD_TOKEN_FILE).",
        rich_help_panel="Nomad",
    ),
]
NomadCACert = Annotated[
    str | None, typer.Option("--nomad-ca-cert", help="(env NOMAD_CACERT)", rich_help_panel="Nomad")
]
NomadNamespace = Annotated[
    str | None, typer.Option("--namespace", help="(env NOMAD_NAMESPACE)", rich_help_panel="Nomad")
]
SkipVerify = Annotated[
    bool,
    typer.Option(
        "--tls-skip-verify",
        help="Do not verify TLS certificates (NOMAD_SKIP_VERIFY, CONSUL_HTTP_SSL_VERIFY=false); not for production.",
    ),
]
ConsulAddr = Annotated[
    str | None,
    typer.Option(
        "--consul-addr",
        help="(env CONSUL_HTTP_ADDR; default 127.0.0.1:8500)",
        rich_help_panel="Consul",
    ),
]
ConsulTokenFile = Annotated[
    str | None,
    typer.Option(
        "--consul-token-file",
        help="(env CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE)",
        rich_help_panel="Consul",
    ),
]
ConsulCACert = Annotated[
    str | None,
    typer.Option("--consul-ca-cert", help="(env CONSUL_CACERT)", rich_help_panel="Consul"),
]
NomadClientCert = Annotated[
    str | None,
    typer.Option("--nomad-client-cert", help="(env NOMAD_CLIENT_CERT)", rich_help_panel="Nomad"),
]
NomadClientKey = Annotated[
    str | None,
    typer.Option("--nomad-client-key", help="(env NOMAD_CLIENT_KEY)", rich_help_panel="Nomad"),
]
NomadRegion = Annotated[
    str | None, typer.Option("--region", help="(env NOMAD_REGION)", rich_help_panel="Nomad")
]
ConsulClientCert = Annotated[
    str | None,
    typer.Option("--consul-client-cert", help="(env CONSUL_CLIENT_CERT)", rich_help_panel="Consul"),
]
ConsulClientKey = Annotated[
    str | None,
    typer.Option("--consul-client-key", help="(env CONSUL_CLIENT_KEY)", rich_help_panel="Consul"),
]
HttpTimeout = Annotated[
    float | None,
    typer.Option(
        "--http-timeout",
        help="Seconds one request to Nomad or Consul may take (env NOMADGEN_HTTP_TIMEOUT; default 10).",
    ),
]
ZoneAttr = Annotated[
    str | None,
    typer.Option(
        "--zone-attribute",
        help="Node property that names a zone (default ${node.datacenter}; e.g. ${meta.zone}).",
    ),
]


# The connection options every cluster command takes: (annotation, default).
_CONNECTION = {
    "nomad_addr": (NomadAddr, None),
    "nomad_token_file": (NomadTokenFile, None),
    "nomad_ca_cert": (NomadCACert, None),
    "nomad_client_cert": (NomadClientCert, None),
    "nomad_client_key": (NomadClientKey, None),
    "namespace": (NomadNamespace, None),
    "region": (NomadRegion, None),
    "consul_addr": (ConsulAddr, None),
    "consul_token_file": (ConsulTokenFile, None),
    "consul_ca_cert": (ConsulCACert, None),
    "consul_client_cert": (ConsulClientCert, None),
    "consul_client_key": (ConsulClientKey, None),
    "tls_skip_verify": (SkipVerify, False),
    "http_timeout": (HttpTimeout, None),
}


class Connection(NamedTuple):
    """The connection options of a cluster command, as given (None: not given)."""

    nomad_addr: str | None = None
    nomad_token_file: str | None = None
    nomad_ca_cert: str | None = None
    nomad_client_cert: str | None = None
    nomad_client_key: str | None = None
    namespace: str | None = None
    region: str | None = None
    consul_addr: str | None = None
    consul_token_file: str | None = None
    consul_ca_cert: str | None = None
    consul_client_cert: str | None = None
    consul_client_key: str | None = None
    tls_skip_verify: bool = False
    http_timeout: float | None = None


def _with_connection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the connection options to a command's signature (Typer reads the signature) and
    hands them to it as one `conn` Connection, so each command declares them once, here."""
    sig = inspect.signature(fn, eval_str=True)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, (ann, default) in _CONNECTION.items()
    ]

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        conn = Connection(
            **{name: kwargs.pop(name, default) for name, (_, default) in _CONNECTION.items()}
        )
        return fn(*args, conn=conn, **kwargs)

    inner.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p for p in sig.parameters.values() if p.name != "conn"] + extra
    )
    return inner


def _connect(conn: Connection) -> tuple[NomadBackend, ConsulBackend]:
    from .backends import connect
    from .settings import consul_endpoint, nomad_endpoint

    # Tokens come only from the environment or files: a flag would land in shell history.
    skip = True if conn.tls_skip_verify else None
    n = nomad_endpoint(
        address=conn.nomad_addr,
        token_file=conn.nomad_token_file,
        ca_cert=conn.nomad_ca_cert,
        namespace=conn.namespace,
        region=conn.region,
        client_cert=conn.nomad_client_cert,
        client_key=conn.nomad_client_key,
        skip_verify=skip,
        timeout=conn.http_timeout,
    )
    c = consul_endpoint(
        address=conn.consul_addr,
        token_file=conn.consul_token_file,
        ca_cert=conn.consul_ca_cert,
        client_cert=conn.consul_client_cert,
        client_key=conn.consul_client_key,
        skip_verify=skip,
        timeout=conn.http_timeout,
    )
    return connect(n, c)  # each client warns once if it does not verify TLS


def _online_config(
    zones: str | None,
    templates: str | None,
    config: str | None,
    zone_attribute: str | None,
    namespace: str | None,
) -> Config:
    from .settings import load_config

    return load_config(
        zones=zones,
        templates=templates,
        config=config,
        zone_attribute=zone_attribute,
        namespace=namespace,
        **_env_args(),
    )


def _cluster(conn: Connection, cfg: Config) -> tuple[NomadBackend, ConsulBackend]:
    """Connections in the environment's Nomad namespace and region."""
    return _connect(
        conn._replace(namespace=cfg.render.namespace, region=cfg.render.region or conn.region)
    )


@app.command()
@_guarded(error_code=EXIT_PLAN_ERROR)
@_with_environment
@_with_connection
def plan(
    manifest: ManifestArg,
    as_json: JsonOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Show the owned jobs that submit --prune would stop.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every field of new jobs too.")
    ] = False,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
    zone_attribute: ZoneAttr = None,
    conn: Connection = Connection(),
) -> None:
    """Show what submit would change: job diffs, interfaces, stale jobs, reloads.
    Exit 0: no change, 1: changes, 255: error (like `nomad job plan`)."""
    from .console import changeset_text, data_text, preflight_text
    from .operations import prepare
    from .preflight import problems

    cfg = _online_config(zones, templates, config, zone_attribute, conn.namespace)
    nomad, consul = _cluster(conn, cfg)
    prep = prepare(manifest, cfg, nomad, consul, name=name, prune=prune, health=True)
    if not consul.ep.token and all(
        k.modify_index == 0 for k in prep.changes.kv + prep.changes.push
    ):
        _err(
            "warning: no Consul token is set and no key of this manifest is readable: with "
            "Consul ACLs, keys hidden from the anonymous token show as new (set CONSUL_HTTP_TOKEN)"
        )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **prep.changes.to_json(),
                    "data": [d.to_json() for d in prep.data],
                    "preflight": [
                        {**s._asdict(), "message": p.message, "hint": p.hint}
                        for s, p in zip(prep.preflight, problems(prep.preflight), strict=True)
                    ],
                },
                indent=2,
            )
        )
    else:
        typer.echo(
            changeset_text(prep.changes, prep.zones_source, verbose)
            + data_text(prep.data)
            + preflight_text(prep.preflight)
        )
    raise typer.Exit(1 if prep.changes.changed else 0)


@app.command()
@_guarded()
@_with_environment
@_with_connection
def submit(
    manifest: ManifestArg,
    as_json: JsonOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Stop jobs this manifest owns and no longer declares.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait for each layer to be healthy before the next."),
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for health, in all.")
    ] = 300.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Requests in flight at once.")
    ] = 16,
    allow_data_loss: Annotated[
        bool,
        typer.Option(
            "--allow-data-loss",
            help="Apply a change that replaces stateful instances without their data.",
        ),
    ] = False,
    zones: ZonesOpt = None,
    templates: TemplatesOpt = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
    zone_attribute: ZoneAttr = None,
    conn: Connection = Connection(),
) -> None:
    """Converge the cluster on the manifest: interfaces, then jobs in dependency order."""
    from .console import progress_printer, report_text
    from .converge import ApplyError, apply, prefix_of
    from .manifest import default_name
    from .names import owner
    from .operations import (
        ManifestLock,
        check_manifest_name,
        fingerprint,
        needs_lock,
        prepare,
        probe_submit_writes,
        refuse_data_loss,
        refuse_if_locked,
        refuse_unplaceable,
    )

    cfg = _online_config(zones, templates, config, zone_attribute, conn.namespace)
    nomad, consul = _cluster(conn, cfg)
    mname = owner(check_manifest_name(name or default_name(Path(manifest))), cfg.render.scope)
    printer = progress_printer(as_json=as_json)
    # Reads first (bad input, placements Nomad cannot make and "nothing to do" write nothing,
    # not even the lock); then the manifest's lock, held until the last write.
    prep = prepare(manifest, cfg, nomad, consul, name=name, prune=prune, concurrency=concurrency)
    refuse_unplaceable(prep)  # the whole-manifest preflight: exit 15, nothing written
    if not allow_data_loss:
        refuse_data_loss(prep)  # exit 14, nothing written
    lock = None
    if needs_lock(prep.changes):
        lock = ManifestLock(consul, prefix_of(mname, cfg.render), mname, "submit").__enter__()
    else:
        refuse_if_locked(consul, prefix_of(mname, cfg.render), mname)  # exit 13, a read
    try:
        if lock is not None:
            again = prepare(manifest, cfg, nomad, consul, name=name, prune=prune, dry_run=False)
            if fingerprint(again.changes) != fingerprint(prep.changes):  # changed meanwhile
                prep = prepare(
                    manifest, cfg, nomad, consul, name=name, prune=prune, concurrency=concurrency
                )
                refuse_unplaceable(prep)
                if not allow_data_loss:
                    refuse_data_loss(prep)
            probe_submit_writes(prep.changes, nomad)  # exit 8 before the first write

        def progress(step: Step) -> None:
            if lock is not None:
                lock.check()  # a lost lock stops the run before its next write
            printer(step)

        try:
            report = apply(
                prep.changes,
                nomad,
                consul,
                cfg.render,
                wait=wait,
                timeout=timeout,
                concurrency=concurrency,
                progress=progress,
            )
        except ApplyError as exc:
            if as_json:
                typer.echo(json.dumps(exc.report.to_json(), indent=2))
            raise
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report_text(report, prep.changes))


@app.command()
@_guarded()
@_with_environment
@_with_connection
def status(
    manifest: Annotated[str, typer.Argument(help="The manifest file, or just its name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    name: NameOpt = None,
    zone_attribute: ZoneAttr = None,
    conn: Connection = Connection(),
) -> None:
    """Per set: job state, allocations per zone and node, deployment and allocation IDs,
    health, interface, drift. Works from the jobs the manifest owns (no push record needed);
    with the manifest file, drift is Nomad's plan diff as in `plan`.
    Exit 0: every set healthy and in sync; 17: a set is degraded, pending, drifted or missing."""
    from .console import status_text
    from .errors import EXIT_NOT_CONVERGED
    from .names import owner
    from .operations import check_manifest_name
    from .operations import status as get_status

    cfg = _online_config(None, None, config, zone_attribute, conn.namespace)
    nomad, consul = _cluster(conn, cfg)
    path = Path(manifest)
    rows, record = get_status(
        owner(check_manifest_name(name or _manifest_name(manifest)), cfg.render.scope),
        cfg,
        nomad,
        consul,
        manifest_path=manifest if path.suffix == ".json" or path.is_file() else None,
    )
    if as_json:
        typer.echo(
            json.dumps(
                [{**r._asdict(), "data": [d._asdict() for d in r.data], "ok": r.ok} for r in rows],
                indent=2,
            )
        )
    else:
        typer.echo(status_text(record["manifest"], rows))
    if not all(r.ok for r in rows):
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command()
@_guarded()
@_with_environment
@_with_connection
def destroy(
    manifest: Annotated[str, typer.Argument(help="The manifest file, or just its name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    delete_credentials: Annotated[
        bool,
        typer.Option(
            "--delete-credentials",
            help="Also delete the credentials nomadgen generated (kept by default: data that "
            "outlives the jobs may need them).",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for the jobs' allocations to stop."),
    ] = 300.0,
    config: ConfigOpt = None,
    name: NameOpt = None,
    conn: Connection = Connection(),
) -> None:
    """Stop and purge every job this manifest owns, remove its Consul KV keys and ACL policies.
    Exit 16 when the manifest owns nothing on the cluster."""
    from .names import owner
    from .operations import check_manifest_name, owned, refuse_nothing_owned, refuse_other_namespace
    from .operations import destroy as do_destroy

    mname = check_manifest_name(name or _manifest_name(manifest))
    cfg = _online_config(None, None, config, None, conn.namespace)
    nomad, consul = _cluster(conn, cfg)
    mname = owner(mname, cfg.render.scope)
    what = owned(mname, cfg, nomad, consul)
    refuse_nothing_owned(mname, what)  # exit 16, before asking anything
    refuse_other_namespace(mname, what, cfg)  # exit 10: another namespace's deployment
    jobs = what.jobs
    if not yes:
        if not sys.stdin.isatty():
            raise NomadgenError(
                "destroy needs confirmation", hint="pass --yes to confirm without a terminal"
            )
        typer.confirm(
            f"Stop and purge {len(jobs)} job(s) of manifest {mname} "
            f"({', '.join(jobs) or 'none'}) and remove its KV keys?",
            abort=True,
        )
    done = do_destroy(
        mname, cfg, nomad, consul, delete_credentials=delete_credentials, timeout=timeout
    )
    typer.echo(
        f"stopped and purged {len(done.jobs)} job(s); removed {done.keys} KV key(s)"
        + (f"; deregistered {len(done.services)} external service(s)" if done.services else "")
        + (f"; deleted {len(done.credentials)} generated credential(s)" if done.credentials else "")
    )
    if done.kept_credentials:
        typer.echo(
            f"kept {len(done.kept_credentials)} generated credential(s) in Nomad Variables "
            f"(namespace {done.namespace}): {', '.join(done.kept_credentials)}; data that "
            "outlives the jobs (host or CSI volumes) was initialised with them. "
            + (
                "Some changed since they were read and were left alone."
                if delete_credentials
                else "`nomadgen destroy --delete-credentials` removes them."
            )
        )
    if done.kept_keys:
        _err(
            f"kept {len(done.kept_keys)} key(s) under the manifest's prefix that nomadgen did not "
            f"write: {', '.join(done.kept_keys[:5])}" + (" ..." if len(done.kept_keys) > 5 else "")
        )


@interface_app.command("get")
@_guarded()
@_with_environment
def interface_get(
    set_name: Annotated[str, typer.Argument(metavar="SET", help="A set, e.g. psql:app.")],
    manifest: Annotated[
        str | None, typer.Option("--manifest", help="The manifest that publishes it.")
    ] = None,
    config: ConfigOpt = None,
    consul_addr: ConsulAddr = None,
    consul_token_file: ConsulTokenFile = None,
    consul_ca_cert: ConsulCACert = None,
    tls_skip_verify: SkipVerify = False,
) -> None:
    """Print a set's interface document and its healthy instances (JSON)."""
    from .backends import ConsulBackend
    from .operations import check_manifest_name
    from .operations import interface_get as get
    from .settings import consul_endpoint

    if manifest is not None:
        check_manifest_name(manifest)
    cfg = _online_config(None, None, config, None, None)
    consul = ConsulBackend(
        consul_endpoint(
            address=consul_addr,
            token_file=consul_token_file,
            ca_cert=consul_ca_cert,
            skip_verify=True if tls_skip_verify else None,
        )
    )
    view = get(set_name, cfg, consul, manifest)
    typer.echo(
        json.dumps(
            {"key": view.key, "interface": view.document, "instances": list(view.instances)},
            indent=2,
        )
    )


def _manifest_name(arg: str) -> str:
    p = Path(arg)
    if arg and (p.suffix == ".json" or p.is_file()):
        from .manifest import default_name

        return default_name(p)
    return arg


def main() -> None:
    # Typer builds every command's parameters before running one (about 2 ms each). The offline
    # commands run on a one-command app, so `nomadgen render` pays only for itself.
    argv = sys.argv[1:]
    name = next((a for a in argv if not a.startswith("-")), None)
    fast = {"render": render, "resolve": resolve, "graph": graph}
    if name in fast and not {"-h", "--help"} & set(argv):
        # A short run that builds large acyclic structures: the cyclic collector would only
        # rescan the growing heap (super-linear on big manifests).
        gc.disable()
        one = typer.Typer(
            add_completion=False,
            pretty_exceptions_show_locals=False,
            context_settings={"help_option_names": ["-h", "--help"]},
        )
        one.callback()(_main)
        one.command(name)(fast[name])
        one(prog_name="nomadgen")
        return
    app(prog_name="nomadgen")


if __name__ == "__main__":  # pragma: no cover
    main()
