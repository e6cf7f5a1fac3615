"""For apps: find a set's instances through Consul, failing at once (never hanging) when the
interface is missing.

    from nomadgen.discovery import lookup
    psql = lookup("psql:app")                 # Consul DNS (SRV + A), NOMADGEN_DNS or 127.0.0.1:8600
    host, port = psql.instances[0].host, psql.instances[0].port
    psql = lookup("psql:app", via="http", manifest="dockland")   # HTTP API, with the KV document
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from . import names
from .errors import NomadgenError, Unavailable


class InterfaceMissing(NomadgenError):
    exit_code = 12
    kind = "interface-missing"


class Instance(NamedTuple):
    host: str
    port: int
    node: str = ""


class Interface(NamedTuple):
    set: str
    service: str
    instances: tuple[Instance, ...]
    document: dict[str, Any] | None = None  # the KV interface document (HTTP lookups)


def lookup(
    set_name: str,
    *,
    via: str = "dns",
    tag: str | None = None,
    dns_server: str | None = None,
    domain: str | None = None,
    consul_addr: str | None = None,
    manifest: str | None = None,
    kv_prefix: str | None = None,
    timeout: float = 2.0,
    env: str | None = None,
    config: str | None = None,
) -> Interface:
    """`env` reads the set of that environment: its scope is the name, or env.NAME.scope in
    nomadgen.toml / `config` when one declares it, which also gives the environment's KV
    prefix and Consul domain unless `kv_prefix` / `domain` are passed."""
    scope, prefix, dom = _env_settings(env, config) if env else ("", "nomadgen", "consul")
    domain = domain or dom
    kv_prefix = kv_prefix or prefix
    service = names.job_id(set_name, scope)
    if manifest:
        manifest = names.owner(manifest, scope)
    if via == "dns":
        return _dns(set_name, service, tag, dns_server, domain, timeout)
    if via == "http":
        return _http(set_name, service, tag, consul_addr, manifest, kv_prefix, timeout)
    raise ValueError(f"via must be 'dns' or 'http', not {via!r}")


def _env_settings(env: str, config: str | None) -> tuple[str, str, str]:
    """(scope, KV prefix, Consul domain) of an environment."""
    from pathlib import Path

    from .settings import CONFIG_FILE, load_config

    if config is None and not Path(CONFIG_FILE).is_file():
        # an app without nomadgen.toml: the default scope is the environment's name
        return env, "nomadgen", "consul"
    cfg = load_config(config=config, environment=env, env={})
    return cfg.render.scope, cfg.render.kv_prefix, cfg.render.consul_domain


def _dns(
    set_name: str,
    service: str,
    tag: str | None,
    dns_server: str | None,
    domain: str,
    timeout: float,
) -> Interface:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    from .settings import dns_server as server_of

    host, port = server_of(dns_server)
    qname = names.srv(service, domain, tag or "tcp") + "."
    query = dns.message.make_query(qname, dns.rdatatype.SRV, use_edns=0, payload=4096)
    try:
        resp = dns.query.udp(query, host, port=port, timeout=timeout)
        if resp.flags & dns.flags.TC:  # too many instances for UDP: ask again over TCP
            resp = dns.query.tcp(query, host, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError) as exc:
        raise Unavailable(
            f"no answer from Consul DNS at {host}:{port} for {qname}",
            hint="set NOMADGEN_DNS (host:port of a Consul agent's DNS interface)",
        ) from exc
    if resp.rcode() == dns.rcode.NXDOMAIN:
        raise InterfaceMissing(
            f"no healthy instance of {set_name} in Consul DNS ({qname} NXDOMAIN)",
            hint=f"is {set_name} submitted and healthy? `nomadgen status`",
        )
    addresses: dict[str, str] = {}
    for rrset in resp.additional:
        if rrset.rdtype == dns.rdatatype.A:
            for rd in rrset:
                addresses[rrset.name.to_text()] = rd.address
    instances = []
    for rrset in resp.answer:
        if rrset.rdtype != dns.rdatatype.SRV:
            continue
        for rd in rrset:
            target = rd.target.to_text()
            instances.append(Instance(addresses.get(target, target.rstrip(".")), rd.port, target))
    if not instances:
        raise InterfaceMissing(f"no healthy instance of {set_name} in Consul DNS ({qname})")
    return Interface(set_name, service, tuple(sorted(instances)))


def _http(
    set_name: str,
    service: str,
    tag: str | None,
    consul_addr: str | None,
    manifest: str | None,
    kv_prefix: str,
    timeout: float,
) -> Interface:
    from .backends import ConsulBackend
    from .settings import consul_endpoint

    consul = ConsulBackend(consul_endpoint(address=consul_addr)._replace(timeout=timeout))
    doc = None
    if manifest:
        got = consul.kv_get(names.interface_key(names.kv_root(kv_prefix, manifest), service))
        if got is None:
            raise InterfaceMissing(
                f"no interface document for {set_name} in manifest {manifest}",
                hint="submit the manifest, or check the set and manifest names",
            )
        doc = json.loads(got[0])
    entries = consul.healthy(service)
    instances = tuple(
        sorted(
            Instance(
                e["Service"]["Address"] or e["Node"]["Address"],
                e["Service"]["Port"],
                e["Node"]["Node"],
            )
            for e in entries
            if tag is None or tag in (e["Service"].get("Tags") or ())
        )
    )
    if not instances:
        raise InterfaceMissing(
            f"no healthy instance of {set_name} in Consul ({service})",
            hint=f"is {set_name} submitted and healthy? `nomadgen status`",
        )
    return Interface(set_name, service, instances, doc)
