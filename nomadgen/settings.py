"""Every setting nomadgen reads, in one place, with one precedence: flag > environment >
config file (nomadgen.toml) > default. The HTTP clients never read the environment themselves:
every value is passed to them explicitly (python-nomad and the consul clients would otherwise
pick up NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_TOKEN behind our back)."""

from __future__ import annotations

import os
import re
import tomllib
from typing import NamedTuple
from pathlib import Path

from .errors import ConfigError, Problem
from .model import Settings
from .resolve import DEFAULT_ZONES

CONFIG_FILE = "nomadgen.toml"
CONFIG_KEYS = {"zones", "zone_attribute", "namespace", "region", "kv_prefix", "templates",
               "consul_domain", "datacenters"}
ZONE_ATTR_RE = re.compile(r"^\$\{(node\.datacenter|node\.class|node\.pool|meta\.[A-Za-z0-9_.-]+|"
                          r"attr\.[A-Za-z0-9_.-]+)\}$")
KV_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class Config(NamedTuple):
    zones: tuple[str, ...] = DEFAULT_ZONES
    zones_source: str = "default"  # default | config | env | flag | cluster
    templates: str | None = None
    render: Settings = Settings()


def _split(value: str) -> tuple[str, ...]:
    return tuple(z.strip() for z in value.split(",") if z.strip())


def load_config(*, zones: str | None = None, templates: str | None = None,
                config: str | None = None, zone_attribute: str | None = None,
                namespace: str | None = None, kv_prefix: str | None = None,
                env: dict[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    data: dict = {}
    path = Path(config) if config else Path(CONFIG_FILE)
    if config or path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax") from None
        unknown = sorted(set(data) - CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}",
                              hint="known keys: " + ", ".join(sorted(CONFIG_KEYS)))

    if zones is not None:
        z, src = _split(zones), "flag"
    elif env.get("NOMADGEN_ZONES"):
        z, src = _split(env["NOMADGEN_ZONES"]), "env"
    elif "zones" in data:
        raw = data["zones"]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{path}: zones must be a list of strings")
        z, src = tuple(raw), "config"
    else:
        z, src = DEFAULT_ZONES, "default"

    attr = zone_attribute or env.get("NOMADGEN_ZONE_ATTRIBUTE") or data.get("zone_attribute") \
        or "${node.datacenter}"
    if not ZONE_ATTR_RE.match(attr):
        raise ConfigError(f"invalid zone attribute {attr!r}",
                          hint="use ${node.datacenter} or a node meta key like ${meta.zone}")
    prefix = kv_prefix or env.get("NOMADGEN_KV_PREFIX") or data.get("kv_prefix") or "nomadgen"
    if not KV_PREFIX_RE.match(prefix):
        raise ConfigError(f"invalid KV prefix {prefix!r}", hint="letters, digits, '-', '_' and '/'")
    ns = namespace or env.get("NOMAD_NAMESPACE") or data.get("namespace") or "default"
    dcs = data.get("datacenters", [])
    problems = []
    if not isinstance(dcs, list):
        problems.append(Problem("datacenters must be a list", str(path)))
        dcs = []
    if problems:
        raise ConfigError("invalid configuration", problems)
    return Config(
        zones=z,
        zones_source=src,
        templates=templates or env.get("NOMADGEN_TEMPLATES") or data.get("templates"),
        render=Settings(
            zone_attribute=attr,
            namespace=ns,
            region=env.get("NOMAD_REGION", data.get("region", "")),
            kv_prefix=prefix,
            consul_domain=data.get("consul_domain", "consul"),
            datacenters=tuple(dcs),
        ),
    )
