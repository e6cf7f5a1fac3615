"""The library calls behind the offline commands: manifest -> plan -> files. Pure apart from
reading the manifest and templates; the CLI only formats what these return."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from . import names
from .catalog import Catalog
from .errors import ManifestError, Problem
from .manifest import load
from .model import Job, KVEntry, Manifest, RenderSettings, Resolution
from .render import (
    Shared,
    interface_document,
    interface_key,
    interfaces,
    render,
    render_job,
    to_json,
)
from .resolve import resolve
from .settings import Config


class Rendered(NamedTuple):
    manifest: Manifest
    plan: Resolution
    jobs: tuple[Job, ...]
    interfaces: tuple[KVEntry, ...]


def build_resolution(
    manifest_path: str | Manifest,
    config: Config,
    name: str | None = None,
    zones: tuple[str, ...] | None = None,
) -> tuple[Manifest, Resolution]:
    """Resolve a manifest (a path, or one already loaded) against the zones."""
    manifest = load(manifest_path, name) if isinstance(manifest_path, str) else manifest_path
    check_target(manifest, config.render.nomad_version)
    catalog = Catalog(config.templates)
    zones = zones or config.zones
    if not config.overrides and config.environment is None and not config.render.scope:
        return manifest, resolve(manifest, catalog, zones)  # no environment: as it always was
    from .envplan import apply_overrides, check_collisions, scoped

    tuned = apply_overrides(manifest, catalog, zones, config.overrides)
    plan = scoped(resolve(tuned, catalog, zones), config.render.scope, manifest)
    env = config.environment
    if env is not None:
        others = []
        for other in config.environments:
            if other.name != env.name:
                st = config.render._replace(
                    scope=other.scope,
                    namespace=other.namespace or config.render.namespace,
                    region=other.region or config.render.region,
                    kv_prefix=other.kv_prefix or config.render.kv_prefix,
                    consul_datacenter=other.consul_datacenter,
                )
                others.append((other.name, scoped(plan, other.scope, manifest), st))
        check_collisions((env.name, plan, config.render), others)
    return manifest, plan


def check_target(manifest: Manifest, target: tuple[int, int]) -> None:
    """A service's node_pool is a constraint on `${node.pool}`, which Nomad 1.5's scheduler
    does not know: no 1.5 node matches it (scheduler/feasible.go resolveTarget, v1.5.8;
    nomad-sched shows every node filtered), so the set could never be placed."""
    if target >= (1, 6):
        return
    pooled = [s for s in manifest.services if s.node_pool]
    if pooled:
        raise ManifestError(
            f"node_pool needs Nomad 1.6 or later; the target is Nomad {target[0]}.{target[1]}",
            [
                Problem(f"node_pool {s.node_pool!r}", f"{manifest.path}: {s.name}.node_pool")
                for s in pooled
            ],
            hint='Nomad 1.5 nodes are in no pool: set nomad_version = "1.6" (or later) in '
            "nomadgen.toml if every cluster you submit to runs it, or drop node_pool",
        )


@contextmanager
def no_gc() -> Iterator[None]:
    """The pure core allocates many small objects and no cycles; the cyclic collector would
    rescan the growing heap again and again (super-linear on big manifests)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build(
    manifest_path: str,
    config: Config,
    name: str | None = None,
    zones: tuple[str, ...] | None = None,
) -> Rendered:
    with no_gc():
        manifest, plan = build_resolution(manifest_path, config, name, zones)
        return Rendered(
            manifest,
            plan,
            tuple(render(plan, config.render)),
            tuple(interfaces(plan, config.render)),
        )


def render_files(
    plan: Resolution, settings: RenderSettings, fmt: str, only: str | None = None
) -> dict[str, str]:
    """File name -> text for every job (or just `only`), in name order."""
    return dict(sorted(iter_files(plan, settings, fmt, only)))


def iter_files(
    plan: Resolution, settings: RenderSettings, fmt: str, only: str | None = None
) -> Iterator[tuple[str, str]]:
    """(file name, text) for every job (or just `only`), in the plan's order, each job rendered
    only when asked for and then dropped: a big manifest never holds every job at once."""
    suffix = ".nomad.json" if fmt == "json" else ".nomad.hcl"
    shared: Shared = {}  # identical blocks, one object across the jobs (render.render_job)
    if fmt != "json":
        from .hcl_fast import JobWriter

        hcl = JobWriter()  # writes those blocks once; hcl.to_hcl's bytes (hcl_fast.py)
    with no_gc():
        for s in plan.sets:
            if s.job_hosted and (only is None or s.job_id == only):
                job = render_job(plan, s, settings, shared)
                if fmt == "json":
                    text = to_json(job)
                else:
                    hcl.share(shared.values())
                    text = hcl.write(job.api)
                yield s.job_id + suffix, text


def interface_files(plan: Resolution, settings: RenderSettings) -> Iterator[tuple[str, str]]:
    """(interfaces/<service>.json, document) for every set, one at a time."""
    for s in plan.sets:
        key = interface_key(plan, s, settings)
        yield (
            "interfaces/" + names.service_of_key(key) + ".json",
            interface_document(plan, s, settings).decode(),
        )
