"""The library calls behind the offline commands: manifest -> plan -> files. Pure apart from
reading the manifest and templates; the CLI only formats what these return."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from .catalog import Catalog
from .manifest import load
from .model import Job, KVEntry, Manifest, Plan
from .render import interfaces, render, to_json
from .resolve import resolve
from .settings import Config


class Rendered(NamedTuple):
    manifest: Manifest
    plan: Plan
    jobs: tuple[Job, ...]
    interfaces: tuple[KVEntry, ...]


def build_plan(manifest_path: str, config: Config, name: str | None = None,
               zones: tuple[str, ...] | None = None) -> tuple[Manifest, Plan]:
    manifest = load(manifest_path, name)
    catalog = Catalog(config.templates)
    return manifest, resolve(manifest, catalog, zones or config.zones)


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


def build(manifest_path: str, config: Config, name: str | None = None,
          zones: tuple[str, ...] | None = None) -> Rendered:
    with no_gc():
        manifest, plan = build_plan(manifest_path, config, name, zones)
        return Rendered(manifest, plan, tuple(render(plan, config.render)),
                        tuple(interfaces(plan, config.render)))


def job_files(jobs: tuple[Job, ...] | list[Job], fmt: str) -> dict[str, str]:
    """File name -> content, every job rendered before anything is written or printed."""
    with no_gc():
        if fmt == "json":
            return {f"{j.id}.nomad.json": to_json(j) for j in jobs}
        from .hcl import to_hcl

        return {f"{j.id}.nomad.hcl": to_hcl(j.api) for j in jobs}
